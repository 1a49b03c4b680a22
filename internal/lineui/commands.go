package lineui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
)

// Command is a slash command.
type Command struct {
	Name string
	Help string
	// Run calls the daemon and returns the text to show; nil for the
	// commands the front end handles itself (/help, /clear, /exit).
	Run func(ctx context.Context, c Client, s api.SessionInfo, arg string) (string, error)
}

// commands lists the slash commands in the order /help shows them.
var commands = []Command{
	{Name: "help", Help: "list the commands and keys"},
	{Name: "clear", Help: "clear the screen (the session keeps its history)"},
	{Name: "sessions", Help: "list the sessions of this workspace (/sessions all: every workspace)", Run: cmdSessions},
	{Name: "servers", Help: "list the MCP servers and their state", Run: cmdServers},
	{Name: "tools", Help: "list the tools the model may call", Run: cmdTools},
	{Name: "capsules", Help: "list the capsules", Run: cmdCapsules},
	{Name: "allowances", Help: "list this session's and workspace's allowances", Run: cmdAllowances},
	{Name: "budget", Help: "show the session's spending and limits", Run: cmdBudget},
	{Name: "audit", Help: "show the session's last audit entries (/audit N)", Run: cmdAudit},
	{Name: "approvals", Help: "list this session's deferred approvals", Run: cmdApprovals},
	{Name: "save", Help: "save the session now (waits for no turn to run)", Run: cmdSave},
	{Name: "resources", Help: "list an MCP server's resources (/resources SERVER), or read one (/resources SERVER URI)", Run: cmdResources},
	{Name: "prompts", Help: "list an MCP server's prompts (/prompts SERVER), or show one (/prompts SERVER NAME [ARG=VALUE ...])", Run: cmdPrompts},
	{Name: "exit", Help: "save the session and quit"},
}

// LookupCommand finds a slash command by name.
func LookupCommand(name string) (Command, bool) {
	for _, c := range commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// ParseCommand splits "/name arg..." into its name and argument; ok is false
// when line is not a command.
func ParseCommand(line string) (name, arg string, ok bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//") {
		return "", "", false
	}
	name, arg, _ = strings.Cut(line[1:], " ")
	return strings.ToLower(name), strings.TrimSpace(arg), true
}

// HelpText is what /help prints; keys lists the front end's keys.
func HelpText(keys [][2]string) string {
	var b strings.Builder
	b.WriteString("Commands:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  /%s\t%s\n", c.Name, c.Help)
	}
	tw.Flush()
	if len(keys) > 0 {
		b.WriteString("Keys:\n")
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s\t%s\n", k[0], k[1])
		}
		tw.Flush()
	}
	return strings.TrimRight(b.String(), "\n")
}

// CommandError words an API error for the user. A daemon without the
// subsystem says so plainly.
func CommandError(name string, err error) string {
	if errors.Is(err, api.ErrUnavailable) {
		return fmt.Sprintf("/%s: not available in this daemon: %s", name, frontend.SanitizeLine(err.Error()))
	}
	return fmt.Sprintf("/%s failed: %s", name, frontend.SanitizeLine(err.Error()))
}

// table formats rows as aligned columns; the first row is the header.
// Every cell is untrusted text.
func table(rows [][]string) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		for i := range r {
			r[i] = frontend.SanitizeLine(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	return strings.TrimRight(b.String(), "\n")
}

// When formats a time for a table; the zero time is "-".
func When(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func cmdSessions(ctx context.Context, c Client, s api.SessionInfo, arg string) (string, error) {
	p := api.ListSessionsParams{Workspace: s.Workspace}
	if arg == "all" {
		p.Workspace = ""
	}
	list, err := c.ListSessions(ctx, p)
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "no sessions", nil
	}
	rows := [][]string{{"", "ID", "UPDATED", "TURNS", "STATE", "TITLE"}}
	for _, x := range list {
		mark, state := "", "saved"
		if x.ID == s.ID {
			mark = "*"
		}
		if x.Busy {
			state = "busy"
		} else if x.Active {
			state = "active"
		}
		rows = append(rows, []string{mark, x.ID, When(x.UpdatedAt), strconv.Itoa(x.Turns), state, x.Title})
	}
	return table(rows), nil
}

func cmdServers(ctx context.Context, c Client, _ api.SessionInfo, _ string) (string, error) {
	list, err := c.ListServers(ctx)
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "no MCP servers configured", nil
	}
	rows := [][]string{{"NAME", "TRANSPORT", "STATE", "TOOLS", "ERROR"}}
	for _, x := range list {
		rows = append(rows, []string{x.Name, x.Transport, x.State, strconv.Itoa(x.Tools), x.Error})
	}
	return table(rows), nil
}

