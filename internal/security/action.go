package security

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/workspace"
)

// Kind is what an action does.
type Kind string

// The kinds of action.
const (
	FileRead    Kind = "file_read"
	FileWrite   Kind = "file_write"
	FileDelete  Kind = "file_delete"
	FileList    Kind = "file_list"
	Execute     Kind = "execute"
	Network     Kind = "network"
	MCPTool     Kind = "mcp_tool"
	Capsule     Kind = "capsule"
	SubAgent    Kind = "subagent"
	GrantCap    Kind = "capability_grant"
	Transaction Kind = "transaction"
)

// Kinds lists every kind, for validation and tests.
var Kinds = []Kind{FileRead, FileWrite, FileDelete, FileList, Execute, Network, MCPTool, Capsule, SubAgent, GrantCap, Transaction}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Permission is the capability-token permission an action of this kind
// needs.
func (k Kind) Permission() string {
	switch k {
	case FileRead:
		return "read"
	case FileWrite:
		return "write"
	case FileDelete:
		return "delete"
	case FileList:
		return "list"
	case Execute:
		return "execute"
	case SubAgent, GrantCap:
		return "create"
	default: // network, MCP, capsule, transaction
		return "invoke"
	}
}

// Risk orders how much harm an action could do.
type Risk int

// Risk levels.
const (
	Low Risk = iota + 1
	Medium
	High
	Critical
)

func (r Risk) String() string {
	switch r {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	case Critical:
		return "critical"
	}
	return "unknown(" + strconv.Itoa(int(r)) + ")"
}

// BaseRisk is the risk of a kind before context raises it.
func (k Kind) BaseRisk() Risk {
	switch k {
	case FileRead, FileList:
		return Low
	case FileWrite, MCPTool, Capsule, SubAgent:
		return Medium
	case FileDelete, Execute, Network:
		return High
	case GrantCap, Transaction:
		return Critical
	}
	return Critical
}

// Resource URIs name what an action touches. They are canonical: built
// only from resolved paths and normalised hosts, so that the same thing has
// one name in tokens, allowances and the audit log.

// FileURI names a canonical absolute path: file:///abs/path.
func FileURI(canonical string) (string, error) {
	if !filepath.IsAbs(canonical) || filepath.Clean(canonical) != canonical {
		return "", fmt.Errorf("file resource %q is not a canonical absolute path", canonical)
	}
	return "file://" + canonical, nil
}

// ExecURI names a command line: exec://<command line>. The line is kept as
// written (policy has parsed it); only surrounding space is trimmed.
func ExecURI(line string) string { return "exec://" + strings.TrimSpace(line) }

// NetURI names a host and port: net://host:port (host lowercased).
func NetURI(host string, port int) (string, error) {
	if port <= 0 || port > 65535 {
		return "", fmt.Errorf("network resource: invalid port %d", port)
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "" || strings.ContainsAny(h, "/@ ") {
		return "", fmt.Errorf("network resource: invalid host %q", host)
	}
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		h = "[" + h + "]"
	}
	return "net://" + h + ":" + strconv.Itoa(port), nil
}

// MCPURI names a tool of an MCP server: mcp://server/tool.
func MCPURI(server, tool string) (string, error) {
	if !validSegment(server) || !validSegment(tool) {
		return "", fmt.Errorf("mcp resource: invalid server %q or tool %q", server, tool)
	}
	return "mcp://" + server + "/" + tool, nil
}

// CapsuleURI names a capability of a capsule: capsule://id/capability.
func CapsuleURI(id, capability string) (string, error) {
	if !validSegment(id) || !validSegment(capability) {
		return "", fmt.Errorf("capsule resource: invalid id %q or capability %q", id, capability)
	}
	return "capsule://" + id + "/" + capability, nil
}

