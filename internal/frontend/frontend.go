package frontend

import (
	"context"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
)

// Frontend is a chat frontend of one session: the user's side of Run.
//
// Concurrency: Show is called by Run's own goroutine only, one call at a
// time, in the order of the session's events. Input and the prompts
// (Approve and the optional ElicitForm and ElicitURL) are each called on a
// goroutine of their own, so they run while Show is called: a frontend
// guards whatever they share (its output, for one). At most one Input call
// and at most one prompt, of any kind, are outstanding at a time. Every
// call must return soon after its ctx is done; Run waits for them before
// it returns.
type Frontend interface {
	// Input waits for the user's next input and returns its text, which
	// Run sends as a turn. Run calls it only between turns and while no
	// request is asked, so a frontend whose approvals are answered from the
	// same stream (line mode) keeps the rest for Approve. Text that arrives anyway while a turn runs (one
	// another frontend started) is sent once that turn has finished; blank
	// text is ignored. io.EOF means the user is done: Run returns once the
	// running turn has finished and no request is asked. Any other error ends the input the same
	// way and Run returns it.
	Input(ctx context.Context) (string, error)

	// Show shows one piece of output, already sanitized. An error is shown
	// (as KindError output, once) and Run goes on.
	Show(ctx context.Context, o Output) error

	// Approve asks the user to answer an approval request: it shows the
	// risk, the exact resource (whole, never clipped) and the five answers
	// (api.DecisionAllowOnce … api.DecisionDeny), and returns the user's
	// choice. ctx is cancelled when the request is answered elsewhere (Run
	// then shows KindApproval output), when its deadline passes, or when
	// Run returns; return ctx's error then. An error, or a decision that is
	// not one of the five, sends no answer: the daemon defers the action.
	Approve(ctx context.Context, req api.ApprovalNeeded) (Answer, error)
}

// Answer is the user's answer to an approval request.
type Answer struct {
	// Decision is one of api.DecisionAllowOnce, DecisionAllowSession,
	// DecisionAllowWorkspace, DecisionAllowAlways and DecisionDeny.
	Decision string
	// Reason is an optional note recorded with the answer.
	Reason string
}

// FormEliciter is a Frontend that can fill an MCP server's form. Without
// it, Run declines form requests and says so.
type FormEliciter interface {
	// ElicitForm shows the form and returns the user's answer: Action
	// api.ElicitAccept with Values, or ElicitDecline or ElicitCancel. Run
	// applies the schema's defaults for omitted fields and checks the
	// values against it before sending; a value that does not fit (or an
	// error) is answered "cancel". Concurrency as for Approve.
	ElicitForm(ctx context.Context, f Form) (FormAnswer, error)
}

// URLEliciter is a Frontend that can ask the user to open a URL an MCP
// server names (an OAuth login, a payment page). Without it, Run declines
// URL requests and says so.
type URLEliciter interface {
	// ElicitURL shows the URL with its domain prominently and asks whether
	// to open it. It returns true when the user opened it (or agreed to)
	// and false when the user declined. ctx is cancelled when the server
	// says the interaction is complete, or when Run returns. Concurrency
	// as for Approve.
	ElicitURL(ctx context.Context, u URLRequest) (bool, error)
}

// Interrupter is a Frontend whose user can interrupt the running turn
// (Ctrl+C, a /cancel message, a button).
type Interrupter interface {
	// Interrupts delivers a value each time the user asks to cancel the
	// running turn; Run calls cancelTurn for it (nothing when idle). Run
	// calls it once, at the start.
	Interrupts() <-chan struct{}
}

// Form is an MCP server's request for input through a form.
type Form struct {
	Server  string // sanitized
	Message string // sanitized; may span lines
	Fields  []Field
	// Sampling marks the form of the server's sampling request: accepting
	// it approves sending the prompt (as edited) to the model, charged to
	// the session (api.ElicitationNeeded.Sampling).
	Sampling bool
}

