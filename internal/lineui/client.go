package lineui

import (
	"context"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
)

// Client is the part of the daemon API the chat front ends call.
// *client.Client implements it; tests use a fake. Its methods must be safe
// for concurrent use: the terminal UI calls them from Bubble Tea commands,
// each on its own goroutine. Errors should unwrap (errors.Is) to the api
// sentinels such as api.ErrUnavailable and api.ErrConflict.
type Client interface {
	// frontend.Client: sendInput, cancelTurn, approvalResponse and
	// elicitationResponse.
	frontend.Client

	ListSessions(ctx context.Context, p api.ListSessionsParams) ([]api.SessionInfo, error)
	ResumeSession(ctx context.Context, session string) (api.SessionInfo, error)
	EndSession(ctx context.Context, session string) error
	SessionBudget(ctx context.Context, session string) (api.Budget, error)
	SessionAllowances(ctx context.Context, p api.SessionAllowancesParams) ([]api.Allowance, error)
	SessionAudit(ctx context.Context, p api.SessionAuditParams) ([]api.AuditEntry, error)
	ListApprovals(ctx context.Context, p api.ListApprovalsParams) ([]api.DeferredApproval, error)
	ListServers(ctx context.Context) ([]api.ServerInfo, error)
	ListTools(ctx context.Context, p api.ListToolsParams) ([]api.ToolInfo, error)
	ListCapsules(ctx context.Context) ([]api.CapsuleInfo, error)
}

// Options configure Run and RunLines.
type Options struct {
	// Client calls the daemon; required.
	Client Client
	// Events are the events of Session's subscription, in order; the
	// channel is closed when the connection ends. Required.
	Events <-chan api.Event
	// Session is the session to chat in, as createSession or
	// resumeSession returned it.
	Session api.SessionInfo
	// Now is the clock (for the double Ctrl+C); nil means time.Now.
	Now func() time.Time
	// OpenURL opens a URL an elicitation asks the user to visit, after the
	// user agreed; nil means the URL is only shown.
	OpenURL func(url string) error
	// CallTimeout bounds each API call (default 30 s).
	CallTimeout time.Duration
	// Turns, when positive, makes RunLines return once that many turns
	// have finished, whatever input is left (the first-run demo runs one).
	Turns int
}

func (o Options) Clock() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) Timeout() time.Duration {
	if o.CallTimeout > 0 {
		return o.CallTimeout
	}
	return 30 * time.Second
}
