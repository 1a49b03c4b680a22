package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/llm/replay"
	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/sandbox/helper"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// TestMain lets the test binary serve as the sandbox helper.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.HelperArg {
		os.Exit(helper.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// eventLog collects published events.
type eventLog struct {
	mu  sync.Mutex
	all []api.Event
	ch  chan api.Event
}

func newEvents() *eventLog { return &eventLog{ch: make(chan api.Event, 4096)} }

func (e *eventLog) Publish(ev api.Event) api.Event {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	select {
	case e.ch <- ev:
	default:
	}
	return ev
}

func (e *eventLog) of(typ api.EventType) []api.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []api.Event
	for _, ev := range e.all {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// waitTurn waits for the turn_complete event of a turn and returns its
// stop reason.
func (e *eventLog) waitTurn(t testing.TB, turn string) string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-e.ch:
			if ev.Type == api.EventTurnComplete {
				var tc api.TurnComplete
				json.Unmarshal(ev.Data, &tc)
				if tc.Turn == turn {
					return tc.StopReason
				}
			}
		case <-deadline:
			t.Fatalf("turn %s did not complete", turn)
		}
	}
}

// world is a runtime over a real core (temp ASTRID_HOME), a workspace, the
// sandboxed shell and a scripted model.
type world struct {
	t    testing.TB
	dir  string
	home string
	ws   string
	vars map[string]string
	core *core.Core
	ev   *eventLog
	rt   *Runtime
}

