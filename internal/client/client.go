// Package client is the typed Go client of astridd's JSON-RPC API (package
// api): Dial connects to the daemon of an ASTRID_HOME, Connect also starts
// an ephemeral daemon when none answers, and a Client has one method per
// API method plus Events, the stream of notifications of its
// subscriptions. errors.go lists the errors and what a caller should do.
//
// # Auto-start
//
// Connect runs `astridd --ephemeral`, looked up next to the running
// executable (so `astrid` finds the astridd installed beside it), then on
// PATH, unless ConnectOptions.Exe names it. The daemon is detached (its own
// session, no terminal, stdin and stdout on /dev/null, stderr in
// $ASTRID_HOME/logs/astridd.stderr) and Connect waits until the port file
// appears and a status call succeeds. Two clients starting at once are
// fine: one daemon gets the home's lock, the other exits, and both clients
// connect to the winner.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/fanout"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/rpc"
)

// Client is a connection to the daemon. Its methods are safe for
// concurrent use.
type Client struct {
	conn   *rpc.Conn
	queue  *fanout.Queue
	events chan api.Event
	done   chan struct{} // closed when the connection and the event pump ended
	quit   chan struct{} // closed by Close
	once   sync.Once
	port   int
}

// DialOptions configure Dial.
type DialOptions struct {
	// Frontend names this client in the daemon's log and audit trail
	// ("cli", "tui", ...).
	Frontend string
	// EventBuffer bounds the events held for a slow reader of Events
	// (default 4096); beyond it events are dropped and a "lagged" event
	// says how many.
	EventBuffer int
}

// Dial connects to the daemon of h. It returns ErrNotRunning when no
// daemon answers there.
func Dial(ctx context.Context, h home.Dir, opts DialOptions) (*Client, error) {
	c, err := dial(ctx, h, opts)
	if errors.Is(err, ErrUnauthorized) {
		// The daemon may have restarted between our reading its port
		// and its token: read both again, once.
		c, err = dial(ctx, h, opts)
	}
	return c, err
}

func dial(ctx context.Context, h home.Dir, opts DialOptions) (*Client, error) {
	port, token, err := endpoint(h)
	if err != nil {
		return nil, err
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+token)
	if opts.Frontend != "" {
		hdr.Set("Astrid-Frontend", opts.Frontend)
	}
	ws, resp, err := websocket.Dial(ctx, "ws://127.0.0.1:"+strconv.Itoa(port)+"/rpc", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusUnauthorized, http.StatusForbidden:
				return nil, fmt.Errorf("%w: the daemon on port %d refused the connection (%s)", ErrUnauthorized, port, resp.Status)
			}
			return nil, fmt.Errorf("connect to the daemon on port %d: %s", port, resp.Status)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Nothing listens: the port file is left from a daemon that died.
		return nil, fmt.Errorf("%w (stale %s: %v)", ErrNotRunning, h.PortFile(), err)
	}
	c := &Client{queue: fanout.NewQueue(opts.EventBuffer, ""), events: make(chan api.Event),
		done: make(chan struct{}), quit: make(chan struct{}), port: port}
	c.conn = rpc.NewConn(ws, rpc.Options{Handler: c.notification})
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		c.conn.Run(context.Background())
		c.queue.Close()
	}()
	go func() {
		defer close(c.done)
		defer close(c.events)
		c.pump()
		<-ran
	}()
	return c, nil
}

// endpoint reads the port and token files.
func endpoint(h home.Dir) (int, string, error) {
	pb, err := os.ReadFile(h.PortFile())
	if errors.Is(err, os.ErrNotExist) {
		return 0, "", fmt.Errorf("%w (no %s)", ErrNotRunning, h.PortFile())
	}
	if err != nil {
		return 0, "", err
	}
	port, err := strconv.Atoi(strings.TrimSpace(string(pb)))
	if err != nil || port <= 0 || port > 65535 {
		return 0, "", fmt.Errorf("%s: not a port number", h.PortFile())
	}
	tb, err := os.ReadFile(h.TokenFile())
	if errors.Is(err, os.ErrNotExist) {
		return 0, "", fmt.Errorf("%w (no %s)", ErrNotRunning, h.TokenFile())
	}
	if err != nil {
		return 0, "", err
	}
	return port, strings.TrimSpace(string(tb)), nil
}

