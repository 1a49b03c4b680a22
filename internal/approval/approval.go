// Package approval asks humans about actions and remembers their answers.
//
// When nothing else decided an action, the interceptor builds a Request and
// asks the session's frontend through an Asker. The five answers are:
//
//	allow_once       this exact action, this time
//	allow_session    an Allowance for the pattern, for the rest of the session
//	allow_workspace  an Allowance for the pattern, persisted for the workspace root
//	allow_always     a signed capability token (default TTL 1 h), linked to
//	                 the audit entry of the approval
//	deny             refuse, with an optional reason
//
// No frontend, a frontend that went away, or no answer within the approval
// timeout: the action is Deferred. It is stored durably with its full
// context, the agent is told it is pending, and a human can resolve it later;
// an approved deferred action is claimed for execution exactly once.
package approval

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Decision is a human's answer.
type Decision string

// The answers a human can give.
const (
	AllowOnce      Decision = "allow_once"
	AllowSession   Decision = "allow_session"
	AllowWorkspace Decision = "allow_workspace"
	AllowAlways    Decision = "allow_always"
	Deny           Decision = "deny"
)

// Valid reports whether d is one of the five answers.
func (d Decision) Valid() bool {
	switch d {
	case AllowOnce, AllowSession, AllowWorkspace, AllowAlways, Deny:
		return true
	}
	return false
}

// Allows reports whether d lets the action run.
func (d Decision) Allows() bool { return d.Valid() && d != Deny }

// ParseDecision accepts the decision names and the short scope names used on
// the command line (once, session, workspace, always, deny).
func ParseDecision(s string) (Decision, error) {
	switch s {
	case "once":
		return AllowOnce, nil
	case "session":
		return AllowSession, nil
	case "workspace":
		return AllowWorkspace, nil
	case "always":
		return AllowAlways, nil
	}
	if d := Decision(s); d.Valid() {
		return d, nil
	}
	return "", fmt.Errorf("unknown approval answer %q: want once, session, workspace, always or deny", s)
}

// Request is what a human is asked. Everything needed to decide is in it:
// the action, the exact resource, the risk, why it needs approval, and the
// pattern an "allow" for the session or workspace would cover.
type Request struct {
	ID        string    `json:"id"`
	SessionID string    `json:"session_id"`
	Principal string    `json:"principal"`
	Workspace string    `json:"workspace,omitempty"`
	Kind      string    `json:"kind"`
	Resource  string    `json:"resource"`
	Risk      string    `json:"risk"`
	Reason    string    `json:"reason"`
	Pattern   string    `json:"pattern"`
	Summary   string    `json:"summary"`
	Dynamic   bool      `json:"dynamic,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Answer is a human's decision about one request.
type Answer struct {
	Decision Decision `json:"decision"`
	Reason   string   `json:"reason,omitempty"`
	// By is the verified user who answered; Frontend where they answered.
	By       string `json:"by,omitempty"`
	Frontend string `json:"frontend,omitempty"`
}

// ErrNoFrontend means nobody is there to ask: the action is deferred.
var ErrNoFrontend = errors.New("no frontend can answer approvals for this session")

// Asker puts a request in front of a human and waits for the answer.
// Implementations must return when ctx is done (the interceptor sets the
// approval timeout on it); any error means the action is deferred, never
// allowed. Ask is called concurrently for different requests.
type Asker interface {
	Ask(ctx context.Context, req Request) (Answer, error)
}

// Registrar is an Asker that can hold an answer before it is asked. The
// interceptor registers a request before it announces it (so a frontend
// may answer the announcement at once) and releases it once Ask returned:
// an answer can then never arrive while nobody waits for it.
type Registrar interface {
	Register(req Request) (release func())
}

// Presenter is an Asker that puts its requests to the human in a form of
// its own (a sampling request's editable form), not as an approval
// prompt: frontends are told of the request but not asked to answer it.
type Presenter interface {
	Asker
	PresentsRequests()
}

// AskerFunc adapts a function to Asker.
type AskerFunc func(ctx context.Context, req Request) (Answer, error)

// Ask calls f.
func (f AskerFunc) Ask(ctx context.Context, req Request) (Answer, error) { return f(ctx, req) }
