package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/rpc"
	"github.com/astrid-runtime/astrid/internal/security"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupBinaries()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testHome is a temp ASTRID_HOME with a user config layer.
type testHome struct {
	tmp  string
	home home.Dir
	env  map[string]string
}

func newHome(t testing.TB, configTOML string) *testHome {
	t.Helper()
	tmp := t.TempDir()
	h := &testHome{tmp: tmp, home: home.Dir(filepath.Join(tmp, "home"))}
	h.env = map[string]string{"ASTRID_HOME": h.home.Path(), "HOME": tmp}
	if err := os.MkdirAll(h.home.Path(), 0o700); err != nil {
		t.Fatal(err)
	}
	if configTOML != "" {
		if err := os.WriteFile(h.home.ConfigFile(), []byte(configTOML), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func (h *testHome) options() Options {
	return Options{
		Home: h.home, Getenv: func(k string) string { return h.env[k] },
		SystemConfigFile: filepath.Join(h.tmp, "no-system-config.toml"),
	}
}

// running is an in-process daemon.
type running struct {
	d    *Daemon
	h    *testHome
	stop context.CancelFunc
	done chan error
}

// start runs Serve in the background until the test ends.
func start(t testing.TB, h *testHome, opts Options) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Daemon, 1)
	opts.Ready = func(d *Daemon) { ready <- d }
	r := &running{h: h, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- Serve(ctx, opts) }()
	select {
	case r.d = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon not ready after 20 s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return r
}

func dial(t testing.TB, h *testHome) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, h.home, client.DialOptions{Frontend: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// code returns the JSON-RPC code of err, or 0.
func code(err error) int {
	var e *rpc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// backendCalls has one call per Backend method, with valid params.
var backendCalls = []struct {
	method string
	params any
}{
	{api.MethodCreateSession, api.CreateSessionParams{Workspace: "/tmp"}},
	{api.MethodResumeSession, api.ResumeSessionParams{Session: "s1"}},
	{api.MethodListSessions, api.ListSessionsParams{}},
	{api.MethodEndSession, api.EndSessionParams{Session: "s1"}},
	{api.MethodSendInput, api.SendInputParams{Session: "s1", Text: "hi"}},
	{api.MethodCancelTurn, api.CancelTurnParams{Session: "s1"}},
	{api.MethodApprovalResponse, api.ApprovalResponseParams{Session: "s1", Request: "r1", Decision: "allow_once"}},
	{api.MethodElicitationResponse, api.ElicitationResponseParams{Session: "s1", Request: "e1", Action: "decline"}},
	{api.MethodSessionBudget, api.SessionBudgetParams{Session: "s1"}},
	{api.MethodListServers, nil},
	{api.MethodStartServer, api.ServerParams{Name: "fs"}},
	{api.MethodStopServer, api.ServerParams{Name: "fs"}},
	{api.MethodBeginServerLogin, api.ServerParams{Name: "web"}},
	{api.MethodFinishServerLogin, api.FinishServerLoginParams{Login: "l1"}},
	{api.MethodServerLogout, api.ServerParams{Name: "web"}},
	{api.MethodListTools, api.ListToolsParams{}},
	{api.MethodListCapsules, nil},
	{api.MethodLoadCapsule, api.LoadCapsuleParams{ID: "c1"}},
	{api.MethodUnloadCapsule, api.UnloadCapsuleParams{ID: "c1"}},
}

// TestUnavailableBackend: without a runtime, each backend method answers
// exactly the unavailable code, and status says there is no runtime.
func TestUnavailableBackend(t *testing.T) {
	h := newHome(t, "")
	start(t, h, h.options())
	c := dial(t, h)
	ctx := tctx(t)
	for _, bc := range backendCalls {
		err := c.Call(ctx, bc.method, bc.params, nil)
		if code(err) != rpc.CodeUnavailable || !errors.Is(err, client.ErrUnavailable) {
			t.Errorf("%s: got %v, want code %d", bc.method, err, rpc.CodeUnavailable)
		}
	}
	st, err := c.Status(ctx)
	if err != nil || st.Runtime {
		t.Fatalf("status %+v %v", st, err)
	}
}

// TestEveryMethodIsServed: the dispatch table has exactly the API's
// methods.
func TestEveryMethodIsServed(t *testing.T) {
	if len(methods) != len(api.Methods) {
		t.Errorf("%d methods served, %d in the API", len(methods), len(api.Methods))
	}
	for _, m := range api.Methods {
		if methods[m] == nil {
			t.Errorf("%s is not served", m)
		}
	}
}

func TestStatus(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	c := dial(t, h)
	dial(t, h)
	// The second dial returns once the client has read the 101; the
	// daemon counts the connection just after, so wait for it.
	var st api.Status
	waitFor(func() bool {
		var err error
		st, err = c.Status(tctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return st.Connections == 2
	})
	if st.PID != os.Getpid() || st.Mode != api.ModePersistent || st.Connections != 2 || st.Home != h.home.Path() || st.Version == "" || st.UptimeSecs <= 0 {
		t.Errorf("status %+v", st)
	}
	if c.Port() != r.d.port {
		t.Errorf("port %d vs %d", c.Port(), r.d.port)
	}
}

// TestStateFiles: token 0600 and 64 hex chars, port and pid match; they are
// gone after shutdown, and the token changes at each start.
func TestStateFiles(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	tok := readFile(t, h.home.TokenFile())
	fi, err := os.Stat(h.home.TokenFile())
	if err != nil || fi.Mode().Perm() != 0o600 || len(tok) != 64 {
		t.Fatalf("token %q mode %v %v", tok, fi.Mode(), err)
	}
	if p := readFile(t, h.home.PortFile()); p != strconv.Itoa(r.d.port) {
		t.Errorf("port file %q", p)
	}
	if p := readFile(t, h.home.PIDFile()); p != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file %q", p)
	}
	ctx := tctx(t)
	if err := client.Stop(ctx, h.home); err != nil {
		t.Fatal(err)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	r.done <- nil // for the cleanup
	for _, f := range []string{h.home.PortFile(), h.home.PIDFile(), h.home.TokenFile()} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after shutdown: %v", f, err)
		}
	}
	r2 := start(t, h, h.options())
	_ = r2
	if tok2 := readFile(t, h.home.TokenFile()); tok2 == tok {
		t.Error("the token did not change across restarts")
	}
	if err := client.Stop(ctx, h.home); err != nil {
		t.Fatal(err)
	}
	if err := client.Stop(ctx, h.home); !errors.Is(err, client.ErrNotRunning) {
		t.Errorf("stop when stopped: %v", err)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestSecondDaemonRefused(t *testing.T) {
	h := newHome(t, "")
	start(t, h, h.options())
	port := readFile(t, h.home.PortFile())
	err := Serve(context.Background(), h.options())
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), "port "+port) {
		t.Fatalf("second daemon: %v", err)
	}
	// The first one is untouched.
	if p := readFile(t, h.home.PortFile()); p != port {
		t.Errorf("port file changed to %s", p)
	}
	dial(t, h)
}

func TestStaleFilesReplaced(t *testing.T) {
	h := newHome(t, "")
	for f, v := range map[string]string{h.home.PIDFile(): "999999", h.home.PortFile(): "1", h.home.TokenFile(): "stale"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := tctx(t)
	if _, err := client.Dial(ctx, h.home, client.DialOptions{}); !errors.Is(err, client.ErrNotRunning) {
		t.Fatalf("dial with stale files: %v", err)
	}
	r := start(t, h, h.options())
	if readFile(t, h.home.PortFile()) != strconv.Itoa(r.d.port) || readFile(t, h.home.TokenFile()) == "stale" {
		t.Error("stale files not replaced")
	}
	dial(t, h)
	log := readFile(t, filepath.Join(h.home.LogsDir(), "daemon.log"))
	if !strings.Contains(log, "replacing the state files") || !strings.Contains(log, "999999") {
		t.Errorf("log does not mention the stale files:\n%s", log)
	}
}

func TestListenAddressRefused(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"0.0.0.0:0", "not a loopback address"},
		{"[::1]:0", "127.0.0.1 only"},
	} {
		h := newHome(t, "[gateway]\nlisten_addr = \""+tt.addr+"\"\n")
		err := Serve(context.Background(), h.options())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.addr, err)
		}
		if _, err := os.Stat(h.home.PortFile()); err == nil {
			t.Errorf("%s: port file written", tt.addr)
		}
	}
}