// notification runs on the read loop: it must not block.
func (c *Client) notification(_ context.Context, req *rpc.Request) (any, error) {
	if !req.Notification || req.Method != api.NotifyEvent {
		return nil, fmt.Errorf("%w: %s", rpc.ErrMethodNotFound, req.Method)
	}
	var e api.Event
	if err := json.Unmarshal(req.Params, &e); err != nil {
		return nil, err
	}
	c.queue.Push(e)
	return nil, nil
}

func (c *Client) pump() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		evs, err := c.queue.Next(ctx)
		if err != nil {
			return
		}
		for _, e := range evs {
			select {
			case c.events <- e:
			case <-c.quit:
				return
			}
		}
	}
}

// Events returns the notifications of this client's subscriptions, in
// order. It is closed when the connection ends. A reader that falls more
// than DialOptions.EventBuffer events behind gets a "lagged" event.
func (c *Client) Events() <-chan api.Event { return c.events }

// Done is closed when the connection has ended and Events is closed.
func (c *Client) Done() <-chan struct{} { return c.done }

// Port is the daemon's port.
func (c *Client) Port() int { return c.port }

// Close ends the connection and waits for its goroutines.
func (c *Client) Close() error {
	c.once.Do(func() {
		close(c.quit)
		c.conn.Close()
	})
	<-c.done
	return nil
}

// call makes one call; errors from the daemon unwrap to the sentinels of
// errors.go.
func call[R any](ctx context.Context, c *Client, method string, params any) (R, error) {
	var r R
	err := c.conn.Call(ctx, method, params, &r)
	return r, err
}

// CreateSession calls astrid.createSession.
func (c *Client) CreateSession(ctx context.Context, p api.CreateSessionParams) (api.SessionInfo, error) {
	return call[api.SessionInfo](ctx, c, api.MethodCreateSession, p)
}

// ResumeSession calls astrid.resumeSession.
func (c *Client) ResumeSession(ctx context.Context, session string) (api.SessionInfo, error) {
	return call[api.SessionInfo](ctx, c, api.MethodResumeSession, api.ResumeSessionParams{Session: session})
}

// ListSessions calls astrid.listSessions.
func (c *Client) ListSessions(ctx context.Context, p api.ListSessionsParams) ([]api.SessionInfo, error) {
	r, err := call[api.ListSessionsResult](ctx, c, api.MethodListSessions, p)
	return r.Sessions, err
}

// EndSession calls astrid.endSession.
func (c *Client) EndSession(ctx context.Context, session string) error {
	_, err := call[api.Empty](ctx, c, api.MethodEndSession, api.EndSessionParams{Session: session})
	return err
}

// SendInput calls astrid.sendInput and returns the turn's id.
func (c *Client) SendInput(ctx context.Context, session, text string) (string, error) {
	r, err := call[api.SendInputResult](ctx, c, api.MethodSendInput, api.SendInputParams{Session: session, Text: text})
	return r.Turn, err
}

// CancelTurn calls astrid.cancelTurn.
func (c *Client) CancelTurn(ctx context.Context, p api.CancelTurnParams) (bool, error) {
	r, err := call[api.CancelTurnResult](ctx, c, api.MethodCancelTurn, p)
	return r.Cancelled, err
}

// ApprovalResponse calls astrid.approvalResponse.
func (c *Client) ApprovalResponse(ctx context.Context, p api.ApprovalResponseParams) error {
	_, err := call[api.Empty](ctx, c, api.MethodApprovalResponse, p)
	return err
}

