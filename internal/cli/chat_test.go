package cli

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/home"
)

// chatBackend is a fake agent runtime: a turn streams a reply; when the
// input asks for it ("approve"), the turn calls a tool that needs approval,
// waits for the answer, and finishes. Everything else is unavailable.
type chatBackend struct {
	daemon.Unavailable
	events daemon.Publisher
	stop   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]api.SessionInfo // guarded by mu
	waiting  map[string]chan string     // guarded by mu; approval request -> answer
	answers  []api.ApprovalResponseParams
	ended    []string // guarded by mu
	turns    int      // guarded by mu
}

func newChatBackend(deps daemon.BackendDeps) *chatBackend {
	return &chatBackend{Unavailable: daemon.Unavailable{Reason: "fake"}, events: deps.Events, stop: make(chan struct{}),
		sessions: map[string]api.SessionInfo{}, waiting: map[string]chan string{}}
}

func (b *chatBackend) publish(session string, t api.EventType, data any) {
	e, err := api.NewEvent(session, t, data)
	if err != nil {
		panic(err)
	}
	b.events.Publish(e)
}

func (b *chatBackend) CreateSession(_ context.Context, _ daemon.Caller, p api.CreateSessionParams) (api.SessionInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := api.SessionInfo{ID: fmt.Sprintf("s%d", len(b.sessions)+1), Workspace: p.Workspace, Mode: "guided", Model: "fake-model", Active: true}
	if p.Mode != "" {
		s.Mode = p.Mode
	}
	b.sessions[s.ID] = s
	return s, nil
}

func (b *chatBackend) ResumeSession(_ context.Context, _ daemon.Caller, p api.ResumeSessionParams) (api.SessionInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[p.Session]
	if !ok {
		return s, fmt.Errorf("%w: session %q", api.ErrNotFound, p.Session)
	}
	return s, nil
}

func (b *chatBackend) EndSession(_ context.Context, _ daemon.Caller, p api.EndSessionParams) (api.Empty, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = append(b.ended, p.Session)
	return api.Empty{}, nil
}

func (b *chatBackend) SessionBudget(_ context.Context, _ daemon.Caller, p api.SessionBudgetParams) (api.Budget, error) {
	return api.Budget{Session: p.Session, SpentUSD: 0.02, SessionLimitUSD: 1}, nil
}

func (b *chatBackend) CancelTurn(context.Context, daemon.Caller, api.CancelTurnParams) (api.CancelTurnResult, error) {
	return api.CancelTurnResult{}, nil
}

func (b *chatBackend) SendInput(_ context.Context, _ daemon.Caller, p api.SendInputParams) (api.SendInputResult, error) {
	b.mu.Lock()
	b.turns++
	turn := fmt.Sprintf("t%d", b.turns)
	req := "r" + turn
	var answer chan string
	if strings.Contains(p.Text, "approve") {
		answer = make(chan string, 1)
		b.waiting[req] = answer
	}
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		s := p.Session
		b.publish(s, api.EventTextDelta, api.TextDelta{Turn: turn, Text: "Hello from "})
		b.publish(s, api.EventTextDelta, api.TextDelta{Turn: turn, Text: "the fake model."})
		if answer != nil {
			b.publish(s, api.EventToolCallStart, api.ToolCallStart{Turn: turn, Call: "c1", Tool: "bash", Resource: "exec://make test",
				Arguments: []byte(`{"command":"make test"}`)})
			b.publish(s, api.EventApprovalNeeded, api.ApprovalNeeded{Request: api.ApprovalRequest{ID: req, Session: s, Kind: "exec",
				Resource: "exec://make test", Risk: "medium", Reason: "runs a command", Pattern: "exec://make *", Summary: "run make test"}})
			var d string
			select {
			case d = <-answer:
			case <-b.stop:
				return
			case <-time.After(time.Minute):
				d = "deferred"
			}
			b.publish(s, api.EventApprovalResolved, api.ApprovalResolved{Request: req, Decision: d})
			status := "ok"
			if d != api.DecisionAllowOnce && d != api.DecisionAllowSession && d != api.DecisionAllowWorkspace && d != api.DecisionAllowAlways {
				status = "denied"
			}
			b.publish(s, api.EventToolCallResult, api.ToolCallResult{Turn: turn, Call: "c1", Tool: "bash", Status: status, Output: "ok\n"})
			b.publish(s, api.EventTextDelta, api.TextDelta{Turn: turn, Text: " Done: " + d + "."})
		}
		b.publish(s, api.EventUsage, api.Usage{Turn: turn, InputTokens: 100, OutputTokens: 20, CostUSD: 0.001, ContextTokens: 1200, ContextWindow: 100000})
		b.publish(s, api.EventTurnComplete, api.TurnComplete{Turn: turn, StopReason: "end_turn"})
	}()
	return api.SendInputResult{Turn: turn}, nil
}

