package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/llm/replay"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
)

// dworld is a real daemon (in this process) with the runtime's backend
// over a scripted model, on a temporary ASTRID_HOME that survives
// restarts.
type dworld struct {
	t    *testing.T
	dir  string
	home string
	ws   string
	vars map[string]string
	stop func() // stops the running daemon; nil when none runs
}

func newDWorld(t *testing.T, userConfig string) *dworld {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := &dworld{t: t, dir: dir, home: filepath.Join(dir, "user", ".astrid"), ws: filepath.Join(dir, "user", "proj")}
	w.vars = map[string]string{"ASTRID_HOME": w.home, "HOME": filepath.Join(dir, "user")}
	for _, d := range []string{w.ws, w.home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(w.home, "config.toml"), []byte(userConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.shutdown)
	return w
}

// start runs a daemon whose model follows script and returns a client
// whose events are collected in the returned log.
func (w *dworld) start(script string) (*client.Client, *eventLog) {
	t := w.t
	t.Helper()
	sc, err := replay.Parse(strings.NewReader(script))
	if err != nil {
		t.Fatal(err)
	}
	prov := replay.New(llm.Config{Model: "claude-sonnet-4-5", Pricing: llm.LookupPricing(nil, "claude-sonnet-4-5", false)}, sc)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- daemon.Serve(ctx, daemon.Options{
			Home: home.Dir(w.home), Getenv: func(k string) string { return w.vars[k] },
			SystemConfigFile: filepath.Join(w.dir, "none.toml"),
			NewBackend: func(_ context.Context, deps daemon.BackendDeps) (daemon.Backend, error) {
				return NewBackendWith(deps, prov)
			},
			Ready: func(*daemon.Daemon) { close(ready) },
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
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	c, err := client.Dial(dctx, home.Dir(w.home), client.DialOptions{Frontend: "test"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ev := newEvents()
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		for e := range c.Events() {
			ev.Publish(e)
		}
	}()
	w.stop = func() {
		c.Close()
		<-pumped
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop")
		}
	}
	if _, err := c.Subscribe(context.Background(), api.AllSessions); err != nil {
		t.Fatal(err)
	}
	return c, ev
}

func (w *dworld) shutdown() {
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
}

// openCore opens the state as the daemon does (no daemon may run).
func (w *dworld) openCore() *core.Core {
	w.t.Helper()
	c, err := core.Open(context.Background(), core.Options{Home: home.Dir(w.home), Getenv: func(k string) string { return w.vars[k] },
		SystemConfigFile: filepath.Join(w.dir, "none.toml"), Sync: store.SyncNormal})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *dworld) read(rel string) string {
	b, _ := os.ReadFile(filepath.Join(w.ws, rel))
	return string(b)
}

// safeTurn creates a safe-mode session in w's workspace and runs a turn
// of text in it; it returns the session's id and the turn's stop reason.
func (w *dworld) safeTurn(c *client.Client, ev *eventLog, text string) (session, stop string) {
	w.t.Helper()
	info, err := c.CreateSession(context.Background(), api.CreateSessionParams{Workspace: w.ws, Mode: "safe"})
	if err != nil {
		w.t.Fatal(err)
	}
	return info.ID, turnVia(w.t, c, ev, info.ID, text)
}

// turn sends input and waits for its turn to complete.
func turnVia(t *testing.T, c *client.Client, ev *eventLog, session, text string) string {
	t.Helper()
	turn, err := c.SendInput(context.Background(), session, text)
	if err != nil {
		t.Fatal(err)
	}
	return ev.waitTurn(t, turn)
}

// pending returns the pending deferred approvals, oldest first.
func pending(t *testing.T, c *client.Client, n int) []api.DeferredApproval {
	t.Helper()
	ds, err := c.ListApprovals(context.Background(), api.ListApprovalsParams{})
	if err != nil || len(ds) != n {
		t.Fatalf("pending approvals: %+v, %v; want %d", ds, err, n)
	}
	return ds
}

func deferredResults(ev *eventLog) map[string]api.DeferredResult {
	out := map[string]api.DeferredResult{}
	for _, e := range ev.of(api.EventDeferredResult) {
		var r api.DeferredResult
		if json.Unmarshal(e.Data, &r) == nil {
			out[r.ID] = r
		}
	}
	return out
}

const deferConfig = "[security]\napproval_timeout_secs = 1\n"

// TestDeferredCallsRunWhenApproved: two bash calls nobody answered are
// deferred; one is approved (twice at once: one answer wins, and the
// command runs exactly once), the other denied (nothing runs). The
// frontends get deferred_result and the next turn's model reads both
// outcomes.
func TestDeferredCallsRunWhenApproved(t *testing.T) {
	script := `{"tool_calls": [` + call("c1", "bash", map[string]any{"command": "echo run >> ran.txt"}) + `, ` +
		call("c2", "bash", map[string]any{"command": "echo no >> denied.txt"}) + `]}` + "\n" +
		`{"expect": {"tool_results": 2}, "text": "Both are pending."}` + "\n" +
		`{"expect": {"user_contains": "and ran; its result"}, "text": "Noted."}` + "\n"
	w := newDWorld(t, deferConfig)
	c, ev := w.start(script)
	ctx := context.Background()
	sid, stop := w.safeTurn(c, ev, "run both")
	if stop != "end_turn" {
		t.Fatalf("stop %q: %v", stop, ev.of(api.EventError))
	}
	ds := pending(t, c, 2)
	run, deny := ds[0], ds[1]
	if !strings.Contains(run.Request.Resource, "ran.txt") {
		run, deny = deny, run
	}
	if w.read("ran.txt") != "" || w.read("denied.txt") != "" {
		t.Fatal("a deferred command ran before it was approved")
	}

	var wg sync.WaitGroup
	results := make([]api.DeferredApproval, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.ResolveApproval(ctx, api.ResolveApprovalParams{ID: run.ID, Decision: "allow_once"})
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			o := results[i].Outcome
			if o == nil || o.Status != api.DeferredRan || o.Tool != "bash" || results[i].Status != string(approval.Done) || results[i].Result != "done" {
				t.Errorf("approval result %+v, outcome %+v", results[i], o)
			}
		case !errors.Is(err, api.ErrConflict):
			t.Errorf("second approval: %v, want a conflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d approvals won", won)
	}
	if got := w.read("ran.txt"); got != "run\n" {
		t.Errorf("ran.txt = %q; the approved command must run exactly once", got)
	}

	res, err := c.ResolveApproval(ctx, api.ResolveApprovalParams{ID: deny.ID, Decision: "deny", Reason: "not now"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome == nil || res.Outcome.Status != api.DeferredDenied || res.Status != string(approval.Denied) {
		t.Errorf("denial: %+v %+v", res, res.Outcome)
	}
	if w.read("denied.txt") != "" {
		t.Error("a denied command ran")
	}
	// The events travel apart from the answers: wait for both.
	var got map[string]api.DeferredResult
	waitFor(t, func() bool { got = deferredResults(ev); return len(got) == 2 })
	if got[run.ID].Status != api.DeferredRan || got[deny.ID].Status != api.DeferredDenied || !strings.Contains(got[deny.ID].Output, "not now") {
		t.Errorf("deferred_result events: %+v", got)
	}

	// The model learns both before its next turn (the script checks it
	// read "and ran"); the denial is there too.
	if stop := turnVia(t, c, ev, sid, "what happened?"); stop != "end_turn" {
		t.Fatalf("next turn: %q: %v", stop, ev.of(api.EventError))
	}
	w.shutdown()
	cs := w.openCore()
	defer cs.Close()
	rec, err := cs.DB.Sessions().LoadSession(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	var prompt string
	for _, m := range rec.Messages {
		for _, p := range m.Parts {
			if m.Role == llm.RoleUser && p.Kind == llm.PartText && strings.Contains(p.Text, "what happened?") {
				for _, q := range m.Parts {
					prompt += q.Text + "\n"
				}
			}
		}
	}
	for _, want := range []string{"The deferred call bash (approval " + run.ID, "and ran; its result:", "The deferred call bash (approval " + deny.ID, "was denied by local:", "<untrusted-data source=\"bash\">", "not now"} {
		if !strings.Contains(prompt, want) {
			t.Errorf("the next turn's user message lacks %q:\n%s", want, prompt)
		}
	}
	if got := w.read("ran.txt"); got != "run\n" {
		t.Errorf("after a restart, ran.txt = %q", got)
	}
}

// TestDeferredCallRefusedWhenPolicyTightened: a path denied after the
// call was deferred is refused when the approval comes, and audited.
func TestDeferredCallRefusedWhenPolicyTightened(t *testing.T) {
	script := `{"tool_calls": [` + call("c1", "write_file", map[string]any{"file_path": "secret/key.txt", "content": "k"}) + `]}` + "\n" +
		`{"expect": {"tool_results": 1}, "text": "Pending."}` + "\n"
	w := newDWorld(t, deferConfig)
	c, ev := w.start(script)
	ctx := context.Background()
	sid, _ := w.safeTurn(c, ev, "write it")
	d := pending(t, c, 1)[0]
	cfg := "[security.policy]\ndenied_paths = [\"" + w.ws + "/secret/**\"]\n"
	if err := os.WriteFile(filepath.Join(w.home, "config.toml"), []byte(deferConfig+cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReloadConfig(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := c.ResolveApproval(ctx, api.ResolveApprovalParams{ID: d.ID, Decision: "allow_once"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome == nil || res.Outcome.Status != api.DeferredRefused || !strings.Contains(res.Outcome.Output, "denied by policy (denied_paths)") {
		t.Fatalf("outcome %+v", res.Outcome)
	}
	if res.Status != string(approval.Done) || !strings.HasPrefix(res.Result, "error: denied by policy") {
		t.Errorf("record %s %q", res.Status, res.Result)
	}
	if _, err := os.Stat(filepath.Join(w.ws, "secret", "key.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the write ran although policy now denies it")
	}
	entries, err := c.SessionAudit(ctx, api.SessionAuditParams{Session: sid})
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, e := range entries {
		if e.Decision == "denied" && e.Rule == "denied_paths" && strings.HasSuffix(e.Resource, "/secret/key.txt") {
			audited = true
		}
	}
	if !audited {
		t.Errorf("the refusal is not audited: %+v", entries)
	}
}

// TestDeferredCallRejudgedByHooks: a PreToolCall hook the user adds
// after three writes were deferred judges them when they are approved: the
// one it blocks is refused (audited as the hook's denial), the one it
// would rewrite is refused too (the human approved other arguments), and
// the one it lets pass runs.
func TestDeferredCallRejudgedByHooks(t *testing.T) {
	script := `{"tool_calls": [` + call("c1", "write_file", map[string]any{"file_path": ".env", "content": "SECRET=1"}) + `, ` +
		call("c2", "write_file", map[string]any{"file_path": "draft.txt", "content": "draft"}) + `, ` +
		call("c3", "write_file", map[string]any{"file_path": "ok.txt", "content": "fine"}) + `]}` + "\n" +
		`{"expect": {"tool_results": 3}, "text": "Pending."}` + "\n"
	w := newDWorld(t, deferConfig)
	c, ev := w.start(script)
	ctx := context.Background()
	sid, _ := w.safeTurn(c, ev, "write them")
	byFile := map[string]api.DeferredApproval{}
	for _, d := range pending(t, c, 3) {
		byFile[filepath.Base(d.Request.Resource)] = d
	}

	// The guard arrives while the calls wait for their answer.
	dir := filepath.Join(w.home, "hooks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	guard := strings.Replace(guardScript, `"$SNEAK"`, `"x"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "guard.sh"), []byte(guard), 0o700); err != nil {
		t.Fatal(err)
	}
	toml := "[[hook]]\nname = \"guard\"\nevent = \"PreToolCall\"\ntools = [\"write_file\"]\ncommand = [\"./guard.sh\"]\ntimeout_secs = 10\n"
	if err := os.WriteFile(filepath.Join(dir, "hooks.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}

	for file, want := range map[string]struct {
		status, output string
	}{
		".env":      {api.DeferredRefused, "blocked by hook guard: no .env files"},
		"draft.txt": {api.DeferredRefused, "blocked by hook guard: it rewrites the approved arguments"},
		"ok.txt":    {api.DeferredRan, ""},
	} {
		d, ok := byFile[file]
		if !ok {
			t.Fatalf("no deferred write of %s: %+v", file, byFile)
		}
		res, err := c.ResolveApproval(ctx, api.ResolveApprovalParams{ID: d.ID, Decision: "allow_once"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome == nil || res.Outcome.Status != want.status || !strings.Contains(res.Outcome.Output, want.output) {
			t.Errorf("%s: outcome %+v, want %s with %q", file, res.Outcome, want.status, want.output)
		}
	}
	for file, want := range map[string]string{".env": "", "draft.txt": "", "final.txt": "", "ok.txt": "fine"} {
		if got := w.read(file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	entries, err := c.SessionAudit(ctx, api.SessionAuditParams{Session: sid})
	if err != nil {
		t.Fatal(err)
	}
	var denied []string
	for _, e := range entries {
		if e.Decision == "denied" {
			denied = append(denied, filepath.Base(e.Resource)+" "+e.Rule)
		}
	}
	slices.Sort(denied)
	if want := []string{".env hook", "draft.txt hook"}; !slices.Equal(denied, want) {
		t.Errorf("audited denials %q, want %q", denied, want)
	}
}

// TestApprovedWhileATurnRuns: an answer that comes while the session's
// turn runs is queued and settled when the turn ends, after the turn's
// last tool result, never between a call and its result.
func TestApprovedWhileATurnRuns(t *testing.T) {
	script := `{"tool_calls": [` + call("c1", "bash", map[string]any{"command": "echo q >> q.txt"}) + `]}` + "\n" +
		`{"expect": {"tool_results": 1}, "text": "Pending."}` + "\n" +
		`{"tool_calls": [` + call("c2", "write_file", map[string]any{"file_path": "w.txt", "content": "w"}) + `]}` + "\n" +
		`{"expect": {"tool_results": 1}, "text": "Also pending."}` + "\n" +
		`{"expect": {"user_contains": "The deferred call bash"}, "text": "Good."}` + "\n"
	w := newDWorld(t, "[security]\napproval_timeout_secs = 3\n")
	c, ev := w.start(script)
	ctx := context.Background()
	sid, _ := w.safeTurn(c, ev, "first")
	first := pending(t, c, 1)[0]
	turn, err := c.SendInput(ctx, sid, "second")
	if err != nil {
		t.Fatal(err)
	}
	// The turn waits for an answer about w.txt: answer the first call now.
	deadline := time.Now().Add(10 * time.Second)
	for len(ev.of(api.EventApprovalNeeded)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second turn never asked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := c.ResolveApproval(ctx, api.ResolveApprovalParams{ID: first.ID, Decision: "allow_once"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome == nil || res.Outcome.Status != api.DeferredQueued || res.Status != string(approval.Approved) {
		t.Fatalf("answer during a turn: %+v %+v", res, res.Outcome)
	}
	if w.read("q.txt") != "" {
		t.Fatal("the approved call ran during the turn")
	}
	if stop := ev.waitTurn(t, turn); stop != "end_turn" {
		t.Fatalf("stop %q", stop)
	}
	if got := w.read("q.txt"); got != "q\n" {
		t.Fatalf("q.txt = %q after the turn", got)
	}
	if r := deferredResults(ev)[first.ID]; r.Status != api.DeferredRan {
		t.Errorf("deferred_result %+v", r)
	}
	if stop := turnVia(t, c, ev, sid, "third"); stop != "end_turn" {
		t.Fatalf("third turn: %q: %v", stop, ev.of(api.EventError))
	}
}

// TestApprovedCallRunsAtStart: the daemon stopped between the answer and
// the run: the next daemon runs it once at start, and the one after that
// does not run it again. A deferred action that is not a tool call (a
// capsule's host call, an old record) is left alone.
func TestApprovedCallRunsAtStart(t *testing.T) {
	script := `{"tool_calls": [` + call("c1", "bash", map[string]any{"command": "echo once >> once.txt"}) + `]}` + "\n" +
		`{"expect": {"tool_results": 1}, "text": "Pending."}` + "\n"
	w := newDWorld(t, deferConfig)
	c, ev := w.start(script)
	ctx := context.Background()
	sid, _ := w.safeTurn(c, ev, "go")
	d := pending(t, c, 1)[0]
	w.shutdown()

	// Answered with no runtime to run it, as by a daemon that then died.
	cs := w.openCore()
	if _, err := cs.Interceptor.Resolve(ctx, d.ID, approval.Answer{Decision: approval.AllowOnce, By: "local:tester"}); err != nil {
		t.Fatal(err)
	}
	// A capsule's host call in the same session, approved too.
	host := security.Action{Kind: security.Capsule, Resource: "capsule://notes/fs.write", Args: []byte(`{}`),
		Session: security.Session{ID: sid, Principal: "local:tester", Workspace: w.ws, Mode: security.Safe}}
	_, err := cs.Interceptor.Intercept(ctx, host)
	var de *security.DeferredError
	if !errors.As(err, &de) {
		t.Fatalf("host call: %v", err)
	}
	if _, err := cs.Interceptor.Resolve(ctx, de.ID, approval.Answer{Decision: approval.AllowOnce, By: "local:tester"}); err != nil {
		t.Fatal(err)
	}
	cs.Close()

	for round := range 2 {
		_, ev = w.start(`{"text": "unused"}`)
		queue := w.openQueue()
		deadline := time.Now().Add(20 * time.Second)
		for {
			x, err := queue.GetDeferred(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if x.Status == approval.Done {
				if x.Result != "done" {
					t.Fatalf("result %q", x.Result)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the approved call did not run at start (%s)", round, x.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := w.read("once.txt"); got != "once\n" {
			t.Fatalf("round %d: once.txt = %q", round, got)
		}
		x, err := queue.GetDeferred(ctx, de.ID)
		if err != nil || x.Status != approval.Approved {
			t.Errorf("round %d: the capsule's host call was touched: %s %v", round, x.Status, err)
		}
		if round == 0 {
			waitFor(t, func() bool { return deferredResults(ev)[d.ID].Status == api.DeferredRan })
		}
		w.shutdown()
	}
	// The note was saved with the session.
	cs = w.openCore()
	defer cs.Close()
	rec, err := cs.DB.Sessions().LoadSession(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	last := rec.Messages[len(rec.Messages)-1]
	if last.Role != llm.RoleUser || !strings.Contains(last.Parts[0].Text, "The deferred call bash (approval "+d.ID) {
		t.Errorf("last message %+v", last)
	}
	var runs int
	for _, e := range auditEntries(t, cs) {
		if e.Decision == audit.Allowed && e.Proof.Approval == "allow_once" && strings.Contains(e.Action.Resource, "once.txt") {
			runs++
		}
	}
	if runs != 1 {
		t.Errorf("%d audited runs, want 1", runs)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openQueue reads the deferred queue next to a running daemon.
func (w *dworld) openQueue() store.Deferred {
	w.t.Helper()
	db, err := store.Open(context.Background(), home.Dir(w.home).StateDB(), store.Options{Sync: store.SyncNormal})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { db.Close() })
	return db.Deferred()
}

func auditEntries(t *testing.T, c *core.Core) []*audit.Entry {
	t.Helper()
	stored, err := c.DB.Audit().List(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*audit.Entry
	for _, s := range stored {
		e, err := audit.Decode(s.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}