// ElicitationResponse calls astrid.elicitationResponse.
func (c *Client) ElicitationResponse(ctx context.Context, p api.ElicitationResponseParams) error {
	_, err := call[api.Empty](ctx, c, api.MethodElicitationResponse, p)
	return err
}

// ListApprovals calls astrid.listApprovals.
func (c *Client) ListApprovals(ctx context.Context, p api.ListApprovalsParams) ([]api.DeferredApproval, error) {
	r, err := call[api.ListApprovalsResult](ctx, c, api.MethodListApprovals, p)
	return r.Approvals, err
}

// ResolveApproval calls astrid.resolveApproval.
func (c *Client) ResolveApproval(ctx context.Context, p api.ResolveApprovalParams) (api.DeferredApproval, error) {
	return call[api.DeferredApproval](ctx, c, api.MethodResolveApproval, p)
}

// Status calls astrid.status.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	return call[api.Status](ctx, c, api.MethodStatus, nil)
}

// ListTokens lists the active capability tokens, or every stored one with
// p.All.
func (c *Client) ListTokens(ctx context.Context, p api.ListTokensParams) ([]api.TokenInfo, error) {
	r, err := call[api.ListTokensResult](ctx, c, api.MethodListTokens, p)
	return r.Tokens, err
}

// ShowToken returns one token and whether it verifies.
func (c *Client) ShowToken(ctx context.Context, id string) (api.TokenInfo, error) {
	return call[api.TokenInfo](ctx, c, api.MethodShowToken, api.TokenParams{ID: id})
}

// RevokeToken revokes a token and its descendants and returns the ids
// newly revoked.
func (c *Client) RevokeToken(ctx context.Context, p api.RevokeTokenParams) ([]string, error) {
	r, err := call[api.RevokeTokenResult](ctx, c, api.MethodRevokeToken, p)
	return r.Revoked, err
}

// ListServers calls astrid.listServers.
func (c *Client) ListServers(ctx context.Context) ([]api.ServerInfo, error) {
	r, err := call[api.ListServersResult](ctx, c, api.MethodListServers, nil)
	return r.Servers, err
}

// StartServer calls astrid.startServer.
func (c *Client) StartServer(ctx context.Context, name string) (api.ServerInfo, error) {
	return c.StartServerIn(ctx, "", name)
}

// StartServerIn calls astrid.startServer for a server as the workspace
// rooted at workspace sees it: one its .astrid/config.toml added, else a
// configured one.
func (c *Client) StartServerIn(ctx context.Context, workspace, name string) (api.ServerInfo, error) {
	return call[api.ServerInfo](ctx, c, api.MethodStartServer, api.ServerParams{Name: name, Workspace: workspace})
}

// StopServer calls astrid.stopServer.
func (c *Client) StopServer(ctx context.Context, name string) error {
	return c.StopServerIn(ctx, "", name)
}

// StopServerIn calls astrid.stopServer for a server as the workspace
// rooted at workspace sees it (see StartServerIn).
func (c *Client) StopServerIn(ctx context.Context, workspace, name string) error {
	_, err := call[api.Empty](ctx, c, api.MethodStopServer, api.ServerParams{Name: name, Workspace: workspace})
	return err
}

// BeginServerLogin calls astrid.beginServerLogin: an OAuth authorization
// of server starts in the daemon; show the result's URL to the user.
func (c *Client) BeginServerLogin(ctx context.Context, server string) (api.ServerLogin, error) {
	return call[api.ServerLogin](ctx, c, api.MethodBeginServerLogin, api.ServerParams{Name: server})
}

// FinishServerLogin calls astrid.finishServerLogin: it returns once the
// browser came back and the tokens are stored, or the login failed.
func (c *Client) FinishServerLogin(ctx context.Context, login string) error {
	_, err := call[api.Empty](ctx, c, api.MethodFinishServerLogin, api.FinishServerLoginParams{Login: login})
	return err
}