// FormAnswer is the user's answer to a Form.
type FormAnswer struct {
	// Action is api.ElicitAccept, api.ElicitDecline or api.ElicitCancel.
	Action string
	// Values are the accepted form's values by field name: a string for
	// every field type (parsed by the field's type), or a bool, float64 or
	// int64. An omitted field takes the schema's default.
	Values map[string]any
}

// URLRequest is an MCP server's request that the user open a URL.
type URLRequest struct {
	Server  string // sanitized
	Message string // sanitized; may span lines
	// URL is the address to open, checked to be http or https with a host.
	// It is shown whole; it is sanitized, so it contains no control
	// character.
	URL string
	// Domain is the URL's host, which the user decides whether to trust.
	Domain string
}

// Kind names the kind of an Output.
type Kind int

// The kinds of output.
const (
	// KindText is a piece of the model's answer in Text; it may span lines
	// and end mid-line.
	KindText Kind = iota + 1
	// KindToolStart and KindToolResult are a tool call starting and its
	// outcome, in Tool.
	KindToolStart
	KindToolResult
	// KindNotice is a line that only informs, in Text: MCP progress and
	// task status, budget warnings, deferred results, a request waiting,
	// a request this frontend cannot answer.
	KindNotice
	// KindError is an error, in Text: the daemon's error event, a failed
	// call, a failed frontend call.
	KindError
	// KindUsage is the tokens and cost of a model call, in Usage.
	KindUsage
	// KindTurnStart says a turn (Turn) began: the session is busy.
	KindTurnStart
	// KindTurnEnd says the turn (Turn) ended, its stop reason in Text; the
	// session is idle unless another turn runs.
	KindTurnEnd
	// KindApproval is the outcome of an approval request (Approval): this
	// frontend's answer was delivered (Decision, Reason), or the request
	// was answered elsewhere (Elsewhere; Decision, By when known).
	KindApproval
)

// Output is one piece of output for Show. Every string in it is
// sanitized: one-line fields with SanitizeLine, Text of KindText with
// Sanitize.
type Output struct {
	Kind Kind
	Turn string
	Text string
	Tool ToolCall
	// Usage is set for KindUsage.
	Usage api.Usage
	// Approval, Decision, Reason, By and Elsewhere are set for
	// KindApproval.
	Approval  api.ApprovalRequest
	Decision  string
	Reason    string
	By        string
	Elsewhere bool
}

// ToolCall is a tool call of KindToolStart or KindToolResult output.
type ToolCall struct {
	Call     string
	Tool     string
	Resource string // whole
	// Args are the arguments on one line, at most 100 runes (start).
	Args string
	// Status is ok, error, denied or deferred (result).
	Status string
	// Output is the output shown to the model (result; may span lines);
	// Lines counts its lines.
	Output    string
	Lines     int
	Truncated bool
}

// Options configure Run.
type Options struct {
	// Client calls the daemon; required.
	Client Client
	// Events are the events of Session's subscription, in order; the
	// channel is closed when the connection ends. Required.
	Events <-chan api.Event
	// Session is the session, as createSession or resumeSession returned
	// it.
	Session api.SessionInfo
	// CallTimeout bounds each API call (default 30 s).
	CallTimeout time.Duration
	// Turns, when positive, makes Run return once that many turns have
	// finished, whatever input is left.
	Turns int
}

// Client is the part of the daemon API Run calls. *client.Client
// implements it. Its methods must be safe for concurrent use; errors
// should unwrap to the api sentinels (api.ErrConflict, api.ErrNotFound).
type Client interface {
	// SendInput starts a turn and returns its id; the output arrives as
	// events.
	SendInput(ctx context.Context, session, text string) (string, error)
	CancelTurn(ctx context.Context, p api.CancelTurnParams) (bool, error)
	ApprovalResponse(ctx context.Context, p api.ApprovalResponseParams) error
	ElicitationResponse(ctx context.Context, p api.ElicitationResponseParams) error
}