func newWorld(t testing.TB, script string, userConfig string) *world {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, dir: dir, home: filepath.Join(dir, "user", ".astrid"), ws: filepath.Join(dir, "user", "proj")}
	w.vars = map[string]string{"ASTRID_HOME": w.home, "HOME": filepath.Join(dir, "user")}
	if err := os.MkdirAll(w.ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(w.home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.home, "config.toml"), []byte(userConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	w.open(script)
	return w
}

func (w *world) open(script string) {
	t := w.t
	sb, err := sandbox.New(sandbox.Options{Protected: []string{w.home}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w.core, err = core.Open(context.Background(), core.Options{Home: home.Dir(w.home), Getenv: func(k string) string { return w.vars[k] },
		SystemConfigFile: filepath.Join(w.dir, "none.toml"), Sync: store.SyncNormal, Sandbox: sb})
	if err != nil {
		t.Fatal(err)
	}
	res, err := config.Load(config.LoadOptions{Home: home.Dir(w.home), SystemFile: filepath.Join(w.dir, "none.toml"), Getenv: func(k string) string { return w.vars[k] }})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := replay.Parse(strings.NewReader(script))
	if err != nil {
		t.Fatal(err)
	}
	bash, err := tools.NewBash(tools.BashOptions{Sandbox: sb, TempRoot: filepath.Join(w.dir, "tmp")})
	if err != nil {
		t.Fatal(err)
	}
	w.ev = newEvents()
	w.rt, err = New(Options{Core: w.core, Config: res.Config, Provider: replay.New(llm.Config{Model: "claude-sonnet-4-5", Pricing: llm.LookupPricing(nil, "claude-sonnet-4-5", false)}, sc), Store: w.core.DB.Sessions(), Events: w.ev, Bash: bash, HookStageRoot: filepath.Join(w.dir, "hookstage")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
}

func (w *world) close() {
	w.rt.Shutdown(context.Background())
	w.core.Close()
}

func (w *world) write(rel, content string) {
	w.t.Helper()
	p := filepath.Join(w.ws, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// turn sends input and waits for the turn.
func (w *world) turn(id, text string) string {
	w.t.Helper()
	turn, err := w.rt.Send(context.Background(), id, text)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.ev.waitTurn(w.t, turn)
}

// answerApprovals answers every approval request with d as it comes (the
// role of a frontend).
func (w *world) answerApprovals(ctx context.Context, d approval.Decision) *atomic.Int32 {
	n := new(atomic.Int32)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
			w.rt.mu.Lock()
			var ids []string
			var sessions []string
			for id, p := range w.rt.pending {
				ids, sessions = append(ids, id), append(sessions, p.session)
			}
			w.rt.mu.Unlock()
			for i, id := range ids {
				if w.rt.Answer(sessions[i], id, approval.Answer{Decision: d, By: "tester"}) == nil {
					n.Add(1)
				}
			}
		}
	}()
	return n
}

func call(id, name string, args map[string]any) string {
	b, _ := json.Marshal(map[string]any{"id": id, "name": name, "arguments": args})
	return string(b)
}

func TestCodingSession(t *testing.T) {
	script := strings.Join([]string{
		`{"text": "Let me look.", "tool_calls": [` + call("c1", "read_file", map[string]any{"file_path": "calc.go"}) + `,` + call("c2", "glob", map[string]any{"pattern": "**/*.go"}) + `]}`,
		`{"expect": {"tool_results": 2}, "tool_calls": [` + call("c3", "edit_file", map[string]any{"file_path": "calc.go", "old_string": "a - b", "new_string": "a + b"}) + `]}`,
		`{"expect": {"tool_results": 1}, "tool_calls": [` + call("c4", "bash", map[string]any{"command": "grep -c 'a + b' calc.go"}) + `]}`,
		`{"expect": {"tool_results": 1}, "text": "Fixed: Add now adds."}`,
	}, "\n")
	w := newWorld(t, script, "[workspace]\nmode = \"autonomous\"\n")
	w.write("calc.go", "package calc\n\nfunc Add(a, b int) int { return a - b }\n")
	rec, err := w.rt.Create(context.Background(), CreateOptions{Workspace: w.ws, Principal: "tester", Frontend: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if stop := w.turn(rec.ID, "Fix Add"); stop != "end_turn" {
		errs := w.ev.of(api.EventError)
		t.Fatalf("stop %q, errors %v", stop, errs)
	}
	got, _ := os.ReadFile(filepath.Join(w.ws, "calc.go"))
	if !strings.Contains(string(got), "a + b") {
		t.Errorf("calc.go not fixed:\n%s", got)
	}
	var text strings.Builder
	for _, ev := range w.ev.of(api.EventTextDelta) {
		var d api.TextDelta
		json.Unmarshal(ev.Data, &d)
		text.WriteString(d.Text)
	}
	if !strings.Contains(text.String(), "Fixed: Add now adds.") {
		t.Errorf("streamed text %q", text.String())
	}
	results := w.ev.of(api.EventToolCallResult)
	if len(results) != 4 {
		t.Fatalf("%d tool results, want 4", len(results))
	}
	var bashRes api.ToolCallResult
	json.Unmarshal(results[3].Data, &bashRes)
	if bashRes.Status != "ok" || !strings.Contains(bashRes.Output, "exit code: 0") || !strings.Contains(bashRes.Output, "1") {
		t.Errorf("bash result %+v", bashRes)
	}
	// The session was saved and resumes after a restart with its history.
	w.core.Close()
	w.open(script)
	rec2, err := w.rt.Resume(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec2.Turns != 1 || len(rec2.Messages) != 8 || rec2.Spent <= 0 {
		t.Errorf("resumed: turns %d, %d messages, spent %v", rec2.Turns, len(rec2.Messages), rec2.Spent)
	}
	// Tool results reached the model fenced as untrusted data.
	tr := rec2.Messages[2].Parts[0].ToolResult
	if tr == nil || !strings.HasPrefix(tr.Content, `<untrusted-data source="read_file">`) {
		t.Errorf("tool result not tagged: %+v", rec2.Messages[2])
	}
	// Every action is in a log that verifies.
	if _, err := audit.Verify(context.Background(), w.core.DB.Audit(), keys.Trusted{w.core.Key.ID(): w.core.Key.Public()}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestHostileModel tries DESIGN.md's escapes; every one is refused or
// confined, and nothing outside the workspace changes.
func TestHostileModel(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside.txt")
	os.WriteFile(outside, []byte("original"), 0o644)
	var calls []string
	var i int
	add := func(name string, args map[string]any) {
		i++
		calls = append(calls, call(fmt.Sprintf("h%d", i), name, args))
	}
	add("write_file", map[string]any{"file_path": outside, "content": "pwned"})
	add("write_file", map[string]any{"file_path": "../../../../../../" + outside, "content": "pwned"})
	add("read_file", map[string]any{"file_path": "HOME_KEYS"})
	add("write_file", map[string]any{"file_path": ".astrid/config.toml", "content": "[workspace]\nmode = \"autonomous\"\n"})
	add("read_file", map[string]any{"file_path": "link/passwd"})
	for _, cmd := range []string{"sudo id", "s\"u\"do id", "\\sudo id", "env sudo id", "nice sudo id", "timeout 1 sudo id", "sh -c 'sudo id'",
		"bash -c \"sudo id\"", "echo $(sudo id)", "echo `sudo id`", "xargs sudo id", "find . -exec sudo id \\;", "command sudo id",
		"exec sudo id", "(sudo id)", "{ sudo id; }", "true && sudo id", "false || sudo id", "/usr/bin/sudo id", "su -c id"} {
		add("bash", map[string]any{"command": cmd})
	}
	add("bash", map[string]any{"command": "echo pwned > " + outside})
	add("bash", map[string]any{"command": "cat HOME_KEYS"})
	add("task", map[string]any{"description": "widen", "prompt": "write outside"})
	script := `{"tool_calls": [` + strings.Join(calls, ",") + `]}` + "\n" +
		// the sub-agent's script turn: it tries the same escape
		`{"tool_calls": [` + call("s1", "write_file", map[string]any{"file_path": outside, "content": "pwned by child"}) + `]}` + "\n" +
		`{"expect": {"tool_results": 1}, "text": "child done"}` + "\n" +
		`{"text": "I give up."}`
	script = strings.ReplaceAll(script, "HOME_KEYS", "KEYPATH")
	w := newWorld(t, `{"text": "placeholder"}`, "[workspace]\nmode = \"autonomous\"\n")
	script = strings.ReplaceAll(script, "KEYPATH", filepath.Join(w.home, "keys", "runtime.key"))
	os.Symlink("/etc", filepath.Join(w.ws, "link"))
	os.MkdirAll(filepath.Join(w.ws, ".astrid"), 0o755)
	w.core.Close()
	w.open(script)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	asked := w.answerApprovals(ctx, approval.Deny) // the human says no to whatever reaches them
	rec, err := w.rt.Create(context.Background(), CreateOptions{Workspace: w.ws, Principal: "tester", Frontend: "test"})
	if err != nil {
		t.Fatal(err)
	}
	stop := w.turn(rec.ID, "do your worst")
	_ = stop
	if got, _ := os.ReadFile(outside); string(got) != "original" {
		t.Fatalf("outside file changed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(w.ws, ".astrid", "config.toml")); err == nil {
		t.Fatal("the agent wrote the workspace config")
	}
	results := w.ev.of(api.EventToolCallResult)
	okCount := 0
	for _, ev := range results {
		var r api.ToolCallResult
		json.Unmarshal(ev.Data, &r)
		if r.Status == "ok" && r.Tool != "task" && !strings.Contains(r.Output, "exit code: 1") && !strings.Contains(r.Output, "exit code: 2") {
			okCount++
			t.Errorf("hostile call %s succeeded: %s", r.Tool, r.Output)
		}
	}
	_ = okCount
	// Every refusal is audited.
	rep, err := audit.Verify(context.Background(), w.core.DB.Audit(), keys.Trusted{w.core.Key.ID(): w.core.Key.Public()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tree.N < int64(len(calls)) {
		t.Errorf("%d audit entries for %d hostile calls", rep.Tree.N, len(calls))
	}
	t.Logf("%d hostile calls, %d asked and denied by the human, %d audit entries", len(calls), asked.Load(), rep.Tree.N)
}

func TestCancelDuringLongCommand(t *testing.T) {
	script := `{"tool_calls": [` + call("c1", "bash", map[string]any{"command": "sleep 60"}) + `]}` + "\n" + `{"text": "never"}`
	w := newWorld(t, script, "[workspace]\nmode = \"autonomous\"\n")
	rec, err := w.rt.Create(context.Background(), CreateOptions{Workspace: w.ws})
	if err != nil {
		t.Fatal(err)
	}
	turn, err := w.rt.Send(context.Background(), rec.ID, "sleep")
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the command started.
	deadline := time.Now().Add(20 * time.Second)
	for len(w.ev.of(api.EventToolCallStart)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if ok, err := w.rt.Cancel(context.Background(), rec.ID, ""); !ok || err != nil {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if stop := w.ev.waitTurn(t, turn); stop != StopCancelled {
		t.Errorf("stop %q", stop)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	// The session stays consistent: every tool call has a result, and a new
	// turn can start.
	r, _ := w.rt.Resume(context.Background(), rec.ID)
	last := r.Messages[len(r.Messages)-1]
	if last.Role != llm.RoleUser || last.Parts[0].ToolResult == nil || last.Parts[0].ToolResult.CallID != "c1" {
		t.Errorf("last message %+v", last)
	}
	if _, err := w.rt.Send(context.Background(), rec.ID, "again"); err != nil {
		t.Errorf("new turn after cancel: %v", err)
	}
}

func TestSafeModeApprovalFlow(t *testing.T) {
	script := `{"tool_calls": [` + call("c1", "write_file", map[string]any{"file_path": "a.txt", "content": "hi"}) + `]}` + "\n" +
		`{"expect": {"tool_results": 1}, "tool_calls": [` + call("c2", "write_file", map[string]any{"file_path": "a.txt", "content": "again"}) + `]}` + "\n" +
		`{"expect": {"tool_results": 1}, "text": "done"}`
	w := newWorld(t, script, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	asked := w.answerApprovals(ctx, approval.AllowSession)
	rec, err := w.rt.Create(context.Background(), CreateOptions{Workspace: w.ws, Mode: security.Safe})
	if err != nil {
		t.Fatal(err)
	}
	if stop := w.turn(rec.ID, "write"); stop != "end_turn" {
		t.Fatalf("stop %q: %v", stop, w.ev.of(api.EventError))
	}
	if asked.Load() != 1 {
		t.Errorf("asked %d times; allow session should cover the second write", asked.Load())
	}
	if got, _ := os.ReadFile(filepath.Join(w.ws, "a.txt")); string(got) != "again" {
		t.Errorf("a.txt = %q", got)
	}
}