// ServerLogout calls astrid.serverLogout.
func (c *Client) ServerLogout(ctx context.Context, server string) error {
	_, err := call[api.Empty](ctx, c, api.MethodServerLogout, api.ServerParams{Name: server})
	return err
}

// ListTools calls astrid.listTools.
func (c *Client) ListTools(ctx context.Context, p api.ListToolsParams) ([]api.ToolInfo, error) {
	r, err := call[api.ListToolsResult](ctx, c, api.MethodListTools, p)
	return r.Tools, err
}

// SessionBudget calls astrid.sessionBudget.
func (c *Client) SessionBudget(ctx context.Context, session string) (api.Budget, error) {
	return call[api.Budget](ctx, c, api.MethodSessionBudget, api.SessionBudgetParams{Session: session})
}

// SessionAllowances calls astrid.sessionAllowances.
func (c *Client) SessionAllowances(ctx context.Context, p api.SessionAllowancesParams) ([]api.Allowance, error) {
	r, err := call[api.SessionAllowancesResult](ctx, c, api.MethodSessionAllowances, p)
	return r.Allowances, err
}

// SessionAudit calls astrid.sessionAudit.
func (c *Client) SessionAudit(ctx context.Context, p api.SessionAuditParams) ([]api.AuditEntry, error) {
	r, err := call[api.SessionAuditResult](ctx, c, api.MethodSessionAudit, p)
	return r.Entries, err
}

// ShowSession returns a saved session with its conversation.
func (c *Client) ShowSession(ctx context.Context, id string) (api.SessionDetail, error) {
	return call[api.SessionDetail](ctx, c, api.MethodShowSession, api.ShowSessionParams{Session: id})
}

// DeleteSession deletes a saved session (ErrConflict while a turn runs in
// it).
func (c *Client) DeleteSession(ctx context.Context, id string) error {
	_, err := call[api.Empty](ctx, c, api.MethodDeleteSession, api.DeleteSessionParams{Session: id})
	return err
}

// CleanupSessions deletes the saved sessions last updated before t that
// the daemon does not hold loaded.
func (c *Client) CleanupSessions(ctx context.Context, t time.Time) (api.CleanupSessionsResult, error) {
	return call[api.CleanupSessionsResult](ctx, c, api.MethodCleanupSessions, api.CleanupSessionsParams{Before: t})
}

// ListAudit returns the newest limit audit entries p selects (every one
// when limit is 0), oldest first, in pages of at most api.MaxAuditLimit
// (p.Limit and p.BeforeSeq are set per page).
func (c *Client) ListAudit(ctx context.Context, p api.ListAuditParams, limit int) ([]api.AuditEntry, error) {
	var pages [][]api.AuditEntry
	n := 0
	for limit == 0 || n < limit {
		p.Limit = api.MaxAuditLimit
		if limit > 0 {
			p.Limit = min(limit-n, api.MaxAuditLimit)
		}
		r, err := call[api.ListAuditResult](ctx, c, api.MethodListAudit, p)
		if err != nil {
			return nil, err
		}
		if len(r.Entries) > 0 {
			pages = append(pages, r.Entries)
			n += len(r.Entries)
		}
		if len(r.Entries) < p.Limit || r.Entries[0].Seq == 0 {
			break
		}
		p.BeforeSeq = r.Entries[0].Seq
	}
	out := make([]api.AuditEntry, 0, n)
	for i := len(pages) - 1; i >= 0; i-- {
		out = append(out, pages[i]...)
	}
	return out, nil
}

// ShowAudit returns one audit entry with its checked inclusion proof.
func (c *Client) ShowAudit(ctx context.Context, seq int64) (api.ShowAuditResult, error) {
	return call[api.ShowAuditResult](ctx, c, api.MethodShowAudit, api.ShowAuditParams{Seq: seq})
}