// TestAuth: the token and origin checks happen before any upgrade.
func TestAuth(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	tok := readFile(t, h.home.TokenFile())
	base := "http://" + r.d.Addr()
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		status  int
	}{
		{"no token", RPCPath, nil, http.StatusUnauthorized},
		{"wrong token", RPCPath, map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, http.StatusUnauthorized},
		{"short token", RPCPath, map[string]string{"Authorization": "Bearer " + tok[:10]}, http.StatusUnauthorized},
		{"basic scheme", RPCPath, map[string]string{"Authorization": "Basic " + tok}, http.StatusUnauthorized},
		{"browser origin", RPCPath, map[string]string{"Authorization": "Bearer " + tok, "Origin": "http://evil.example"}, http.StatusForbidden},
		{"other local port", RPCPath, map[string]string{"Authorization": "Bearer " + tok, "Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
		{"rebinding host", RPCPath, map[string]string{"Authorization": "Bearer " + tok, "Host": "evil.example"}, http.StatusForbidden},
		{"own origin", RPCPath, map[string]string{"Authorization": "Bearer " + tok, "Origin": base}, http.StatusSwitchingProtocols},
		{"no origin", RPCPath, map[string]string{"Authorization": "bearer " + tok}, http.StatusSwitchingProtocols},
		{"other path", "/", map[string]string{"Authorization": "Bearer " + tok}, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+tt.path, nil)
			for _, k := range []string{"Connection", "Upgrade", "Sec-WebSocket-Version", "Sec-WebSocket-Key"} {
				req.Header.Set(k, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}[k])
			}
			for k, v := range tt.headers {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	// The refused attempts never counted as connections. The counter moves
	// after the 101 reached the client, so give the server a moment.
	deadline := time.Now().Add(5 * time.Second)
	for r.d.metrics.connections.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := r.d.metrics.connections.Load(); n != 2 {
		t.Errorf("%d connections accepted, want 2", n)
	}
}

// TestBadFramesOverTheDaemon: bad input gets its code and the connection
// survives.
func TestBadFramesOverTheDaemon(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	ws := rawDial(t, r)
	for _, tt := range []struct {
		frame string
		code  int
	}{
		{`{"jsonrpc":"2.0","id":1,`, rpc.CodeParseError},
		{`{"jsonrpc":"2.0","id":2,"method":"astrid.nope"}`, rpc.CodeMethodNotFound},
		{`{"jsonrpc":"2.0","id":3,"method":"astrid.sessionAudit","params":{"sesion":"s"}}`, rpc.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":4,"method":"astrid.sessionAudit","params":{"session":7}}`, rpc.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":5,"method":"astrid.resolveApproval","params":{"id":"x","decision":"maybe"}}`, rpc.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":6,"method":"astrid.status","params":{"verbose":true}}`, rpc.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":7,"method":"astrid.status","params":"` + strings.Repeat("x", rpc.DefaultMaxFrame) + `"}`, rpc.CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":8,"method":"astrid.status","extra":1}`, rpc.CodeInvalidRequest},
	} {
		got := rawCall(t, ws, tt.frame)
		if !strings.Contains(got, `"code":`+strconv.Itoa(tt.code)) {
			t.Errorf("%.80s: got %.200s", tt.frame, got)
		}
	}
	if got := rawCall(t, ws, `{"jsonrpc":"2.0","id":9,"method":"astrid.status"}`); !strings.Contains(got, `"result"`) {
		t.Errorf("connection did not survive: %s", got)
	}
}

func rawDial(t *testing.T, r *running) *websocket.Conn {
	t.Helper()
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+readFile(t, r.h.home.TokenFile()))
	ws, _, err := websocket.Dial(tctx(t), "ws://"+r.d.Addr()+RPCPath, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

func rawCall(t *testing.T, ws *websocket.Conn, frame string) string {
	t.Helper()
	ctx := tctx(t)
	if err := ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deferAction makes the interceptor defer one write in session s (no
// frontend can answer) and returns its id.
func deferAction(t *testing.T, d *Daemon, session, ws, file string) string {
	t.Helper()
	a, err := security.NewFileAction(security.FileWrite, security.Session{ID: session, Principal: "me", Workspace: ws}, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.core.Interceptor.Intercept(context.Background(), a)
	var de *security.DeferredError
	if !errors.As(err, &de) {
		t.Fatalf("intercept: %v", err)
	}
	return de.ID
}

func next(t *testing.T, c *client.Client) api.Event {
	t.Helper()
	select {
	case e, ok := <-c.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return api.Event{}
}

// TestDeferredApprovalsAcrossFrontends: two frontends watch a session; a
// deferred action reaches both; the first answer wins, the second gets
// conflict, and both hear the resolution.
func TestDeferredApprovalsAcrossFrontends(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	a, b := dial(t, h), dial(t, h)
	ctx := tctx(t)
	for _, c := range []*client.Client{a, b} {
		if _, err := c.Subscribe(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
	}
	ws := filepath.Join(h.tmp, "ws")
	os.MkdirAll(ws, 0o755)
	id := deferAction(t, r.d, "s1", ws, "a.txt")
	deferAction(t, r.d, "s2", ws, "b.txt") // another session: not seen
	for _, c := range []*client.Client{a, b} {
		e := next(t, c)
		var need api.ApprovalNeeded
		if e.Type != api.EventApprovalNeeded || e.Decode(&need) != nil || need.Request.ID != id || e.Seq != 1 || e.Session != "s1" {
			t.Fatalf("first event %+v", e)
		}
		e = next(t, c)
		var res api.ApprovalResolved
		if e.Type != api.EventApprovalResolved || e.Decode(&res) != nil || res.Decision != "deferred" || res.Deferred != id || e.Seq != 2 {
			t.Fatalf("second event %+v %+v", e, res)
		}
	}
	list, err := a.ListApprovals(ctx, api.ListApprovalsParams{Session: "s1"})
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Status != "pending" || list[0].Request.Kind == "" {
		t.Fatalf("list %+v %v", list, err)
	}
	if all, _ := a.ListApprovals(ctx, api.ListApprovalsParams{}); len(all) != 2 {
		t.Errorf("all sessions: %d", len(all))
	}
	got, err := a.ResolveApproval(ctx, api.ResolveApprovalParams{ID: id, Decision: api.DecisionAllowOnce, Reason: "ok"})
	if err != nil || got.Status != "approved" || got.Answer == nil || got.Answer.Frontend != "test" || !strings.HasPrefix(got.Answer.By, "local:") {
		t.Fatalf("resolve: %+v %v", got, err)
	}
	_, err = b.ResolveApproval(ctx, api.ResolveApprovalParams{ID: id, Decision: api.DecisionDeny})
	if !errors.Is(err, client.ErrConflict) || code(err) != rpc.CodeConflict {
		t.Fatalf("second answer: %v", err)
	}
	_, err = b.ResolveApproval(ctx, api.ResolveApprovalParams{ID: "nope", Decision: api.DecisionDeny})
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	for _, c := range []*client.Client{a, b} {
		e := next(t, c)
		var res api.ApprovalResolved
		if e.Type != api.EventApprovalResolved || e.Decode(&res) != nil || res.Decision != api.DecisionAllowOnce || res.Answer == nil || res.Answer.By == "" {
			t.Fatalf("resolution event %+v", e)
		}
	}
	if list, _ := a.ListApprovals(ctx, api.ListApprovalsParams{Session: "s1"}); len(list) != 0 {
		t.Errorf("still pending: %+v", list)
	}
	if list, _ := a.ListApprovals(ctx, api.ListApprovalsParams{Session: "s1", All: true}); len(list) != 1 || list[0].ResolvedAt == nil {
		t.Errorf("all: %+v", list)
	}
	entries, err := a.SessionAudit(ctx, api.SessionAuditParams{Session: "s1"})
	if err != nil || len(entries) != 2 || entries[0].Decision != "deferred" || entries[0].Hash == "" {
		t.Fatalf("audit %+v %v", entries, err)
	}
	if e, _ := a.SessionAudit(ctx, api.SessionAuditParams{Session: "s1", Limit: 1}); len(e) != 1 || e[0].Seq != entries[1].Seq {
		t.Errorf("audit limit 1: %+v", e)
	}
	if e, _ := a.SessionAudit(ctx, api.SessionAuditParams{Session: "s1", Since: time.Now().Add(time.Hour)}); len(e) != 0 {
		t.Errorf("audit since the future: %+v", e)
	}
	st, _ := a.Status(ctx)
	if st.PendingApprovals != 1 || st.Subscribers != 2 {
		t.Errorf("status %+v", st)
	}
}

func TestSessionAllowances(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	c := dial(t, h)
	ctx := tctx(t)
	for _, a := range []approval.Allowance{
		{ID: "a1", Scope: approval.ScopeSession, Binding: "s1", Pattern: "file:///w/**", Permission: capability.Read, CreatedAt: time.Now()},
		{ID: "a2", Scope: approval.ScopeWorkspace, Binding: "/w", Pattern: "file:///w/x", Permission: capability.Write, CreatedAt: time.Now()},
		{ID: "a3", Scope: approval.ScopeSession, Binding: "s2", Pattern: "file:///w/y", Permission: capability.Read, CreatedAt: time.Now()},
	} {
		if err := r.d.core.Allowances.Add(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.SessionAllowances(ctx, api.SessionAllowancesParams{Session: "s1"})
	if err != nil || len(got) != 1 || got[0].ID != "a1" || got[0].Permission != "read" {
		t.Fatalf("session only: %+v %v", got, err)
	}
	got, _ = c.SessionAllowances(ctx, api.SessionAllowancesParams{Session: "s1", Workspace: "/w"})
	if len(got) != 2 || got[1].Scope != "workspace" {
		t.Errorf("with workspace: %+v", got)
	}
	if _, err := c.SessionAllowances(ctx, api.SessionAllowancesParams{Session: "s1", Workspace: "rel"}); code(err) != rpc.CodeInvalidParams {
		t.Errorf("relative workspace: %v", err)
	}
}

func TestSubscriptions(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	c := dial(t, h)
	ctx := tctx(t)
	all, err := c.Subscribe(ctx, api.AllSessions)
	if err != nil {
		t.Fatal(err)
	}
	pub := func(session string, typ api.EventType) {
		e, _ := api.NewEvent(session, typ, api.TextDelta{Turn: "t", Text: "x"})
		r.d.Publish(e)
	}
	pub("a", api.EventTextDelta)
	pub("", api.EventCapsuleLoaded)
	if e := next(t, c); e.Session != "a" || e.Type != api.EventTextDelta {
		t.Errorf("got %+v", e)
	}
	if e := next(t, c); e.Type != api.EventCapsuleLoaded {
		t.Errorf("got %+v", e)
	}
	if err := c.Unsubscribe(ctx, all); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(ctx, all); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("second unsubscribe: %v", err)
	}
	if _, err := c.Subscribe(ctx, ""); !errors.Is(err, client.ErrInvalidParams) {
		t.Errorf("empty session: %v", err)
	}
	// Another connection cannot unsubscribe ours.
	other := dial(t, h)
	sub, _ := c.Subscribe(ctx, "b")
	if err := other.Unsubscribe(ctx, sub); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("foreign unsubscribe: %v", err)
	}
	pub("b", api.EventTurnComplete)
	if e := next(t, c); e.Type != api.EventTurnComplete || e.Seq != 1 {
		t.Errorf("got %+v", e)
	}
}

// TestEphemeralIdleShutdown: an ephemeral daemon stops after its last
// client left, and not before.
func TestEphemeralIdleShutdown(t *testing.T) {
	h := newHome(t, "[gateway]\nidle_shutdown_secs = 1\n")
	opts := h.options()
	opts.Ephemeral = true
	r := start(t, h, opts)
	c := dial(t, h)
	st, err := c.Status(tctx(t))
	if err != nil || st.Mode != api.ModeEphemeral {
		t.Fatalf("status %+v %v", st, err)
	}
	select {
	case err := <-r.done:
		t.Fatalf("stopped with a client connected: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	left := time.Now()
	c.Close()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatal(err)
		}
		r.done <- nil
		if d := time.Since(left); d < 900*time.Millisecond || d > 5*time.Second {
			t.Errorf("stopped %v after the last client left", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ephemeral daemon did not stop")
	}
	if _, err := os.Stat(h.home.PortFile()); !errors.Is(err, os.ErrNotExist) {
		t.Error("port file left")
	}
}

// TestShutdownClosesClients: shutdown answers the caller, then every
// client sees its connection end.
func TestShutdownClosesClients(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	a, b := dial(t, h), dial(t, h)
	ctx := tctx(t)
	if _, err := b.Subscribe(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{a, b} {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("client not disconnected")
		}
	}
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.done <- nil
	if _, err := a.Status(ctx); !errors.Is(err, client.ErrClosed) {
		t.Errorf("call after shutdown: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	port := freePort(t)
	h := newHome(t, fmt.Sprintf("[gateway]\nmetrics_addr = \"127.0.0.1:%d\"\n", port))
	start(t, h, h.options())
	c := dial(t, h)
	c.Status(tctx(t))
	c.Call(tctx(t), "astrid.bogus", nil, nil)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := readAll(resp)
	for _, want := range []string{"astrid_connections_total 1", `astrid_requests_total{method="astrid.status"} 1`, `astrid_requests_total{method="other"} 1`, "astrid_connections_open 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func freePort(t *testing.T) int {
	ln, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return portOf(ln.Addr().String())
}

func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.Atoi(addr[i+1:])
	return p
}

func TestRotatingLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "logs", "d.log")
	r, err := openRotating(p, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		fmt.Fprintf(r, "%02d %s\n", i, strings.Repeat("x", 40))
	}
	r.Close()
	for _, f := range []string{p, p + ".1", p + ".2"} {
		fi, err := os.Stat(f)
		if err != nil || fi.Size() > 100 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
	if _, err := os.Stat(p + ".3"); err == nil {
		t.Error("kept more than 2 old files")
	}
	if got := readFile(t, p); !strings.HasPrefix(got, "08") {
		t.Errorf("current file starts %q", got)
	}
}
