package tools

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
)

// env is the real wiring: core.Open over a temporary $ASTRID_HOME, a
// workspace in autonomous mode, and a registry whose path filter is the
// workspace's policy.
//
//	dir/user/.astrid     ASTRID_HOME (runtime key, state.db, config.toml)
//	dir/user/proj        the workspace
//	dir/user/proj/secret denied by denied_paths
//	dir/outside          outside the workspace
type env struct {
	t       testing.TB
	dir     string
	user    string
	home    string
	ws      string
	outside string
	core    *core.Core
	reg     *Registry
	sess    security.Session
	asked   []approval.Request
}

type envOpt func(*env, *Options)

// withLimits sets the registry's limits.
func withLimits(l Limits) envOpt { return func(_ *env, o *Options) { o.Limits = l } }

// withFilter wraps the policy path filter.
func withFilter(wrap func(func(string) bool) func(string) bool) envOpt {
	return func(_ *env, o *Options) { o.PathFilter = wrap(o.PathFilter) }
}

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, user: filepath.Join(dir, "user")}
	e.home = filepath.Join(e.user, ".astrid")
	e.ws = filepath.Join(e.user, "proj")
	e.outside = filepath.Join(dir, "outside")
	for _, d := range []string{e.ws, e.outside, filepath.Join(e.ws, "secret")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.writeAbs(filepath.Join(e.home, "config.toml"),
		"[workspace]\nmode = \"autonomous\"\n[security.policy]\ndenied_paths = [\"/etc/**\", \""+e.ws+"/secret/**\"]\n")
	e.writeAbs(filepath.Join(e.ws, "secret", "token.txt"), "SECRET-TOKEN\n")
	vars := map[string]string{"ASTRID_HOME": e.home, "HOME": e.user}
	e.core, err = core.Open(context.Background(), core.Options{
		Home:             home.Dir(e.home),
		Getenv:           func(k string) string { return vars[k] },
		SystemConfigFile: filepath.Join(dir, "no-system-config.toml"),
		Sync:             store.SyncNormal,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.core.Close() })
	prof, err := e.core.Profile(e.ws)
	if err != nil {
		t.Fatal(err)
	}
	rules := prof.Rules
	o := Options{PathFilter: func(p string) bool { return rules.Path(p, false) == nil }}
	for _, f := range opts {
		f(e, &o)
	}
	e.reg = New(o)
	// A human who allows whatever reaches approval (actions outside the
	// workspace); policy still refuses what it refuses.
	e.sess = security.Session{ID: "s1", Principal: "tester", Frontend: "test", Workspace: e.ws, Mode: security.Autonomous,
		Asker: approval.AskerFunc(func(_ context.Context, r approval.Request) (approval.Answer, error) {
			e.asked = append(e.asked, r)
			return approval.Answer{Decision: approval.AllowOnce, By: "tester"}, nil
		})}
	return e
}

// run calls a tool with args (a map or struct marshalled to JSON).
func (e *env) run(name string, args any) Result {
	e.t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.runRaw(name, string(raw))
}

func (e *env) runRaw(name, raw string) Result {
	e.t.Helper()
	res, err := e.reg.Run(context.Background(), e.core.Interceptor, e.sess, name, json.RawMessage(raw))
	if err != nil {
		e.t.Fatalf("%s %s: %v", name, raw, err)
	}
	return res
}

// ok runs a call that must succeed and returns its text.
func (e *env) ok(name string, args any) string {
	e.t.Helper()
	res := e.run(name, args)
	if res.IsError {
		e.t.Fatalf("%s %v: unexpected error result: %s", name, args, res.Text)
	}
	return res.Text
}

// fail runs a call that must fail and returns its text.
func (e *env) fail(name string, args any) string {
	e.t.Helper()
	res := e.run(name, args)
	if !res.IsError {
		e.t.Fatalf("%s %v: want an error result, got: %s", name, args, res.Text)
	}
	return res.Text
}

// write creates a file in the workspace.
func (e *env) write(rel, content string) string {
	e.t.Helper()
	p := filepath.Join(e.ws, rel)
	e.writeAbs(p, content)
	return p
}

func (e *env) writeAbs(p, content string) {
	e.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) read(p string) string {
	e.t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// rel replaces the workspace path in s by "WS" and the temp dir by "DIR",
// for golden comparisons.
func (e *env) rel(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, e.ws, "WS"), e.dir, "DIR")
}

func mustContain(t testing.TB, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q:\n%s", w, got)
		}
	}
}

func mustNotContain(t testing.TB, got string, nots ...string) {
	t.Helper()
	for _, w := range nots {
		if strings.Contains(got, w) {
			t.Errorf("output contains %q:\n%s", w, got)
		}
	}
}
