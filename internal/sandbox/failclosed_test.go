//go:build linux

package sandbox_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// TestSymlinkSwapFailsClosed: a rule path checked by Command is swapped
// for a symlink to ASTRID_HOME before the helper opens it (what a
// sandboxed agent could do to a workspace subdirectory between two
// commands). The helper must refuse, and the target must not run.
func TestSymlinkSwapFailsClosed(t *testing.T) {
	requireLandlock(t)
	w := newWorld(t)
	sub := filepath.Join(w.ws, "granted")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	p := w.profile()
	p.ReadOnly = append(p.ReadOnly, sub)
	marker := filepath.Join(w.ws, "target-ran")
	c, err := w.on.Command(t.Context(), p, "/bin/sh", "-c", "touch "+marker+"; cat "+sub+"/keys/runtime.key")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(w.home, sub); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	err = c.Start()
	if !errors.Is(err, sandbox.ErrSetup) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Start = %v; want ErrSetup about a symlink", err)
	}
	if err == nil {
		c.Wait()
	}
	if exists(marker) || strings.Contains(out.String(), w.keySecret) {
		t.Errorf("the target ran: %q", out.String())
	}
}

// TestCommandNotFound: an unknown program is reported by Start.
func TestCommandNotFound(t *testing.T) {
	w := newWorld(t)
	for _, sb := range []*sandbox.Sandbox{w.on, w.off} {
		c, err := sb.Command(t.Context(), w.profile(), "no-such-program-astrid")
		if err != nil {
			t.Fatal(err)
		}
		err = c.Start()
		if !errors.Is(err, sandbox.ErrSetup) || !strings.Contains(err.Error(), "not found") {
			t.Errorf("Start = %v; want ErrSetup, not found", err)
		}
	}
}

// TestHelperRejectsBadInput starts the helper by hand with malformed
// input: it must exit with ExitSetupFailed and run nothing.
func TestHelperRejectsBadInput(t *testing.T) {
	w := newWorld(t)
	marker := filepath.Join(w.ws, "ran")
	good := `{"version":1,"path":"/bin/sh","args":["sh","-c","touch ` + marker + `"],"env":[],"dir":"/","enforce":false,"restrict_network":false,` +
		`"read_only":null,"read_write":null,"protected":null,"connect_tcp":null,"bind_tcp":null,` +
		`"limits":{"cpu_seconds":10,"address_space":1073741824,"file_size":1048576,"open_files":64,"processes":4096}}`
	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		{"no spec", nil, nil},
		{"garbage", nil, []string{sandbox.SpecEnv + "=not json"}},
		{"unknown field", nil, []string{sandbox.SpecEnv + "=" + strings.Replace(good, `"version":1`, `"version":1,"sandbox":false`, 1)}},
		{"trailing data", nil, []string{sandbox.SpecEnv + "=" + good + "{}"}},
		{"wrong version", nil, []string{sandbox.SpecEnv + "=" + strings.Replace(good, `"version":1`, `"version":2`, 1)}},
		{"relative dir", nil, []string{sandbox.SpecEnv + "=" + strings.Replace(good, `"dir":"/"`, `"dir":"tmp"`, 1)}},
		{"missing limit", nil, []string{sandbox.SpecEnv + "=" + strings.Replace(good, `"open_files":64`, `"open_files":0`, 1)}},
		{"oversized", nil, []string{sandbox.SpecEnv + "=" + strings.Repeat(" ", sandbox.MaxSpecSize+1) + good}},
		{"extra argument", []string{"--", "/bin/sh"}, []string{sandbox.SpecEnv + "=" + good}},
		{"ports without network rules", nil, []string{sandbox.SpecEnv + "=" + strings.Replace(good, `"connect_tcp":null`, `"connect_tcp":[80]`, 1)}},
		{"paths without enforcement", nil, []string{sandbox.SpecEnv + "=" + strings.Replace(good, `"read_only":null`, `"read_only":["/usr"]`, 1)}},
	} {
		cmd := exec.Command(mustExe(t), append([]string{sandbox.HelperArg}, tc.args...)...)
		cmd.Env = tc.env
		out, err := cmd.CombinedOutput()
		if exitCode(err) != sandbox.ExitSetupFailed || exists(marker) {
			t.Errorf("%s: exit %d (%v), target ran: %v; output %q", tc.name, exitCode(err), err, exists(marker), out)
		}
	}
	// The control: the good spec does run.
	cmd := exec.Command(mustExe(t), sandbox.HelperArg)
	cmd.Env = []string{sandbox.SpecEnv + "=" + good}
	if out, err := cmd.CombinedOutput(); err != nil || !exists(marker) {
		t.Fatalf("control: the good spec did not run: %v %q", err, out)
	}
}
