package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/security"
)

// reloadBackend records the configurations it is given.
type reloadBackend struct {
	Unavailable
	got chan *config.Config
}

func (b *reloadBackend) ReloadConfig(_ context.Context, cfg *config.Config) (map[string]string, error) {
	b.got <- cfg
	out := map[string]string{}
	for name := range cfg.Servers {
		out[name] = "added"
	}
	return out, errors.New("server x failed to start")
}

// TestReloadConfig: astrid.reloadConfig validates the files, then applies
// policy, mode and budget through new profiles, hands the configuration to
// the backend, audits and publishes the reload; a bad file changes
// nothing, and says where it is wrong; a workspace layer still only
// tightens.
func TestReloadConfig(t *testing.T) {
	h := newHome(t, "[budget]\nsession_max_usd = 20\n")
	ws := filepath.Join(h.tmp, "ws")
	if err := os.MkdirAll(filepath.Join(ws, ".astrid"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ws, "notes.txt"), "hello")
	writeFile(t, config.WorkspaceFile(ws), "[budget]\nsession_max_usd = 15\n")
	be := &reloadBackend{Unavailable: Unavailable{Reason: "test"}, got: make(chan *config.Config, 4)}
	opts := h.options()
	opts.NewBackend = func(context.Context, BackendDeps) (Backend, error) { return be, nil }
	r := start(t, h, opts)
	c := dial(t, h)
	ctx := tctx(t)
	sub := r.d.Bus().Subscribe(1000, func(e events.Event) bool {
		return e.Kind == events.ConfigReloaded || e.Kind == events.Error || e.Kind == events.AuditEntryCreated && e.Session == "daemon"
	})
	defer sub.Close()
	limit := func(ws string) (budget.Micros, error) {
		p, err := r.d.core.Profile(ws)
		if err != nil {
			return 0, err
		}
		return p.Limits.SessionMax, nil
	}
	read := func() error {
		s := security.Session{ID: "s1", Principal: "tester", Frontend: "test", Workspace: ws, Mode: security.Autonomous,
			Asker: approval.AskerFunc(func(context.Context, approval.Request) (approval.Answer, error) {
				return approval.Answer{Decision: approval.AllowOnce, By: "tester"}, nil
			})}
		a, err := security.NewFileAction(security.FileRead, s, "notes.txt", []byte(`{"file_path":"notes.txt"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.d.core.Interceptor.Intercept(ctx, a)
		return err
	}
	if err := read(); err != nil {
		t.Fatalf("before the reload: %v", err)
	}
	if l, err := limit(ws); err != nil || l != budget.FromUSD(15) {
		t.Fatalf("workspace limit %v %v", l, err)
	}

	// Nothing changed.
	res, err := c.ReloadConfig(ctx)
	if err != nil || len(res.Changed) != 0 || len(res.Restart) != 0 {
		t.Fatalf("unchanged reload: %+v %v", res, err)
	}
	<-be.got
	if d := waitEvent(t, sub, events.ConfigReloaded).Data.(events.Config); len(d.Changed) != 0 {
		t.Errorf("config.reloaded %+v", d)
	}

	// A tighter policy and budget, a new server, a logging change.
	writeFile(t, h.home.ConfigFile(), "[budget]\nsession_max_usd = 18\n[security.policy]\ndenied_paths = [\""+ws+"/notes.txt\"]\n"+
		"[logging]\nlevel = \"debug\"\n[servers.web]\ntransport = \"streamable-http\"\nurl = \"http://127.0.0.1:1/mcp\"\n")
	res, err = c.ReloadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Changed, []string{"budget", "security", "servers"}) || !slices.Equal(res.Restart, []string{"logging"}) ||
		res.Servers["web"] != "added" || len(res.Warnings) != 1 || res.Warnings[0] != "server x failed to start" {
		t.Errorf("reload result %+v", res)
	}
	if cfg := <-be.got; cfg.Servers["web"].URL != "http://127.0.0.1:1/mcp" || cfg.Budget.SessionMaxUSD != 18 {
		t.Errorf("the backend got %+v", cfg)
	}
	if err := read(); err == nil || !strings.Contains(err.Error(), "denied_paths") {
		t.Errorf("after the reload the read is %v, want denied by denied_paths", err)
	}
	if l, _ := limit(""); l != budget.FromUSD(18) {
		t.Errorf("user limit %v after reload", l)
	}
	if l, _ := limit(ws); l != budget.FromUSD(15) {
		t.Errorf("the workspace's tighter limit is %v after reload", l)
	}
	e := waitEvent(t, sub, events.ConfigReloaded)
	if d := e.Data.(events.Config); !slices.Equal(d.Changed, res.Changed) || d.Servers["web"] != "added" || !slices.Equal(d.Restart, []string{"logging"}) {
		t.Errorf("config.reloaded %+v", d)
	}

	// A user limit below the workspace's: the workspace layer would now
	// loosen it, so that workspace is refused until it is fixed.
	writeFile(t, h.home.ConfigFile(), "[budget]\nsession_max_usd = 12\n")
	res, err = c.ReloadConfig(ctx)
	<-be.got
	if err != nil || len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0], "workspace "+ws) || !strings.Contains(res.Warnings[0], "can only lower it") {
		t.Errorf("reload with a workspace now invalid: %+v %v", res, err)
	}
	if _, err := limit(ws); err == nil {
		t.Error("a workspace layer loosened the user's limit")
	}
	if err := read(); err == nil || !strings.Contains(err.Error(), "configuration") {
		t.Errorf("an action in the invalid workspace: %v", err)
	}

	// A bad file: an error naming file:line, the old configuration stays,
	// the failure is audited and published.
	writeFile(t, h.home.ConfigFile(), "[budget]\nsession_max_usd = 11\nsesion_max_usd = 3\n")
	_, err = c.ReloadConfig(ctx)
	if !errors.Is(err, client.ErrInvalidParams) || !strings.Contains(err.Error(), h.home.ConfigFile()+":3:") || !strings.Contains(err.Error(), "previous one stays in force") {
		t.Errorf("bad file: %v", err)
	}
	if l, _ := limit(""); l != budget.FromUSD(12) {
		t.Errorf("limit %v after a failed reload, want the previous 2", l)
	}
	if e := waitEvent(t, sub, events.AuditEntryCreated); e.Data.(events.Audit).Seq == 0 {
		t.Errorf("audit event %+v", e)
	}
	if e := waitEvent(t, sub, events.Error); !strings.Contains(e.Data.(events.ErrorData).Message, ":3:") || e.Data.(events.ErrorData).Source != "config.reload" {
		t.Errorf("error event %+v", e)
	}
	entries, err := c.SessionAudit(ctx, api.SessionAuditParams{Session: "daemon"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range entries {
		if en.Kind == "config_reload" {
			got = append(got, en.Decision+" "+strings.SplitN(en.Text, "\n", 2)[0])
		}
	}
	want := []string{
		"allowed changed: ",
		"allowed changed: budget, security, servers; after a restart: logging",
		"allowed changed: budget, security, servers; after a restart: logging", // logging back to its default
		"denied configuration not reloaded; the previous one stays in force:",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit:\n%q\nwant\n%q", got, want)
	}
}

// TestReloadOnSIGHUP: the real astridd reloads on SIGHUP, and a bad file
// does not stop it.
func TestReloadOnSIGHUP(t *testing.T) {
	astridd, _ := binaries(t)
	h := newHome(t, "")
	p := startProc(t, h, astridd)
	waitReady(t, h)
	c := dial(t, h)
	audited := func(decision string) bool {
		entries, err := c.SessionAudit(context.Background(), api.SessionAuditParams{Session: "daemon"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Kind == "config_reload" && e.Decision == decision {
				return true
			}
		}
		return false
	}
	writeFile(t, h.home.ConfigFile(), "[budget]\nsession_max_usd = 30\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(func() bool { return audited("allowed") }) {
		t.Fatal("no reload audited after SIGHUP")
	}
	writeFile(t, h.home.ConfigFile(), "[budget\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(func() bool { return audited("denied") }) {
		t.Fatal("no failed reload audited")
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("the daemon is gone after a bad reload: %v", err)
	}
	select {
	case <-p.done:
		t.Fatal("astridd exited")
	case <-time.After(100 * time.Millisecond):
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitEvent returns the next event of kind on sub.
func waitEvent(t *testing.T, sub *events.Subscription, kind events.Kind) events.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-sub.C:
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}
