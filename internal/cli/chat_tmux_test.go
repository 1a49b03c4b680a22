package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
)

// tmuxPane is a detached tmux session on a private server socket.
type tmuxPane struct {
	t    *testing.T
	sock string
	env  []string
}

func (p *tmuxPane) tmux(args ...string) string {
	p.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", p.sock, "-f", "/dev/null"}, args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (p *tmuxPane) screen() string { return p.tmux("capture-pane", "-p", "-t", "chat") }

// waitFor polls the screen until it shows every string.
func (p *tmuxPane) waitFor(what ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := p.screen()
		missing := ""
		for _, w := range what {
			if !strings.Contains(s, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the screen never showed %q:\n%s", missing, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChatTmux drives the real astrid binary in a terminal (tmux) against a
// daemon whose backend streams a reply and asks one approval, answered with
// a key in the dialog.
func TestChatTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the astrid binary; skipped with -short")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("SKIP: tmux is not installed (apt-get install -y tmux); the terminal UI test did not run")
	}
	te := newChatEnv(t)
	b := startChatDaemon(t, te)

	// astrid execs the astrid-tui next to it.
	bin := filepath.Join(te.tmp, "astrid")
	if out, err := exec.Command("go", "build", "-o", te.tmp+"/", "github.com/astrid-runtime/astrid/cmd/astrid", "github.com/astrid-runtime/astrid/cmd/astrid-tui").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ws := filepath.Join(te.tmp, "repo")
	p := &tmuxPane{t: t, sock: filepath.Join(te.tmp, "tmux.sock"),
		env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + te.tmp, "TERM=xterm-256color", "LANG=C.UTF-8"}}
	script := "ANTHROPIC_API_KEY=test-key-not-used ASTRID_HOME=" + te.vars["ASTRID_HOME"] + " " + DaemonExeVar + "=" + te.vars[DaemonExeVar] +
		" " + bin + " chat --workspace " + ws + "; echo chat exited $?; sleep 60"
	p.tmux("new-session", "-d", "-s", "chat", "-x", "100", "-y", "30", "sh", "-c", script)
	t.Cleanup(func() {
		cmd := exec.Command("tmux", "-S", p.sock, "kill-server")
		cmd.Env = p.env
		_ = cmd.Run()
	})

	p.waitFor("Ask anything", "session s1", "fake-model")
	p.tmux("send-keys", "-t", "chat", "-l", "please approve")
	p.tmux("send-keys", "-t", "chat", "Enter")
	p.waitFor("› please approve", "Hello from the fake model.", "Approval needed: run make test",
		"exec://make test", "medium", "exec://make *", "[o] allow once", "[d] deny")

	time.Sleep(600 * time.Millisecond) // past the dialog's guard against typing
	p.tmux("send-keys", "-t", "chat", "o")
	s := p.waitFor("Done: allow_once.", "run make test: allowed once", "✓ ok", "context 1.2k/100k")
	if strings.Contains(s, "Approval needed") {
		t.Fatalf("the dialog stayed open:\n%s", s)
	}
	if got := b.Answers(); len(got) != 1 || got[0] != (api.ApprovalResponseParams{Session: "s1", Request: "rt1", Decision: api.DecisionAllowOnce}) {
		t.Fatalf("approval answers = %+v", got)
	}

	p.tmux("send-keys", "-t", "chat", "C-c")
	p.waitFor("press Ctrl+C again to quit")
	p.tmux("send-keys", "-t", "chat", "C-c")
	p.waitFor("chat exited 0")
	if got := b.Ended(); len(got) != 1 || got[0] != "s1" {
		t.Errorf("sessions ended = %q, want [s1]", got)
	}
}