func cmdTools(ctx context.Context, c Client, s api.SessionInfo, arg string) (string, error) {
	list, err := c.ListTools(ctx, api.ListToolsParams{Session: s.ID, Server: arg})
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "no tools", nil
	}
	rows := [][]string{{"NAME", "SOURCE", "DESCRIPTION"}}
	for _, x := range list {
		d, _, _ := strings.Cut(x.Description, "\n")
		rows = append(rows, []string{x.Name, x.Source, frontend.Clip(d, 70)})
	}
	return table(rows), nil
}

func cmdCapsules(ctx context.Context, c Client, _ api.SessionInfo, _ string) (string, error) {
	list, err := c.ListCapsules(ctx)
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "no capsules", nil
	}
	rows := [][]string{{"ID", "NAME", "VERSION", "ENGINE", "STATE", "ERROR"}}
	for _, x := range list {
		rows = append(rows, []string{x.ID, x.Name, x.Version, x.Engine, x.State, x.Error})
	}
	return table(rows), nil
}

func cmdAllowances(ctx context.Context, c Client, s api.SessionInfo, _ string) (string, error) {
	list, err := c.SessionAllowances(ctx, api.SessionAllowancesParams{Session: s.ID, Workspace: s.Workspace})
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "no allowances: every action that needs approval will ask", nil
	}
	rows := [][]string{{"SCOPE", "PATTERN", "PERMISSION", "CREATED"}}
	for _, x := range list {
		rows = append(rows, []string{x.Scope, x.Pattern, x.Permission, When(x.CreatedAt)})
	}
	return table(rows), nil
}

func cmdBudget(ctx context.Context, c Client, s api.SessionInfo, _ string) (string, error) {
	b, err := c.SessionBudget(ctx, s.ID)
	if err != nil {
		return "", err
	}
	limit := func(v float64) string {
		if v == 0 {
			return "no limit"
		}
		return frontend.USD(v)
	}
	return table([][]string{
		{"session spent", frontend.USD(b.SpentUSD)},
		{"session reserved", frontend.USD(b.ReservedUSD)},
		{"session limit", limit(b.SessionLimitUSD)},
		{"workspace spent", frontend.USD(b.WorkspaceSpentUSD)},
		{"workspace limit", limit(b.WorkspaceLimitUSD)},
	}), nil
}

func cmdAudit(ctx context.Context, c Client, s api.SessionInfo, arg string) (string, error) {
	limit := 20
	if arg != "" {
		n, err := strconv.Atoi(arg)
		if err != nil || n <= 0 || n > api.MaxAuditLimit {
			return "", fmt.Errorf("%w: /audit takes a count from 1 to %d", api.ErrInvalidParams, api.MaxAuditLimit)
		}
		limit = n
	}
	list, err := c.SessionAudit(ctx, api.SessionAuditParams{Session: s.ID, Limit: limit})
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "no audit entries for this session", nil
	}
	rows := [][]string{{"SEQ", "TIME", "TYPE", "DECISION", "RESOURCE"}}
	for _, x := range list {
		d := x.Decision
		if d == "" {
			d = x.Status
		}
		rows = append(rows, []string{strconv.FormatInt(x.Seq, 10), When(x.Time), x.Type, d, frontend.Clip(x.Resource, 60)})
	}
	return table(rows), nil
}

func cmdApprovals(ctx context.Context, c Client, s api.SessionInfo, arg string) (string, error) {
	list, err := c.ListApprovals(ctx, api.ListApprovalsParams{Session: s.ID, All: arg == "all"})
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "no deferred approvals (answer them with `astrid approvals`)", nil
	}
	rows := [][]string{{"ID", "STATUS", "RISK", "RESOURCE", "CREATED"}}
	for _, x := range list {
		rows = append(rows, []string{x.ID, x.Status, x.Request.Risk, frontend.Clip(x.Request.Resource, 60), When(x.CreatedAt)})
	}
	return table(rows), nil
}

// cmdSave saves the session. The API saves a session when it ends, so /save
// ends it and resumes it at once; that would cancel a running turn, so it
// refuses while one runs.
func cmdSave(ctx context.Context, c Client, s api.SessionInfo, _ string) (string, error) {
	list, err := c.ListSessions(ctx, api.ListSessionsParams{Workspace: s.Workspace})
	if err != nil {
		return "", err
	}
	for _, x := range list {
		if x.ID == s.ID && x.Busy {
			return "", fmt.Errorf("%w: a turn is running; save when it has finished", api.ErrConflict)
		}
	}
	if err := c.EndSession(ctx, s.ID); err != nil {
		return "", err
	}
	info, err := c.ResumeSession(ctx, s.ID)
	if err != nil {
		return "", fmt.Errorf("saved, but resuming failed: %w", err)
	}
	return fmt.Sprintf("session %s saved (%d turns)", info.ID, info.Turns), nil
}
