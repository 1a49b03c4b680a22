package core

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
)

type env struct {
	dir, home, ws string
	vars          map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, home: filepath.Join(dir, "user", ".astrid"), ws: filepath.Join(dir, "user", "proj")}
	e.vars = map[string]string{"ASTRID_HOME": e.home, "HOME": filepath.Join(dir, "user")}
	if err := os.MkdirAll(filepath.Join(e.ws, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *env) open(t *testing.T) *Core {
	t.Helper()
	c, err := Open(context.Background(), Options{
		Home:             home.Dir(e.home),
		Getenv:           func(k string) string { return e.vars[k] },
		SystemConfigFile: filepath.Join(e.dir, "no-system-config.toml"),
		Sync:             store.SyncNormal,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCoreEnforcesTheMergedConfiguration(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.write(t, filepath.Join(e.home, "config.toml"), "[workspace]\nmode = \"autonomous\"\n[security.policy]\ndenied_paths = [\"~/.ssh/**\"]\n")
	c := e.open(t)
	ask := approval.AskerFunc(func(context.Context, approval.Request) (approval.Answer, error) {
		return approval.Answer{Decision: approval.Deny}, nil
	})
	s := security.Session{ID: "s1", Principal: "me", Workspace: e.ws, Mode: security.Autonomous, Asker: ask}
	run := func(kind security.Kind, p string) error {
		a, err := security.NewFileAction(kind, s, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Interceptor.Run(ctx, a, security.ExecutorFunc(func(context.Context, security.Action) ([]byte, error) { return nil, nil }))
		return err
	}
	// Autonomous from the user layer: writes inside run.
	if err := run(security.FileWrite, "src/a.go"); err != nil {
		t.Fatalf("autonomous write: %v", err)
	}
	// "~/" expands to $HOME; $ASTRID_HOME is protected; .astrid is read-only.
	var de *security.DeniedError
	for p, rule := range map[string]string{
		filepath.Join(e.vars["HOME"], ".ssh", "id_ed25519"): "denied_paths",
		filepath.Join(e.home, "keys", "runtime.key"):        "astrid_home",
		filepath.Join(e.ws, ".astrid", "config.toml"):       "workspace_config",
	} {
		if err := run(security.FileWrite, p); !errors.As(err, &de) || de.Rule != rule {
			t.Errorf("write %s: %v, want rule %s", p, err, rule)
		}
	}
	// The workspace tightens its own mode to safe: the same write now asks
	// (and the asker denies).
	e.write(t, filepath.Join(e.ws, ".astrid", "config.toml"), "[workspace]\nmode = \"safe\"\n")
	c.ForgetProfiles()
	if err := run(security.FileWrite, "src/a.go"); !errors.As(err, &de) || de.Step != security.StepApproval {
		t.Fatalf("write under a safe workspace: %v", err)
	}
	// A workspace that tries to loosen is invalid: every action is denied.
	e.write(t, filepath.Join(e.ws, ".astrid", "config.toml"), "[budget]\nsession_max_usd = 1e6\n")
	c.ForgetProfiles()
	if err := run(security.FileRead, "src/a.go"); !errors.As(err, &de) || de.Rule != "configuration" {
		t.Fatalf("action under a loosening workspace config: %v", err)
	}
}

func TestOpenRefusesBrokenUserConfig(t *testing.T) {
	e := newEnv(t)
	e.write(t, filepath.Join(e.home, "config.toml"), "[budget]\nsession_max_usd = \"lots\"\n")
	_, err := Open(context.Background(), Options{Home: home.Dir(e.home), Getenv: func(k string) string { return e.vars[k] }, SystemConfigFile: filepath.Join(e.dir, "none")})
	if err == nil {
		t.Fatal("opened with a broken configuration")
	}
	if _, serr := os.Stat(filepath.Join(e.home, "state.db")); !os.IsNotExist(serr) {
		t.Error("a failed Open created the store")
	}
}
