package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
)

// fakeBackend is a minimal runtime: sessions in memory, a turn that
// streams two events, approvals answered once.
type fakeBackend struct {
	events Publisher

	mu       sync.Mutex
	sessions map[string]api.SessionInfo // guarded by mu
	answered map[string]string          // guarded by mu; approval request -> decision
	shutdown bool                       // guarded by mu
}

var _ Backend = (*fakeBackend)(nil)

func newFake(deps BackendDeps) *fakeBackend {
	return &fakeBackend{events: deps.Events, sessions: map[string]api.SessionInfo{}, answered: map[string]string{"r-old": "deny"}}
}

func (f *fakeBackend) session(id string) (api.SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[id]
	if !ok {
		return s, fmt.Errorf("%w: session %q", api.ErrNotFound, id)
	}
	return s, nil
}

func (f *fakeBackend) CreateSession(_ context.Context, c Caller, p api.CreateSessionParams) (api.SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := api.SessionInfo{ID: fmt.Sprintf("s%d", len(f.sessions)+1), Workspace: p.Workspace, Mode: "safe", Title: c.Frontend, Active: true, CreatedAt: time.Now()}
	f.sessions[s.ID] = s
	return s, nil
}

func (f *fakeBackend) ResumeSession(_ context.Context, _ Caller, p api.ResumeSessionParams) (api.SessionInfo, error) {
	return f.session(p.Session)
}

func (f *fakeBackend) ListSessions(context.Context, Caller, api.ListSessionsParams) (api.ListSessionsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r api.ListSessionsResult
	for _, s := range f.sessions {
		r.Sessions = append(r.Sessions, s)
	}
	return r, nil
}

func (f *fakeBackend) EndSession(_ context.Context, _ Caller, p api.EndSessionParams) (api.Empty, error) {
	_, err := f.session(p.Session)
	return api.Empty{}, err
}

func (f *fakeBackend) SendInput(_ context.Context, _ Caller, p api.SendInputParams) (api.SendInputResult, error) {
	if _, err := f.session(p.Session); err != nil {
		return api.SendInputResult{}, err
	}
	e1, _ := api.NewEvent(p.Session, api.EventTextDelta, api.TextDelta{Turn: "t1", Text: "echo: " + p.Text})
	e2, _ := api.NewEvent(p.Session, api.EventTurnComplete, api.TurnComplete{Turn: "t1", StopReason: "end_turn"})
	f.events.Publish(e1)
	f.events.Publish(e2)
	return api.SendInputResult{Turn: "t1"}, nil
}

func (f *fakeBackend) CancelTurn(_ context.Context, _ Caller, p api.CancelTurnParams) (api.CancelTurnResult, error) {
	return api.CancelTurnResult{Cancelled: false}, nil
}

func (f *fakeBackend) ApprovalResponse(_ context.Context, _ Caller, p api.ApprovalResponseParams) (api.Empty, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.answered[p.Request]; ok {
		return api.Empty{}, fmt.Errorf("%w: already answered %s", api.ErrConflict, d)
	}
	f.answered[p.Request] = p.Decision
	return api.Empty{}, nil
}

func (f *fakeBackend) ElicitationResponse(context.Context, Caller, api.ElicitationResponseParams) (api.Empty, error) {
	return api.Empty{}, fmt.Errorf("%w: no elicitation waiting", api.ErrNotFound)
}

func (f *fakeBackend) SessionBudget(_ context.Context, _ Caller, p api.SessionBudgetParams) (api.Budget, error) {
	return api.Budget{Session: p.Session, SpentUSD: 1.5, SessionLimitUSD: 100}, nil
}

func (f *fakeBackend) ShowSession(_ context.Context, _ Caller, p api.ShowSessionParams) (api.SessionDetail, error) {
	s, err := f.session(p.Session)
	return api.SessionDetail{SessionInfo: s, Messages: []byte("[]")}, err
}

// DeleteSession refuses a session titled "busy", as a runtime refuses one
// running a turn.
func (f *fakeBackend) DeleteSession(_ context.Context, _ Caller, p api.DeleteSessionParams) (api.Empty, error) {
	s, err := f.session(p.Session)
	if err != nil {
		return api.Empty{}, err
	}
	if s.Title == "busy" {
		return api.Empty{}, fmt.Errorf("%w: session %s is busy", api.ErrConflict, p.Session)
	}
	f.mu.Lock()
	delete(f.sessions, p.Session)
	f.mu.Unlock()
	return api.Empty{}, nil
}

// CleanupSessions deletes every session created before p.Before, keeping
// the busy ones.
func (f *fakeBackend) CleanupSessions(_ context.Context, _ Caller, p api.CleanupSessionsParams) (api.CleanupSessionsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res := api.CleanupSessionsResult{Deleted: []string{}}
	for id, s := range f.sessions {
		switch {
		case !s.CreatedAt.Before(p.Before):
		case s.Title == "busy":
			res.Kept = append(res.Kept, id)
		default:
			res.Deleted = append(res.Deleted, id)
			delete(f.sessions, id)
		}
	}
	return res, nil
}

