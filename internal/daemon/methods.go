package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/auditview"
	"github.com/astrid-runtime/astrid/internal/rpc"
	"github.com/astrid-runtime/astrid/internal/store"
	"github.com/astrid-runtime/astrid/internal/version"
)

// methodFunc serves one method for one connection, with raw params.
type methodFunc func(ctx context.Context, d *Daemon, c *clientConn, params json.RawMessage) (any, error)

// typed adapts a method with typed params: they are decoded strictly and
// validated before f runs.
func typed[P, R any](f func(d *Daemon, ctx context.Context, c *clientConn, p P) (R, error)) methodFunc {
	return func(ctx context.Context, d *Daemon, c *clientConn, raw json.RawMessage) (any, error) {
		var p P
		if err := rpc.DecodeParams(raw, &p); err != nil {
			return nil, err
		}
		return f(d, ctx, c, p)
	}
}

// backend adapts a Backend method.
func backend[P, R any](m func(b Backend) func(context.Context, Caller, P) (R, error)) methodFunc {
	return typed(func(d *Daemon, ctx context.Context, c *clientConn, p P) (R, error) {
		return m(d.backend)(ctx, c.caller, p)
	})
}

// methods is the dispatch table: every api method, and nothing else.
var methods = map[string]methodFunc{
	api.MethodCreateSession: backend(func(b Backend) func(context.Context, Caller, api.CreateSessionParams) (api.SessionInfo, error) {
		return b.CreateSession
	}),
	api.MethodResumeSession: backend(func(b Backend) func(context.Context, Caller, api.ResumeSessionParams) (api.SessionInfo, error) {
		return b.ResumeSession
	}),
	api.MethodListSessions: backend(func(b Backend) func(context.Context, Caller, api.ListSessionsParams) (api.ListSessionsResult, error) {
		return b.ListSessions
	}),
	api.MethodEndSession: backend(func(b Backend) func(context.Context, Caller, api.EndSessionParams) (api.Empty, error) {
		return b.EndSession
	}),
	api.MethodSendInput: backend(func(b Backend) func(context.Context, Caller, api.SendInputParams) (api.SendInputResult, error) {
		return b.SendInput
	}),
	api.MethodCancelTurn: backend(func(b Backend) func(context.Context, Caller, api.CancelTurnParams) (api.CancelTurnResult, error) {
		return b.CancelTurn
	}),
	api.MethodApprovalResponse: backend(func(b Backend) func(context.Context, Caller, api.ApprovalResponseParams) (api.Empty, error) {
		return b.ApprovalResponse
	}),
	api.MethodElicitationResponse: backend(func(b Backend) func(context.Context, Caller, api.ElicitationResponseParams) (api.Empty, error) {
		return b.ElicitationResponse
	}),
	api.MethodSessionBudget: backend(func(b Backend) func(context.Context, Caller, api.SessionBudgetParams) (api.Budget, error) {
		return b.SessionBudget
	}),
	api.MethodListServers: backend(func(b Backend) func(context.Context, Caller, api.Empty) (api.ListServersResult, error) {
		return b.ListServers
	}),
	api.MethodStartServer: backend(func(b Backend) func(context.Context, Caller, api.ServerParams) (api.ServerInfo, error) {
		return b.StartServer
	}),
	api.MethodStopServer: backend(func(b Backend) func(context.Context, Caller, api.ServerParams) (api.Empty, error) {
		return b.StopServer
	}),
	api.MethodBeginServerLogin: backend(func(b Backend) func(context.Context, Caller, api.ServerParams) (api.ServerLogin, error) {
		return b.BeginServerLogin
	}),
	api.MethodFinishServerLogin: backend(func(b Backend) func(context.Context, Caller, api.FinishServerLoginParams) (api.Empty, error) {
		return b.FinishServerLogin
	}),
	api.MethodServerLogout: backend(func(b Backend) func(context.Context, Caller, api.ServerParams) (api.Empty, error) {
		return b.ServerLogout
	}),
	api.MethodListTools: backend(func(b Backend) func(context.Context, Caller, api.ListToolsParams) (api.ListToolsResult, error) {
		return b.ListTools
	}),
	api.MethodListCapsules: backend(func(b Backend) func(context.Context, Caller, api.Empty) (api.ListCapsulesResult, error) {
		return b.ListCapsules
	}),
	api.MethodLoadCapsule: backend(func(b Backend) func(context.Context, Caller, api.LoadCapsuleParams) (api.CapsuleInfo, error) {
		return b.LoadCapsule
	}),
	api.MethodListHooks: backend(func(b Backend) func(context.Context, Caller, api.ListHooksParams) (api.ListHooksResult, error) {
		return b.ListHooks
	}),
	api.MethodTestHooks: backend(func(b Backend) func(context.Context, Caller, api.TestHooksParams) (api.TestHooksResult, error) {
		return b.TestHooks
	}),
	api.MethodTrustHooks: backend(func(b Backend) func(context.Context, Caller, api.TrustHooksParams) (api.TrustHooksResult, error) {
		return b.TrustHooks
	}),
	api.MethodUnloadCapsule: backend(func(b Backend) func(context.Context, Caller, api.UnloadCapsuleParams) (api.Empty, error) {
		return b.UnloadCapsule
	}),

	api.MethodStatus:            typed((*Daemon).status),
	api.MethodListApprovals:     typed((*Daemon).listApprovals),
	api.MethodResolveApproval:   typed((*Daemon).resolveApproval),
	api.MethodSessionAllowances: typed((*Daemon).sessionAllowances),
	api.MethodSessionAudit:      typed((*Daemon).sessionAudit),
	api.MethodListTokens:        typed((*Daemon).listTokens),
	api.MethodShowToken:         typed((*Daemon).showToken),
	api.MethodRevokeToken:       typed((*Daemon).revokeToken),
	api.MethodShowSession:       typed((*Daemon).showSession),
	api.MethodDeleteSession:     typed((*Daemon).deleteSession),
	api.MethodCleanupSessions:   typed((*Daemon).cleanupSessions),
	api.MethodListAudit:         typed((*Daemon).listAudit),
	api.MethodShowAudit:         typed((*Daemon).showAudit),
	api.MethodAuditStats:        typed((*Daemon).auditStats),
	api.MethodAuditCheckpoint:   typed((*Daemon).auditCheckpoint),
	api.MethodVerifyAudit:       typed((*Daemon).verifyAudit),
	api.MethodShutdown:          typed((*Daemon).shutdownMethod),
	api.MethodReloadConfig:      typed((*Daemon).reloadConfig),
	api.MethodSubscribeEvents:   typed((*Daemon).subscribeEvents),
	api.MethodUnsubscribeEvents: typed((*Daemon).unsubscribeEvents),
}

