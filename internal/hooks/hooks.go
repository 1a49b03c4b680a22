package hooks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

// Event names a point at which hooks fire.
type Event string

// The hook events.
const (
	SessionStart  Event = "SessionStart"
	SessionEnd    Event = "SessionEnd"
	UserPrompt    Event = "UserPrompt"
	PreToolCall   Event = "PreToolCall"
	PostToolCall  Event = "PostToolCall"
	ToolError     Event = "ToolError"
	PreApproval   Event = "PreApproval"
	PostApproval  Event = "PostApproval"
	Notification  Event = "Notification"
	PreCompact    Event = "PreCompact"
	SubagentStart Event = "SubagentStart"
	SubagentStop  Event = "SubagentStop"
	DaemonStart   Event = "DaemonStart"
	DaemonStop    Event = "DaemonStop"
)

// Events lists every hook event.
var Events = []Event{SessionStart, SessionEnd, UserPrompt, PreToolCall, PostToolCall, ToolError,
	PreApproval, PostApproval, Notification, PreCompact, SubagentStart, SubagentStop, DaemonStart, DaemonStop}

// Valid reports whether e is a hook event.
func (e Event) Valid() bool {
	for _, x := range Events {
		if x == e {
			return true
		}
	}
	return false
}

// Blocking reports whether a hook can block what e announces. These are
// the security-relevant events: a failing hook blocks by default, and
// their hooks never run async.
func (e Event) Blocking() bool {
	switch e {
	case PreToolCall, UserPrompt, PreApproval, SubagentStart:
		return true
	}
	return false
}

// Pre reports whether e is a Pre* event (never async).
func (e Event) Pre() bool { return strings.HasPrefix(string(e), "Pre") }

// ToolEvent reports whether e is about one tool call (matchers apply).
func (e Event) ToolEvent() bool { return e == PreToolCall || e == PostToolCall || e == ToolError }

// FailAction is what a failing hook does.
type FailAction string

// The fail actions.
const (
	FailBlock  FailAction = "block"
	FailWarn   FailAction = "warn"
	FailIgnore FailAction = "ignore"
)

// Decision is a handler's answer.
type Decision string

// The decisions.
const (
	Continue Decision = "continue"
	Block    Decision = "block"
	Ask      Decision = "ask"
	Modify   Decision = "modify"
)

// Hook is one [[hook]] of a hooks.toml, validated.
type Hook struct {
	Name       string
	Event      Event
	Tools      []string
	Servers    []string
	Glob       []string
	Regex      *regexp.Regexp
	Command    []string // argv; Command[0] resolved against Dir when relative
	URL        string
	FailAction FailAction
	Priority   int
	Async      bool
	Timeout    time.Duration

	// File and Line locate the hook's [[hook]] header.
	File string
	Line int
	// Dir is the staged copy of the hooks directory commands run in.
	Dir string
	// Workspace marks a hook from a workspace's .astrid/hooks.
	Workspace bool
	// Trusted is false for a workspace hook that may not run.
	Trusted bool
}

// Kind is "command" or "http".
func (h *Hook) Kind() string {
	if h.URL != "" {
		return "http"
	}
	return "command"
}

// Matches reports whether the hook applies to a call of tool (every call
// for a hook without matchers; any tool for non-tool events).
func (h *Hook) Matches(tool string) bool {
	if len(h.Tools) == 0 && len(h.Servers) == 0 && len(h.Glob) == 0 && h.Regex == nil {
		return true
	}
	for _, t := range h.Tools {
		if t == tool {
			return true
		}
	}
	for _, s := range h.Servers {
		if strings.HasPrefix(tool, "mcp__"+s+"__") {
			return true
		}
	}
	for _, g := range h.Glob {
		if ok, _ := doublestar.Match(g, tool); ok {
			return true
		}
	}
	return h.Regex != nil && h.Regex.MatchString(tool)
}