func validSegment(s string) bool {
	if s == "" || len(s) > 256 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r == '*' || r == '?' || r == '[' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Mode is how much a workspace trusts the agent (see package comment of
// Interceptor).
type Mode string

// The workspace modes, from strictest to most trusting.
const (
	Safe       Mode = "safe"
	Guided     Mode = "guided"
	Autonomous Mode = "autonomous"
)

// Session is the context an action is proposed in.
type Session struct {
	ID        string
	Principal string
	Frontend  string
	// Workspace is the canonical workspace root; empty when the session has
	// none (then every file action is outside the workspace).
	Workspace string
	Mode      Mode
	// Asker reaches the human who answers this session's approvals (for a
	// sub-agent: its parent's human). Nil means nobody: approvals defer.
	Asker approval.Asker `json:"-"`
	// HookAsk, when set, is why a PreToolCall hook wants the human to
	// decide this one call: the action is treated as AlwaysAsk (nothing
	// recorded authorises it, and the answer is not remembered). It can
	// only add a question; every other step still runs.
	HookAsk string `json:"-"`
	// HookNote is added to the text of the action's decision entry in the
	// audit log: which hook rewrote the arguments, and the digest of the
	// arguments the model proposed (the entry's args hash is that of the
	// action that was judged).
	HookNote string `json:"-"`
	// HookBlock, when set, is why a PreToolCall hook refused this call
	// ("hook NAME: reason"): the interceptor denies it before any other
	// step (StepHook) and audits the denial; nothing runs.
	HookBlock string `json:"-"`
	// PreApproval, when set, runs before a request is announced or put to
	// the Asker (the PreApproval hooks): decided true means its answer
	// stands and nobody is asked.
	PreApproval func(ctx context.Context, req approval.Request) (ans approval.Answer, decided bool) `json:"-"`
}

// Action is one thing an agent proposes to do. Build it from a tool call
// with the resolved target; the interceptor judges only what is here.
type Action struct {
	Kind Kind
	// Tool names the tool of the agent's registry that prepared the
	// action (tools.Registry.Run sets it); empty for actions made
	// elsewhere (capsule host calls, cron jobs, the model provider). It is
	// stored with a deferred action so that the runtime can prepare the
	// call again once a human approves it; a deferred action without a
	// tool is not the runtime's to run. It plays no part in the judgement.
	Tool string `json:",omitempty"`
	// Resource is the canonical URI (see FileURI, ExecURI, NetURI, ...).
	Resource string
	// Args are the full arguments as proposed (JSON); their hash is in the
	// audit entry.
	Args    []byte
	Session Session
	// Risk is computed by the interceptor when zero.
	Risk Risk

	// Path is the canonical absolute path of a file action.
	Path string
	// Command is the command line of an execute action.
	Command string
	// Host, Port and Addrs describe a network action: the host as asked
	// and every address it resolved to.
	Host  string
	Port  int
	Addrs []netip.Addr

	// AlwaysAsk makes a human answer this very call: no token, allowance
	// or workspace mode authorises it, and an answer such as "allow for the
	// session" allows only this call and is not remembered. Actions of
	// untrusted MCP servers (added by a workspace) set it.
	AlwaysAsk bool

	// Cost is the estimated cost reserved against the budget.
	Cost budget.Micros
	// Summary is a one-line description for humans ("Write file /ws/a.go").
	Summary string
}

// NewFileAction builds a file action for a path an agent named: relative
// paths are taken from the workspace root, and the path is resolved the
// way the kernel will walk it (see workspace.Resolve).
func NewFileAction(kind Kind, s Session, path string, args []byte) (Action, error) {
	switch kind {
	case FileRead, FileWrite, FileDelete, FileList:
	default:
		return Action{}, fmt.Errorf("%s is not a file action", kind)
	}
	p, err := workspace.Resolve(s.Workspace, path)
	if err != nil {
		return Action{}, err
	}
	uri, err := FileURI(p)
	if err != nil {
		return Action{}, err
	}
	verb := map[Kind]string{FileRead: "Read file", FileWrite: "Write file", FileDelete: "Delete file", FileList: "List directory"}[kind]
	return Action{Kind: kind, Resource: uri, Args: args, Session: s, Path: p, Summary: verb + " " + p}, nil
}

// NewExecAction builds an execute action for a shell command line.
func NewExecAction(s Session, line string, args []byte) Action {
	return Action{Kind: Execute, Resource: ExecURI(line), Args: args, Session: s, Command: strings.TrimSpace(line), Summary: "Run " + strings.TrimSpace(line)}
}