// handler returns the rpc.Handler of one connection.
func (d *Daemon) handler(c *clientConn) rpc.Handler {
	return func(ctx context.Context, req *rpc.Request) (any, error) {
		if req.Notification {
			return nil, nil // the API has no client notifications
		}
		m := methods[req.Method]
		d.metrics.request(req.Method, m != nil)
		if m == nil {
			return nil, fmt.Errorf("%w: %q", rpc.ErrMethodNotFound, req.Method)
		}
		res, err := m(ctx, d, c, req.Params)
		if err != nil {
			d.log.Debug("call failed", "conn", c.caller.Conn, "method", req.Method, "err", err)
		}
		return res, err
	}
}

func (d *Daemon) status(ctx context.Context, c *clientConn, _ api.Empty) (api.Status, error) {
	mode := api.ModePersistent
	if d.opts.Ephemeral {
		mode = api.ModeEphemeral
	}
	pending, err := d.core.DB.Deferred().ListDeferred(ctx, approval.Pending)
	if err != nil {
		return api.Status{}, err
	}
	bs := d.backend.Stats()
	return api.Status{
		Version: version.String(), PID: os.Getpid(), Mode: mode, Home: d.opts.Home.Path(),
		StartedAt: d.started.UTC(), UptimeSecs: time.Since(d.started).Seconds(),
		Connections: d.connCount(), Subscribers: int(d.streams.Load()),
		Sessions: bs.Sessions, Servers: bs.Servers, Capsules: bs.Capsules,
		PendingApprovals: len(pending), LandlockABI: landlockABI(), Runtime: bs.Runtime,
	}, nil
}

// landlockABI asks the kernel for its Landlock ABI version; 0 means none.
func landlockABI() int {
	r, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(r)
}

func (d *Daemon) listApprovals(ctx context.Context, c *clientConn, p api.ListApprovalsParams) (api.ListApprovalsResult, error) {
	var states []approval.Status
	if !p.All {
		states = append(states, approval.Pending)
	}
	ds, err := d.core.DB.Deferred().ListDeferred(ctx, states...)
	if err != nil {
		return api.ListApprovalsResult{}, err
	}
	out := api.ListApprovalsResult{Approvals: []api.DeferredApproval{}}
	for _, x := range ds {
		if p.Session == "" || x.SessionID == p.Session {
			out.Approvals = append(out.Approvals, apiDeferred(x))
		}
	}
	return out, nil
}

