//go:build linux

package daemon_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// TestSandboxHelperDispatch builds the real astridd and uses it as the
// sandbox helper: `astridd __sandbox-exec` must reach the helper before
// anything else, enforce the profile and fail closed on bad input.
func TestSandboxHelperDispatch(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: -short: builds astridd")
	}
	dir := t.TempDir()
	astridd := filepath.Join(dir, "astridd")
	if out, err := exec.Command("go", "build", "-o", astridd, "github.com/astrid-runtime/astrid/cmd/astridd").CombinedOutput(); err != nil {
		t.Fatalf("build astridd: %v\n%s", err, out)
	}

	// Bad input: exit 125, target not run.
	cmd := exec.Command(astridd, sandbox.HelperArg)
	cmd.Env = []string{sandbox.SpecEnv + "={}"}
	if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != sandbox.ExitSetupFailed {
		t.Errorf("astridd %s with a bad spec: %v; want exit %d", sandbox.HelperArg, err, sandbox.ExitSetupFailed)
	}

	home := filepath.Join(dir, "home")
	ws := filepath.Join(dir, "ws")
	os.MkdirAll(home, 0o700)
	os.MkdirAll(ws, 0o700)
	sb, err := sandbox.New(sandbox.Options{Helper: astridd, Protected: []string{home}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sb.Command(ctx, sandbox.DefaultShellProfile(ws, filepath.Join(dir, "tmp"), nil),
		"/bin/sh", "-c", "echo inside > inside.txt; echo escaped > "+filepath.Join(home, "x")+"; cat inside.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err = c.Run()
	if !bytes.Contains(out.Bytes(), []byte("inside")) {
		t.Errorf("command through astridd did not run: %v %s", err, out.String())
	}
	_, statErr := os.Stat(filepath.Join(home, "x"))
	if sb.Available() && statErr == nil {
		t.Errorf("wrote into the protected home through astridd's helper: %s", out.String())
	}
	if !sb.Available() && c.Sandboxed() {
		t.Error("Sandboxed() without Landlock")
	}
}
