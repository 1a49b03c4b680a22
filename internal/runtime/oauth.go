package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/mcp"
)

// OAuth logins through the daemon (astrid servers login NAME): the flow
// runs here, in the daemon, whose loopback listener receives the browser
// and whose token store the MCP manager reads. The frontend starts it
// (beginServerLogin returns the authorization URL to show), then waits
// for it (finishServerLogin).

// Login time limits: how long beginServerLogin waits for the flow to reach
// the user (metadata discovery, client registration), and how long a login
// may then wait for the browser.
var (
	loginStartTimeout = 30 * time.Second
	loginTimeout      = 5 * time.Minute
)

// loginFunc runs one interactive authorization of a server with a (the MCP
// manager's Login; tests substitute it).
type loginFunc func(ctx context.Context, server string, a mcp.Authorizer) error

// serverLogins are the logins in progress, by id. The zero value is ready.
type serverLogins struct {
	mu sync.Mutex
	m  map[string]*serverLogin // guarded by mu
}

// serverLogin is one authorization in progress; it is its own Authorizer.
type serverLogin struct {
	id, server string
	cancel     context.CancelFunc
	asked      atomic.Bool                   // Authorize was called
	shown      chan mcp.AuthorizationRequest // the first request; buffered
	done       chan struct{}                 // closed when the flow ended
	err        error                         // set before done is closed
}

// Authorize implements mcp.Authorizer: the request goes to the frontend
// through beginServerLogin, and the browser comes back to the flow's
// loopback listener ("" tells the flow to wait there).
func (l *serverLogin) Authorize(ctx context.Context, req mcp.AuthorizationRequest) (string, error) {
	if l.asked.Swap(true) {
		// A second request of the same login (a step-up) has nobody to
		// show it: the frontend only waits now.
		return "", fmt.Errorf("mcp server %s: the authorization server asked again; run the login again", l.server)
	}
	l.shown <- req // buffered: never blocks
	return "", nil
}

// begin starts a login of server with login and returns what the user must
// see, once the flow got that far. A previous login of the same server is
// cancelled.
func (ls *serverLogins) begin(ctx context.Context, server string, login loginFunc) (api.ServerLogin, error) {
	lctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	l := &serverLogin{id: newID("login"), server: server, cancel: cancel,
		shown: make(chan mcp.AuthorizationRequest, 1), done: make(chan struct{})}
	ls.mu.Lock()
	if ls.m == nil {
		ls.m = map[string]*serverLogin{}
	}
	for id, old := range ls.m {
		if old.server == server {
			old.cancel()
			delete(ls.m, id)
		}
	}
	ls.m[l.id] = l
	ls.mu.Unlock()
	go func() {
		l.err = login(lctx, server, l)
		cancel()
		close(l.done)
	}()
	wait := time.NewTimer(loginStartTimeout)
	defer wait.Stop()
	select {
	case req := <-l.shown:
		return api.ServerLogin{Login: l.id, Server: server, URL: req.URL, Domain: req.Domain, Issuer: req.Issuer,
			Scopes: req.Scopes, RedirectURL: req.RedirectURL}, nil
	case <-l.done:
		ls.forget(l.id)
		if l.err == nil {
			// Authorized without the user: the client credentials grant.
			return api.ServerLogin{Server: server, Done: true}, nil
		}
		return api.ServerLogin{}, l.err
	case <-wait.C:
		ls.abandon(l.id)
		return api.ServerLogin{}, fmt.Errorf("mcp server %s: no authorization URL within %v", server, loginStartTimeout)
	case <-ctx.Done():
		ls.abandon(l.id)
		return api.ServerLogin{}, ctx.Err()
	}
}

// finish waits for the login id to end. Leaving early (ctx) abandons it:
// nobody would learn its outcome.
func (ls *serverLogins) finish(ctx context.Context, id string) error {
	ls.mu.Lock()
	l := ls.m[id]
	ls.mu.Unlock()
	if l == nil {
		return fmt.Errorf("%w: login %q", api.ErrNotFound, id)
	}
	select {
	case <-l.done:
		ls.forget(id)
		return l.err
	case <-ctx.Done():
		ls.abandon(id)
		return ctx.Err()
	}
}