// AuditStats counts the audit log's entries.
func (c *Client) AuditStats(ctx context.Context) (api.AuditStatsResult, error) {
	return call[api.AuditStatsResult](ctx, c, api.MethodAuditStats, nil)
}

// AuditCheckpoint returns the latest signed checkpoint.
func (c *Client) AuditCheckpoint(ctx context.Context) (api.AuditCheckpoint, error) {
	return call[api.AuditCheckpoint](ctx, c, api.MethodAuditCheckpoint, nil)
}

// VerifyAudit has the daemon check the whole audit log (and that it
// extends kept, a checkpoint note kept earlier, when not empty).
func (c *Client) VerifyAudit(ctx context.Context, kept string) (api.VerifyAuditResult, error) {
	return call[api.VerifyAuditResult](ctx, c, api.MethodVerifyAudit, api.VerifyAuditParams{Checkpoint: kept})
}

// ListCapsules calls astrid.listCapsules.
func (c *Client) ListCapsules(ctx context.Context) ([]api.CapsuleInfo, error) {
	r, err := call[api.ListCapsulesResult](ctx, c, api.MethodListCapsules, nil)
	return r.Capsules, err
}

// ListHooks calls astrid.listHooks.
func (c *Client) ListHooks(ctx context.Context, p api.ListHooksParams) (api.ListHooksResult, error) {
	return call[api.ListHooksResult](ctx, c, api.MethodListHooks, p)
}

// TestHooks calls astrid.testHooks.
func (c *Client) TestHooks(ctx context.Context, p api.TestHooksParams) (api.TestHooksResult, error) {
	return call[api.TestHooksResult](ctx, c, api.MethodTestHooks, p)
}

// TrustHooks calls astrid.trustHooks.
func (c *Client) TrustHooks(ctx context.Context, p api.TrustHooksParams) (api.TrustHooksResult, error) {
	return call[api.TrustHooksResult](ctx, c, api.MethodTrustHooks, p)
}

// LoadCapsule calls astrid.loadCapsule.
func (c *Client) LoadCapsule(ctx context.Context, p api.LoadCapsuleParams) (api.CapsuleInfo, error) {
	return call[api.CapsuleInfo](ctx, c, api.MethodLoadCapsule, p)
}

// UnloadCapsule calls astrid.unloadCapsule.
func (c *Client) UnloadCapsule(ctx context.Context, id string) error {
	_, err := call[api.Empty](ctx, c, api.MethodUnloadCapsule, api.UnloadCapsuleParams{ID: id})
	return err
}

// Subscribe calls astrid.subscribeEvents; the events arrive on Events.
func (c *Client) Subscribe(ctx context.Context, session string) (string, error) {
	r, err := call[api.SubscribeEventsResult](ctx, c, api.MethodSubscribeEvents, api.SubscribeEventsParams{Session: session})
	return r.Subscription, err
}

// Unsubscribe calls astrid.unsubscribeEvents.
func (c *Client) Unsubscribe(ctx context.Context, subscription string) error {
	_, err := call[api.Empty](ctx, c, api.MethodUnsubscribeEvents, api.UnsubscribeEventsParams{Subscription: subscription})
	return err
}

// Shutdown calls astrid.shutdown: the daemon replies, then stops. Use Stop
// to also wait until it is gone.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := call[api.Empty](ctx, c, api.MethodShutdown, nil)
	return err
}

// ReloadConfig calls astrid.reloadConfig.
func (c *Client) ReloadConfig(ctx context.Context) (api.ReloadConfigResult, error) {
	return call[api.ReloadConfigResult](ctx, c, api.MethodReloadConfig, nil)
}

// Call makes a raw call, for methods this client does not wrap.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	return c.conn.Call(ctx, method, params, result)
}

// pollInterval is how often Connect and Stop look at the state files.
const pollInterval = 5 * time.Millisecond
