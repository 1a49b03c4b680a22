package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/config"
)

// NOTE: MCP servers live in the daemon. Without a daemon, `servers list`
// shows the configured servers (all stopped) from the configuration
// layers; the other subcommands need the daemon and say so (exit code 3)
// instead of starting one, since a server started by an ephemeral daemon
// would stop with it.

func newServersCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "servers",
		Short: "List, start and stop MCP servers and list their tools",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newServersListCmd(env, false), newServersListCmd(env, true), newServersStartCmd(env), newServersStopCmd(env), newServersToolsCmd(env), newServersLoginCmd(env), newServersLogoutCmd(env), newServersImportCmd(env))
	return cmd
}

// serversClient dials a running daemon; ok is false (and a message was
// printed) when none runs.
func (e *Env) serversClient(ctx context.Context, what string) (*client.Client, error) {
	c, _, err := e.connect(ctx, false)
	if errors.Is(err, client.ErrNotRunning) {
		fmt.Fprintf(e.Stderr, "astridd is not running: %s needs the daemon (start it with `astrid daemon run`)\n", what)
		return nil, &ExitError{Code: exitNotRunning, Err: errSilent}
	}
	return c, err
}

func newServersListCmd(env *Env, runningOnly bool) *cobra.Command {
	use, short := "list", "The configured MCP servers and their state (from the configuration when no daemon runs)"
	if runningOnly {
		use, short = "running", "The MCP servers running in the daemon"
	}
	var workspace string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			var servers []api.ServerInfo
			c, _, err := env.connect(ctx, false)
			switch {
			case errors.Is(err, client.ErrNotRunning) && runningOnly:
				fmt.Fprintln(env.Stderr, "astridd is not running: no MCP server runs")
				return &ExitError{Code: exitNotRunning, Err: errSilent}
			case errors.Is(err, client.ErrNotRunning):
				servers, err = configuredServers(env, workspace)
				if err != nil {
					return err
				}
			case err != nil:
				return err
			default:
				defer c.Close()
				if servers, err = c.ListServers(ctx); err != nil {
					return err
				}
			}
			if runningOnly {
				var run []api.ServerInfo
				for _, s := range servers {
					if s.State == "running" || s.State == "starting" {
						run = append(run, s)
					}
				}
				servers = run
			}
			return printServers(env, servers)
		},
	}
	if !runningOnly {
		cmd.Flags().StringVar(&workspace, "workspace", "", "include this workspace's servers when no daemon runs (default: the current directory)")
	}
	return cmd
}

// configuredServers lists the servers of the merged configuration, all
// stopped.
func configuredServers(env *Env, workspace string) ([]api.ServerInfo, error) {
	lo, err := env.loadOptions(workspace)
	if err != nil {
		return nil, err
	}
	res, err := config.Load(lo)
	if err != nil {
		return nil, err
	}
	var out []api.ServerInfo
	for name, s := range res.Config.Servers {
		out = append(out, api.ServerInfo{Name: name, Transport: s.Transport, State: "stopped"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func printServers(env *Env, servers []api.ServerInfo) error {
	if env.jsonOutput() {
		if servers == nil {
			servers = []api.ServerInfo{}
		}
		return printJSON(env.Stdout, servers)
	}
	if len(servers) == 0 {
		fmt.Fprintln(env.Stdout, "no MCP servers")
		return nil
	}
	rows := [][]string{{"NAME", "TRANSPORT", "STATE", "TOOLS", "ERROR"}}
	for _, s := range servers {
		rows = append(rows, []string{s.Name, s.Transport, s.State, strconv.Itoa(s.Tools), s.Error})
	}
	return table(env.Stdout, rows)
}

func newServersStartCmd(env *Env) *cobra.Command {
	var workspace string
	cmd := &cobra.Command{
		Use:   "start NAME",
		Short: "Start a configured MCP server in the daemon (with --workspace, one a workspace added)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			ws, err := env.serverWorkspace(workspace)
			if err != nil {
				return err
			}
			c, err := env.serversClient(ctx, "servers start")
			if err != nil {
				return err
			}
			defer c.Close()
			info, err := c.StartServerIn(ctx, ws, args[0])
			if err != nil {
				return err
			}
			return printServers(env, []api.ServerInfo{info})
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "the workspace whose .astrid/config.toml added the server (untrusted: each of its tool calls asks)")
	return cmd
}

func newServersStopCmd(env *Env) *cobra.Command {
	var workspace string
	cmd := &cobra.Command{
		Use:   "stop NAME",
		Short: "Stop an MCP server running in the daemon",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			ws, err := env.serverWorkspace(workspace)
			if err != nil {
				return err
			}
			c, err := env.serversClient(ctx, "servers stop")
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.StopServerIn(ctx, ws, args[0]); err != nil {
				return err
			}
			if !env.jsonOutput() {
				fmt.Fprintf(env.Stdout, "stopped %s\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "the workspace whose .astrid/config.toml added the server")
	return cmd
}

// serverWorkspace is the workspace root a --workspace flag names, resolved
// as the daemon resolves a session's workspace; "" stays "" (the
// configured servers).
func (e *Env) serverWorkspace(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(e.Dir, dir)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("--workspace: %w", err)
	}
	return root, nil
}

func newServersToolsCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "tools [NAME]",
		Short: "The tools of the running MCP servers, or of one, as the model sees them",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			c, err := env.serversClient(ctx, "servers tools")
			if err != nil {
				return err
			}
			defer c.Close()
			p := api.ListToolsParams{}
			if len(args) == 1 {
				p.Server = args[0]
			}
			list, err := c.ListTools(ctx, p)
			if err != nil {
				return err
			}
			var mcpTools []api.ToolInfo
			for _, t := range list {
				if len(t.Source) > 4 && t.Source[:4] == "mcp:" {
					mcpTools = append(mcpTools, t)
				}
			}
			if env.jsonOutput() {
				if mcpTools == nil {
					mcpTools = []api.ToolInfo{}
				}
				return printJSON(env.Stdout, mcpTools)
			}
			if len(mcpTools) == 0 {
				fmt.Fprintln(env.Stdout, "no MCP tools")
				return nil
			}
			rows := [][]string{{"TOOL", "SERVER", "DESCRIPTION"}}
			for _, t := range mcpTools {
				rows = append(rows, []string{t.Name, t.Source[4:], firstLine(t.Description, 80)})
			}
			return table(env.Stdout, rows)
		},
	}
}

func firstLine(s string, n int) string {
	for i, r := range s {
		if r == '\n' {
			s = s[:i]
			break
		}
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