func (ls *serverLogins) forget(id string) {
	ls.mu.Lock()
	delete(ls.m, id)
	ls.mu.Unlock()
}

func (ls *serverLogins) abandon(id string) {
	ls.mu.Lock()
	l := ls.m[id]
	delete(ls.m, id)
	ls.mu.Unlock()
	if l != nil {
		l.cancel()
	}
}

// closeAll cancels every login (daemon shutdown).
func (ls *serverLogins) closeAll() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for id, l := range ls.m {
		l.cancel()
		delete(ls.m, id)
	}
}

// Authorize implements mcp.Authorizer for the authorizations a server
// needs during a session: a step-up to more scopes for a tool call, or a
// grant that expired and could not be refreshed. The authorization URL
// goes to that session's frontends as a URL elicitation (never to the
// model); the user who accepts opens it, and the flow's loopback listener
// waits for the browser. With no single session to ask (a start, a health
// check) the server needs `astrid servers login`.
func (r *Runtime) Authorize(ctx context.Context, req mcp.AuthorizationRequest) (string, error) {
	if req.Session == "" {
		return "", &mcp.AuthorizationRequiredError{Server: req.Server}
	}
	msg := fmt.Sprintf("MCP server %s needs your authorization at %s", req.Server, req.Domain)
	if len(req.Scopes) > 0 {
		msg += " for the scopes " + strings.Join(req.Scopes, " ")
	}
	msg += ". Open the link in a browser on the machine running Astrid; the call goes on once the browser comes back."
	res, err := r.Elicit(ctx, mcp.ElicitRequest{ID: newID("auth-"), Server: req.Server, Session: req.Session, Mode: "url",
		Message: msg, URL: req.URL, Domain: req.Domain})
	if err != nil {
		return "", err
	}
	if res.Action != "accept" {
		return "", fmt.Errorf("mcp server %s: the user did not authorize (%s)", req.Server, res.Action)
	}
	return "", nil
}

// BeginServerLogin implements daemon.Backend.
func (b *Backend) BeginServerLogin(ctx context.Context, c daemon.Caller, p api.ServerParams) (api.ServerLogin, error) {
	if b.MCP == nil {
		return b.Unavailable.BeginServerLogin(ctx, c, p)
	}
	res, err := b.logins.begin(ctx, p.Name, b.MCP.Login)
	return res, loginError(err)
}

// FinishServerLogin implements daemon.Backend.
func (b *Backend) FinishServerLogin(ctx context.Context, c daemon.Caller, p api.FinishServerLoginParams) (api.Empty, error) {
	if b.MCP == nil {
		return b.Unavailable.FinishServerLogin(ctx, c, p)
	}
	return api.Empty{}, loginError(b.logins.finish(ctx, p.Login))
}

// ServerLogout implements daemon.Backend.
func (b *Backend) ServerLogout(ctx context.Context, c daemon.Caller, p api.ServerParams) (api.Empty, error) {
	if b.MCP == nil {
		return b.Unavailable.ServerLogout(ctx, c, p)
	}
	return api.Empty{}, loginError(b.MCP.Logout(p.Name))
}

// loginError classifies a login's error for the caller: an unknown server
// is not found, a server OAuth does not apply to is invalid params, and a
// failed authorization (discovery, registration, a refused or mismatched
// answer, the browser never coming back) is an upstream failure whose
// message says why. The flow's errors never carry tokens or codes.
func loginError(err error) error {
	switch {
	case err == nil || errors.Is(err, api.ErrNotFound) || errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, mcp.ErrNotOAuth):
		return fmt.Errorf("%w: %v", api.ErrInvalidParams, err)
	}
	return fmt.Errorf("%w: %v", api.ErrUpstream, err)
}