func (b *chatBackend) ApprovalResponse(_ context.Context, _ daemon.Caller, p api.ApprovalResponseParams) (api.Empty, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.waiting[p.Request]
	if !ok {
		return api.Empty{}, fmt.Errorf("%w: approval %q", api.ErrNotFound, p.Request)
	}
	delete(b.waiting, p.Request)
	b.answers = append(b.answers, p)
	ch <- p.Decision
	return api.Empty{}, nil
}

func (b *chatBackend) Answers() []api.ApprovalResponseParams {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.ApprovalResponseParams(nil), b.answers...)
}

func (b *chatBackend) Ended() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.ended...)
}

func (b *chatBackend) Stats() daemon.BackendStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return daemon.BackendStats{Runtime: true, Sessions: len(b.sessions)}
}

func (b *chatBackend) Shutdown(context.Context) error {
	close(b.stop)
	b.wg.Wait()
	return nil
}

// startChatDaemon runs a daemon with the fake backend in this process, on
// te's ASTRID_HOME, until the test ends.
func startChatDaemon(t *testing.T, te *testEnv) *chatBackend {
	t.Helper()
	backend := make(chan *chatBackend, 1)
	serveTestDaemon(t, te, func(_ context.Context, deps daemon.BackendDeps) (daemon.Backend, error) {
		b := newChatBackend(deps)
		backend <- b
		return b, nil
	})
	return <-backend
}