// Payload is what a handler receives; see the package documentation for
// the fields each event sets.
type Payload struct {
	Event Event     `json:"event"`
	Time  time.Time `json:"time"`
	Hook  string    `json:"hook,omitempty"`

	SessionID       string `json:"session_id,omitempty"`
	ParentSessionID string `json:"parent_session_id,omitempty"`
	Workspace       string `json:"workspace,omitempty"`
	Principal       string `json:"principal,omitempty"`
	Frontend        string `json:"frontend,omitempty"`
	Resumed         bool   `json:"resumed,omitempty"`
	Turn            string `json:"turn,omitempty"`
	Prompt          string `json:"prompt,omitempty"`

	CallID    string          `json:"call_id,omitempty"`
	Tool      string          `json:"tool,omitempty"`
	Server    string          `json:"server,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Output    string          `json:"output,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
	Error     string          `json:"error,omitempty"`

	Request json.RawMessage `json:"request,omitempty"`
	Answer  json.RawMessage `json:"answer,omitempty"`

	Message string `json:"message,omitempty"`
	Level   string `json:"level,omitempty"`

	Messages int `json:"messages,omitempty"`
	Tokens   int `json:"tokens,omitempty"`

	Description string `json:"description,omitempty"`
	Depth       int    `json:"depth,omitempty"`
	StopReason  string `json:"stop_reason,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// Response is a handler's answer, decoded strictly.
type Response struct {
	Decision  Decision        `json:"decision"`
	Reason    string          `json:"reason,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// check reports whether r is a valid answer to an event of type e.
func (r *Response) check(e Event) error {
	switch r.Decision {
	case Continue:
	case Block:
		if !e.Blocking() {
			return fmt.Errorf("%s cannot be blocked", e)
		}
	case Ask:
		if e != PreToolCall {
			return fmt.Errorf("ask is for PreToolCall only, not %s", e)
		}
	case Modify:
		if e != PreToolCall {
			return fmt.Errorf("modify is for PreToolCall only, not %s", e)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r.Arguments, &obj); err != nil || obj == nil {
			return fmt.Errorf("modify needs arguments as a JSON object")
		}
	default:
		return fmt.Errorf("unknown decision %q", r.Decision)
	}
	if r.Decision != Modify && len(r.Arguments) > 0 {
		return fmt.Errorf("arguments are only for modify")
	}
	return nil
}

// Result is what the hooks of one event decided together.
type Result struct {
	// Decision is Block if any hook blocked (or failed with fail_action
	// block); else Ask if any asked; else Modify if any modified; else
	// Continue.
	Decision Decision
	// Reason explains a Block or Ask; Hook names the hook that gave it.
	Reason string
	Hook   string
	// Arguments are the final arguments after every modify (set whenever
	// some hook modified them, including with Ask).
	Arguments json.RawMessage
	// Modifiers names the hooks that modified the arguments, in order.
	Modifiers []string
	// Ran counts the hooks run synchronously.
	Ran int
}

// Blocked reports whether the result refuses the action.
func (r Result) Blocked() bool { return r.Decision == Block }

// Why names the hook that decided and its reason: "hook NAME: reason".
func (r Result) Why() string { return "hook " + r.Hook + ": " + r.Reason }

// Sample returns a payload of event e with sample values, for dry runs
// ("astrid hooks test").
func Sample(e Event, now time.Time) Payload {
	p := Payload{Event: e, Time: now.UTC(), SessionID: "s-sample", Workspace: "/path/to/workspace"}
	switch e {
	case SessionStart:
		p.Principal, p.Frontend = "local:user", "cli"
	case SessionEnd:
		p.Reason = "ended"
	case UserPrompt:
		p.Turn, p.Prompt = "t-sample", "Fix the failing test"
	case PreToolCall, PostToolCall, ToolError:
		p.Turn, p.CallID, p.Tool = "t-sample", "call-1", "write_file"
		p.Arguments = json.RawMessage(`{"file_path":"notes.txt","content":"hello"}`)
		switch e {
		case PostToolCall:
			p.Output = "wrote 5 bytes to notes.txt"
		case ToolError:
			p.Error, p.Reason = "write_file was not run: denied by policy", "denied"
		}
	case PreApproval, PostApproval:
		p.Request = json.RawMessage(`{"id":"req-1","session_id":"s-sample","kind":"write","resource":"file:///path/to/workspace/notes.txt","risk":"medium","reason":"no token or allowance covers it in safe mode","summary":"write notes.txt"}`)
		if e == PostApproval {
			p.Answer = json.RawMessage(`{"decision":"allow_once","by":"local:user"}`)
		}
	case Notification:
		p.Level, p.Message = "info", "approval needed: write notes.txt"
	case PreCompact:
		p.Turn, p.Messages, p.Tokens = "t-sample", 12, 150000
	case SubagentStart, SubagentStop:
		p.SessionID, p.ParentSessionID, p.Description, p.Depth = "sub-sample", "s-sample", "find the bug", 1
		if e == SubagentStart {
			p.Prompt = "Find where the parser fails"
		} else {
			p.StopReason = "end_turn"
		}
	case DaemonStart:
		p.SessionID, p.Workspace = "", ""
	case DaemonStop:
		p.SessionID, p.Workspace, p.Reason = "", "", "shutdown"
	}
	return p
}