func (d *Daemon) resolveApproval(ctx context.Context, c *clientConn, p api.ResolveApprovalParams) (api.DeferredApproval, error) {
	ans := approval.Answer{Decision: approval.Decision(p.Decision), Reason: p.Reason, By: c.caller.User, Frontend: c.caller.Frontend}
	x, err := d.core.Interceptor.Resolve(ctx, p.ID, ans)
	switch {
	case errors.Is(err, approval.ErrNotFound):
		return api.DeferredApproval{}, fmt.Errorf("%w: no deferred approval %q", api.ErrNotFound, p.ID)
	case errors.Is(err, approval.ErrAlreadyResolved):
		return api.DeferredApproval{}, fmt.Errorf("%w: deferred approval %q was already answered", api.ErrConflict, p.ID)
	case err != nil:
		return api.DeferredApproval{}, err
	}
	// NOTE: the answer is recorded; whatever happens next, the method
	// reports the record as it is then.
	dr, ok := d.backend.(DeferredRunner)
	if !ok {
		return apiDeferred(x), nil
	}
	outcome, rerr := dr.DeferredResolved(ctx, x)
	if rerr != nil {
		d.log.Error("settling a resolved deferred approval", "id", x.ID, "err", rerr)
	}
	if now, gerr := d.core.DB.Deferred().GetDeferred(context.WithoutCancel(ctx), x.ID); gerr == nil {
		x = now
	}
	v := apiDeferred(x)
	v.Outcome = outcome
	return v, nil
}

func (d *Daemon) sessionAllowances(ctx context.Context, c *clientConn, p api.SessionAllowancesParams) (api.SessionAllowancesResult, error) {
	out := api.SessionAllowancesResult{Allowances: []api.Allowance{}}
	add := func(scope approval.AllowanceScope, binding string) error {
		as, err := d.core.Allowances.List(ctx, scope, binding)
		for _, a := range as {
			out.Allowances = append(out.Allowances, api.Allowance{
				ID: a.ID, Scope: string(a.Scope), Binding: a.Binding, Pattern: a.Pattern,
				Permission: a.Permission.String(), CreatedAt: a.CreatedAt.UTC(), Approval: a.Approval,
			})
		}
		return err
	}
	if err := add(approval.ScopeSession, p.Session); err != nil {
		return out, err
	}
	if p.Workspace != "" {
		if err := add(approval.ScopeWorkspace, p.Workspace); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (d *Daemon) sessionAudit(ctx context.Context, c *clientConn, p api.SessionAuditParams) (api.SessionAuditResult, error) {
	limit := p.Limit
	if limit == 0 {
		limit = 100
	}
	es, err := auditview.List(ctx, d.core.DB.Audit(), store.AuditFilter{Session: p.Session, Since: p.Since, Limit: limit})
	return api.SessionAuditResult{Entries: es}, err
}

func (d *Daemon) shutdownMethod(ctx context.Context, c *clientConn, _ api.ShutdownParams) (api.Empty, error) {
	d.log.Info("shutdown requested", "conn", c.caller.Conn, "frontend", c.caller.Frontend)
	d.requestShutdown()
	return api.Empty{}, nil
}

func (d *Daemon) subscribeEvents(ctx context.Context, c *clientConn, p api.SubscribeEventsParams) (api.SubscribeEventsResult, error) {
	id, ok := c.subscribe(d, p.Session)
	if !ok {
		return api.SubscribeEventsResult{}, fmt.Errorf("%w: the connection is closing", api.ErrUnavailable)
	}
	return api.SubscribeEventsResult{Subscription: id}, nil
}

func (d *Daemon) unsubscribeEvents(ctx context.Context, c *clientConn, p api.UnsubscribeEventsParams) (api.Empty, error) {
	if !c.unsubscribe(p.Subscription) {
		return api.Empty{}, fmt.Errorf("%w: no subscription %q on this connection", api.ErrNotFound, p.Subscription)
	}
	return api.Empty{}, nil
}

// ---- conversions ----

func apiRequest(r approval.Request) api.ApprovalRequest { return r.API() }

func apiAnswer(a approval.Answer) api.ApprovalAnswer { return a.API() }

func apiDeferred(x approval.Deferred) api.DeferredApproval { return x.API() }