// serveTestDaemon runs a daemon in this process on te's home until the
// test ends; newBackend nil means no agent runtime (the state methods
// only). The CLI never auto-starts a real one.
func serveTestDaemon(t *testing.T, te *testEnv, newBackend daemon.NewBackendFunc) {
	t.Helper()
	te.vars[DaemonExeVar] = filepath.Join(te.tmp, "no-astridd") // never auto-start a real one
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- daemon.Serve(ctx, daemon.Options{
			Home:             home.Dir(te.vars["ASTRID_HOME"]),
			Getenv:           func(k string) string { return te.vars[k] },
			SystemConfigFile: filepath.Join(te.tmp, "etc", "config.toml"),
			NewBackend:       newBackend,
			Ready:            func(*daemon.Daemon) { close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("daemon not ready after 20 s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
	})
}

// runChatLines runs `astrid chat args...` with stdin, which is not a
// terminal, so in line mode.
func runChatLines(t *testing.T, te *testEnv, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &Env{
		Stdin:            strings.NewReader(stdin),
		Stdout:           &stdout,
		Stderr:           &stderr,
		Getenv:           func(k string) string { return te.vars[k] },
		Dir:              filepath.Join(te.tmp, "repo"),
		systemConfigFile: filepath.Join(te.tmp, "etc", "config.toml"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, env, append([]string{"chat"}, args...))
	return stdout.String(), stderr.String(), err
}

func TestChatLineMode(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	te := newChatEnv(t)
	b := startChatDaemon(t, te)
	out, stderr, err := runChatLines(t, te, "hello\nplease approve this\nw\n/budget\n", "--mode", "safe")
	if err != nil {
		t.Fatalf("chat: %v\nstderr: %s", err, stderr)
	}
	ws := filepath.Join(te.tmp, "repo")
	for _, want := range []string{
		"astrid: session s1 (workspace " + ws + ", mode safe)\n",
		"Hello from the fake model.\n",
		`[tool] bash exec://make test command="make test"`,
		"[approval] run make test",
		"  resource        exec://make test",
		"  risk            medium",
		"  an allow covers exec://make *",
		"[approval] run make test: allowed for the workspace",
		"[tool] bash: ✓ ok",
		" Done: allow_workspace.\n",
		"session spent     $0.0200",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	want := []api.ApprovalResponseParams{{Session: "s1", Request: "rt2", Decision: api.DecisionAllowWorkspace}}
	if got := b.Answers(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("approval answers = %+v, want %+v", got, want)
	}
	if got := b.Ended(); len(got) != 1 || got[0] != "s1" {
		t.Errorf("sessions ended = %q, want [s1] (saved on exit)", got)
	}
	if !strings.Contains(stderr, "session s1 saved; resume it with: astrid chat --session s1") {
		t.Errorf("stderr: %q", stderr)
	}
}

// A piped chat whose input ends before the approval is answered denies it.
func TestChatLineModeEOFDenies(t *testing.T) {
	te := newChatEnv(t)
	b := startChatDaemon(t, te)
	out, stderr, err := runChatLines(t, te, "approve it\n")
	if err != nil {
		t.Fatalf("chat: %v\nstderr: %s", err, stderr)
	}
	if got := b.Answers(); len(got) != 1 || got[0].Decision != api.DecisionDeny {
		t.Fatalf("approval answers = %+v, want one deny", got)
	}
	if !strings.Contains(out, "Done: deny.") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestChatResume(t *testing.T) {
	te := newChatEnv(t)
	startChatDaemon(t, te)
	if _, stderr, err := runChatLines(t, te, ""); err != nil {
		t.Fatalf("first chat: %v %s", err, stderr)
	}
	out, stderr, err := runChatLines(t, te, "hello\n", "--session", "s1")
	if err != nil || !strings.Contains(out, "session s1") || !strings.Contains(out, "Hello from the fake model.") {
		t.Fatalf("resume: %v\n%s\n%s", err, out, stderr)
	}
	if _, _, err := runChatLines(t, te, "", "--session", "s9"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown session: %v", err)
	}
	if _, _, err := runChatLines(t, te, "", "--session", "s1", "--mode", "safe"); err == nil {
		t.Fatal("--mode with --session was accepted")
	}
}

func TestChatFlags(t *testing.T) {
	te := newChatEnv(t)
	if _, _, err := runChatLines(t, te, "", "--mode", "yolo"); err == nil || !strings.Contains(err.Error(), "--mode") {
		t.Fatalf("--mode yolo: %v", err)
	}
	startChatDaemon(t, te)
	if _, _, err := runChatLines(t, te, "", "--workspace", "missing"); err == nil || !strings.Contains(err.Error(), "workspace") {
		t.Fatalf("missing workspace: %v", err)
	}
}

// Without a runtime the daemon cannot hold sessions: chat says so.
func TestChatWithoutRuntime(t *testing.T) {
	te := newChatEnv(t)
	te.vars[DaemonExeVar] = filepath.Join(te.tmp, "no-astridd")
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- daemon.Serve(ctx, daemon.Options{Home: home.Dir(te.vars["ASTRID_HOME"]), Getenv: func(k string) string { return te.vars[k] },
			SystemConfigFile: filepath.Join(te.tmp, "etc", "config.toml"), Ready: func(*daemon.Daemon) { close(ready) }})
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	_, _, err := runChatLines(t, te, "hello\n")
	if err == nil || !strings.Contains(err.Error(), "this daemon cannot hold chat sessions") {
		t.Fatalf("err = %v", err)
	}
}

// newChatEnv is a test env with a model provider configured, so that chat
// goes straight to the session instead of the first-run choices.
func newChatEnv(t *testing.T) *testEnv {
	te := newTestEnv(t)
	te.vars["ANTHROPIC_API_KEY"] = "test-key-not-used"
	return te
}