func (f *fakeBackend) ListServers(context.Context, Caller, api.Empty) (api.ListServersResult, error) {
	return api.ListServersResult{Servers: []api.ServerInfo{{Name: "fs", State: "stopped"}}}, nil
}

func (f *fakeBackend) StartServer(_ context.Context, _ Caller, p api.ServerParams) (api.ServerInfo, error) {
	if p.Name != "fs" {
		return api.ServerInfo{}, fmt.Errorf("%w: server %q", api.ErrNotFound, p.Name)
	}
	return api.ServerInfo{Name: "fs", State: "running", Tools: 3}, nil
}

func (f *fakeBackend) StopServer(context.Context, Caller, api.ServerParams) (api.Empty, error) {
	return api.Empty{}, nil
}

func (f *fakeBackend) BeginServerLogin(_ context.Context, _ Caller, p api.ServerParams) (api.ServerLogin, error) {
	if p.Name != "web" {
		return api.ServerLogin{}, fmt.Errorf("%w: server %q", api.ErrNotFound, p.Name)
	}
	return api.ServerLogin{Login: "login-1", Server: "web", URL: "https://auth.example/authorize?x=1", Domain: "auth.example", RedirectURL: "http://127.0.0.1:9/callback"}, nil
}

func (f *fakeBackend) FinishServerLogin(_ context.Context, _ Caller, p api.FinishServerLoginParams) (api.Empty, error) {
	if p.Login != "login-1" {
		return api.Empty{}, fmt.Errorf("%w: login %q", api.ErrNotFound, p.Login)
	}
	return api.Empty{}, nil
}

func (f *fakeBackend) ServerLogout(_ context.Context, _ Caller, p api.ServerParams) (api.Empty, error) {
	if p.Name != "web" {
		return api.Empty{}, fmt.Errorf("%w: server %q", api.ErrNotFound, p.Name)
	}
	return api.Empty{}, nil
}

func (f *fakeBackend) ListTools(context.Context, Caller, api.ListToolsParams) (api.ListToolsResult, error) {
	return api.ListToolsResult{Tools: []api.ToolInfo{{Name: "read_file", Source: "builtin"}}}, nil
}

func (f *fakeBackend) ListCapsules(context.Context, Caller, api.Empty) (api.ListCapsulesResult, error) {
	return api.ListCapsulesResult{Capsules: []api.CapsuleInfo{}}, nil
}

func (f *fakeBackend) LoadCapsule(_ context.Context, _ Caller, p api.LoadCapsuleParams) (api.CapsuleInfo, error) {
	info := api.CapsuleInfo{ID: p.ID, Name: p.ID, State: "loaded"}
	e, _ := api.NewEvent("", api.EventCapsuleLoaded, info)
	f.events.Publish(e)
	return info, nil
}

func (f *fakeBackend) UnloadCapsule(_ context.Context, _ Caller, p api.UnloadCapsuleParams) (api.Empty, error) {
	return api.Empty{}, fmt.Errorf("%w: capsule %q is not loaded", api.ErrNotFound, p.ID)
}

func (f *fakeBackend) ListHooks(context.Context, Caller, api.ListHooksParams) (api.ListHooksResult, error) {
	return api.ListHooksResult{Hooks: []api.HookInfo{}}, nil
}

func (f *fakeBackend) TestHooks(_ context.Context, _ Caller, p api.TestHooksParams) (api.TestHooksResult, error) {
	return api.TestHooksResult{Event: p.Event, Runs: []api.HookRun{}}, nil
}

func (f *fakeBackend) TrustHooks(_ context.Context, _ Caller, p api.TrustHooksParams) (api.TrustHooksResult, error) {
	return api.TrustHooksResult{Workspace: p.Workspace}, nil
}

func (f *fakeBackend) Stats() BackendStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return BackendStats{Runtime: true, Sessions: len(f.sessions), Servers: 1}
}

func (f *fakeBackend) Shutdown(context.Context) error {
	f.mu.Lock()
	f.shutdown = true
	f.mu.Unlock()
	return nil
}

