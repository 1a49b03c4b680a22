package tools

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// bashEnv is env with the bash tool registered over a real sandbox whose
// helper is this test binary.
func bashEnv(t *testing.T, disableLandlock bool) (*env, *Bash) {
	t.Helper()
	e := newEnv(t)
	sb, err := sandbox.New(sandbox.Options{Protected: []string{e.home}, DisableLandlock: disableLandlock, KillGrace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !disableLandlock && !sb.Available() {
		t.Skipf("Landlock unavailable here: %v", sb.Unavailable())
	}
	b, err := NewBash(BashOptions{Sandbox: sb, TempRoot: filepath.Join(e.dir, "tmp")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Register(b); err != nil {
		t.Fatal(err)
	}
	return e, b
}

func TestBashRunsInTheWorkspaceAndKeepsCwd(t *testing.T) {
	e, b := bashEnv(t, false)
	out := e.ok("bash", map[string]any{"command": "mkdir -p sub && cd sub && echo hi > f.txt && pwd && echo oops >&2; exit 3"})
	for _, want := range []string{"exit code: 3", "stdout:\n" + e.ws + "/sub\n", "stderr:\noops"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(e.ws, "sub", "f.txt")); string(got) != "hi\n" {
		t.Errorf("f.txt = %q", got)
	}
	// The working directory persisted: the next call starts in sub.
	if out := e.ok("bash", map[string]any{"command": "pwd; cat f.txt"}); !strings.Contains(out, e.ws+"/sub\nhi") {
		t.Errorf("cwd not kept:\n%s", out)
	}
	// TMPDIR is private and writable.
	if out := e.ok("bash", map[string]any{"command": "echo x > \"$TMPDIR/t\" && cat \"$TMPDIR/t\" && stat -c %a \"$TMPDIR\""}); !strings.Contains(out, "x\n700") {
		t.Errorf("tmpdir:\n%s", out)
	}
	// A cd out of the workspace is not kept.
	e.ok("bash", map[string]any{"command": "cd /usr"})
	if out := e.ok("bash", map[string]any{"command": "pwd"}); !strings.Contains(out, e.ws+"/sub") {
		t.Errorf("cwd outside the workspace kept:\n%s", out)
	}
	if err := b.Forget(e.sess.ID); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("bash", map[string]any{"command": "pwd"}); !strings.Contains(out, "stdout:\n"+e.ws+"\n") {
		t.Errorf("Forget did not reset cwd:\n%s", out)
	}
}

func TestBashIsConfined(t *testing.T) {
	e, _ := bashEnv(t, false)
	outside := filepath.Join(e.outside, "x.txt")
	key := filepath.Join(e.home, "keys", "runtime.key")
	before, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{
		"echo pwned > " + outside,
		"cat " + key,
		"cp " + key + " ./stolen",
		"echo x >> " + filepath.Join(e.home, "state.db"),
		"ln -s " + e.outside + " link && echo pwned > link/x.txt",
		"cd .. && echo pwned > outside/x.txt",
	} {
		out := e.ok("bash", map[string]any{"command": cmd})
		if strings.Contains(out, "exit code: 0\n") {
			t.Errorf("%q succeeded inside the sandbox:\n%s", cmd, out)
		}
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Error("a file appeared outside the workspace")
	}
	if _, err := os.Stat(filepath.Join(e.ws, "stolen")); err == nil {
		t.Error("the runtime key was copied into the workspace")
	}
	after, _ := os.ReadFile(key)
	if string(before) != string(after) {
		t.Error("runtime key changed")
	}
	// Policy still refuses blocked commands before anything runs.
	if out := e.fail("bash", map[string]any{"command": "echo $(s\"u\"do id)"}); !strings.Contains(out, "blocked_commands") {
		t.Errorf("sudo not refused by policy: %s", out)
	}
}

func TestBashTimeoutAndOutputCap(t *testing.T) {
	e, _ := bashEnv(t, false)
	start := time.Now()
	out := e.ok("bash", map[string]any{"command": "trap '' TERM; sleep 30", "timeout": 1})
	if !strings.Contains(out, "killed after the 1s timeout") || time.Since(start) > 10*time.Second {
		t.Errorf("timeout: %s (%v)", out, time.Since(start))
	}
	out = e.ok("bash", map[string]any{"command": "head -c 100000 /dev/zero | tr '\\0' a"})
	if !strings.Contains(out, "[output cut at 30000 characters]") || len(out) > 31000 {
		t.Errorf("output not capped: %d bytes", len(out))
	}
	for _, bad := range []map[string]any{{"command": ""}, {"command": "ls", "timeout": 601}, {"command": "ls", "cwd": "/"}} {
		if txt := e.fail("bash", bad); !strings.Contains(txt, "bash: ") {
			t.Errorf("%v: %s", bad, txt)
		}
	}
}

func TestBashWithoutLandlockSaysSo(t *testing.T) {
	e, _ := bashEnv(t, true)
	out := e.ok("bash", map[string]any{"command": "echo hi"})
	if !strings.Contains(out, "without the native sandbox") {
		t.Errorf("unsandboxed run not flagged:\n%s", out)
	}
}

func TestBashCancel(t *testing.T) {
	e, _ := bashEnv(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.reg.Run(ctx, e.core.Interceptor, e.sess, "bash", []byte(`{"command":"sleep 30"}`))
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("cancel: %v after %v", err, time.Since(start))
	}
}
