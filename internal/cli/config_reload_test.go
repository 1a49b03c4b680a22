package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/home"
)

// TestConfigReload: `astrid config reload` needs a running daemon, prints
// what changed, and on a bad file exits 1 naming file:line.
func TestConfigReload(t *testing.T) {
	te := newTestEnv(t)
	te.vars[DaemonExeVar] = filepath.Join(te.tmp, "no-astridd")
	if _, stderr, code := te.run(t, "config", "reload"); code != 3 || !strings.Contains(stderr, "astridd is not running") {
		t.Errorf("without a daemon: exit %d, %q", code, stderr)
	}
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
	te.write(t, "home/config.toml", "[budget]\nsession_max_usd = 20\n[logging]\nlevel = \"debug\"\n")
	stdout, stderr, code := te.run(t, "config", "reload")
	if code != 0 || !strings.Contains(stdout, "reloaded: changed budget") || !strings.Contains(stdout, "when the daemon restarts: logging") {
		t.Errorf("reload: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, _, code = te.run(t, "config", "reload", "--format", "json")
	if code != 0 || !strings.Contains(stdout, `"changed": []`) {
		t.Errorf("reload json: exit %d\n%s", code, stdout)
	}
	te.write(t, "home/config.toml", "[budget]\nsession_max_usd = 20\nbogus = 1\n")
	_, stderr, code = te.run(t, "config", "reload")
	if code != 1 || !strings.Contains(stderr, filepath.Join(te.tmp, "home", "config.toml")+":3:") {
		t.Errorf("bad file: exit %d, %q", code, stderr)
	}
}