// TestFakeBackend drives every backend method through the client and the
// daemon, with the errors a runtime maps.
func TestFakeBackend(t *testing.T) {
	h := newHome(t, "")
	opts := h.options()
	var fake *fakeBackend
	opts.NewBackend = func(_ context.Context, deps BackendDeps) (Backend, error) {
		if deps.Core == nil || deps.Config == nil || deps.Logger == nil {
			return nil, errors.New("incomplete deps")
		}
		fake = newFake(deps)
		return fake, nil
	}
	r := start(t, h, opts)
	c := dial(t, h)
	ctx := tctx(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	s, err := c.CreateSession(ctx, api.CreateSessionParams{Workspace: "/w"})
	must(err)
	if s.ID != "s1" || s.Title != "test" {
		t.Errorf("session %+v (the caller's frontend should reach the backend)", s)
	}
	if _, err := c.CreateSession(ctx, api.CreateSessionParams{Workspace: "w"}); !errors.Is(err, client.ErrInvalidParams) {
		t.Errorf("relative workspace: %v", err)
	}
	if got, err := c.ResumeSession(ctx, "s1"); err != nil || got.ID != "s1" {
		t.Errorf("resume %+v %v", got, err)
	}
	if _, err := c.ResumeSession(ctx, "nope"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("resume unknown: %v", err)
	}
	if list, err := c.ListSessions(ctx, api.ListSessionsParams{}); err != nil || len(list) != 1 {
		t.Errorf("list %+v %v", list, err)
	}
	_, err = c.Subscribe(ctx, "s1")
	must(err)
	turn, err := c.SendInput(ctx, "s1", "hello")
	must(err)
	if turn != "t1" {
		t.Errorf("turn %q", turn)
	}
	e := next(t, c)
	var td api.TextDelta
	if e.Type != api.EventTextDelta || e.Decode(&td) != nil || td.Text != "echo: hello" {
		t.Errorf("event %+v", e)
	}
	if e := next(t, c); e.Type != api.EventTurnComplete || e.Seq != 2 {
		t.Errorf("event %+v", e)
	}
	if ok, err := c.CancelTurn(ctx, api.CancelTurnParams{Session: "s1"}); err != nil || ok {
		t.Errorf("cancel %v %v", ok, err)
	}
	must(c.ApprovalResponse(ctx, api.ApprovalResponseParams{Session: "s1", Request: "r1", Decision: api.DecisionAllowSession}))
	if err := c.ApprovalResponse(ctx, api.ApprovalResponseParams{Session: "s1", Request: "r1", Decision: api.DecisionDeny}); !errors.Is(err, client.ErrConflict) {
		t.Errorf("second approval answer: %v", err)
	}
	if err := c.ElicitationResponse(ctx, api.ElicitationResponseParams{Session: "s1", Request: "e", Action: api.ElicitAccept}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("elicitation: %v", err)
	}
	if b, err := c.SessionBudget(ctx, "s1"); err != nil || b.SpentUSD != 1.5 {
		t.Errorf("budget %+v %v", b, err)
	}
	if sv, err := c.ListServers(ctx); err != nil || len(sv) != 1 {
		t.Errorf("servers %+v %v", sv, err)
	}
	if sv, err := c.StartServer(ctx, "fs"); err != nil || sv.State != "running" {
		t.Errorf("start server %+v %v", sv, err)
	}
	if _, err := c.StartServer(ctx, "nope"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("start unknown server: %v", err)
	}
	must(c.StopServer(ctx, "fs"))
	if l, err := c.BeginServerLogin(ctx, "web"); err != nil || l.Login != "login-1" || l.Domain != "auth.example" {
		t.Errorf("begin login %+v %v", l, err)
	}
	if _, err := c.BeginServerLogin(ctx, "nope"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("begin login of an unknown server: %v", err)
	}
	must(c.FinishServerLogin(ctx, "login-1"))
	if err := c.FinishServerLogin(ctx, "login-2"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("finish an unknown login: %v", err)
	}
	if err := c.FinishServerLogin(ctx, ""); !errors.Is(err, client.ErrInvalidParams) {
		t.Errorf("finish without a login id: %v", err)
	}
	must(c.ServerLogout(ctx, "web"))
	if tools, err := c.ListTools(ctx, api.ListToolsParams{Session: "s1"}); err != nil || len(tools) != 1 {
		t.Errorf("tools %+v %v", tools, err)
	}
	if cs, err := c.ListCapsules(ctx); err != nil || cs == nil {
		t.Errorf("capsules %+v %v", cs, err)
	}
	if _, err := c.LoadCapsule(ctx, api.LoadCapsuleParams{ID: "c1", Path: "/x"}); !errors.Is(err, client.ErrInvalidParams) {
		t.Errorf("load with id and path: %v", err)
	}
	if ci, err := c.LoadCapsule(ctx, api.LoadCapsuleParams{ID: "c1"}); err != nil || ci.State != "loaded" {
		t.Errorf("load %+v %v", ci, err)
	}
	if e := next(t, c); e.Type != api.EventCapsuleLoaded || e.Session != "" {
		t.Errorf("capsule event %+v", e)
	}
	if err := c.UnloadCapsule(ctx, "c2"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unload: %v", err)
	}
	must(c.EndSession(ctx, "s1"))
	st, err := c.Status(ctx)
	if err != nil || !st.Runtime || st.Sessions != 1 || st.Servers != 1 {
		t.Errorf("status %+v %v", st, err)
	}
	must(client.Stop(ctx, h.home))
	must(<-r.done)
	r.done <- nil
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !fake.shutdown {
		t.Error("Backend.Shutdown not called")
	}
}
