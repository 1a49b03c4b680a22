package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/rpc"
)

// The end-to-end tests build the real binaries once per test binary, on
// first use, into a temporary directory that TestMain removes.
var bins struct {
	once    sync.Once
	dir     string
	astridd string
	astrid  string
	err     error
}

func binaries(t testing.TB) (astridd, astrid string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds binaries")
	}
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "astrid-e2e-")
		if bins.err != nil {
			return
		}
		bins.astridd = filepath.Join(bins.dir, "astridd")
		bins.astrid = filepath.Join(bins.dir, "astrid")
		out, err := exec.Command("go", "build", "-o", bins.dir+"/", "github.com/astrid-runtime/astrid/cmd/astridd", "github.com/astrid-runtime/astrid/cmd/astrid").CombinedOutput()
		if err != nil {
			bins.err = &buildError{out: string(out), err: err}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.astridd, bins.astrid
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

func cleanupBinaries() {
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
}

// proc is a started binary.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
}

func (h *testHome) environ() []string {
	return []string{"ASTRID_HOME=" + h.home.Path(), "HOME=" + h.tmp, "PATH=" + os.Getenv("PATH")}
}

// startProc starts a binary in h's environment and kills it at the end of
// the test if it still runs.
func startProc(t testing.TB, h *testHome, exe string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(exe, args...), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = append(h.environ(), "ASTRID_DAEMON_EXE="+filepath.Join(filepath.Dir(exe), "astridd"))
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("%s still running after %v; output:\n%s", p.cmd.Path, d, p.stderr)
	}
	return -1
}

// waitReady waits until a client can call status.
func waitReady(t testing.TB, h *testHome) api.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := client.Dial(ctx, h.home, client.DialOptions{})
		if err == nil {
			st, err := c.Status(ctx)
			c.Close()
			cancel()
			if err == nil {
				return st
			}
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cli runs the astrid binary and returns its output and exit code.
func cli(t testing.TB, h *testHome, astrid string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(astrid, args...)
	cmd.Env = append(h.environ(), "ASTRID_DAEMON_EXE="+filepath.Join(filepath.Dir(astrid), "astridd"))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

func noStateFiles(t testing.TB, h *testHome) {
	t.Helper()
	for _, f := range []string{h.home.PortFile(), h.home.PIDFile(), h.home.TokenFile()} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
}

func TestE2EStartStatusStop(t *testing.T) {
	astridd, astrid := binaries(t)
	h := newHome(t, "")
	if out, code := cli(t, h, astrid, "daemon", "status"); code != 3 || !strings.Contains(out, "not running") {
		t.Fatalf("status before start: %d %q", code, out)
	}
	p := startProc(t, h, astridd)
	st := waitReady(t, h)
	if st.PID != p.cmd.Process.Pid || st.Mode != api.ModePersistent {
		t.Errorf("status %+v", st)
	}
	out, code := cli(t, h, astrid, "daemon", "status")
	if code != 0 || !strings.Contains(out, "running") || !strings.Contains(out, "persistent") || !strings.Contains(out, strconv.Itoa(st.PID)) {
		t.Fatalf("status: %d %q", code, out)
	}
	out, code = cli(t, h, astrid, "--format", "json", "daemon", "status")
	var js api.Status
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || js.PID != st.PID {
		t.Fatalf("json status: %d %q", code, out)
	}
	if out, code := cli(t, h, astrid, "daemon", "stop"); code != 0 || !strings.Contains(out, "astridd stopped") {
		t.Fatalf("stop: %d %q", code, out)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("astridd exited %d: %s", code, p.stderr)
	}
	noStateFiles(t, h)
	if out, code := cli(t, h, astrid, "daemon", "stop"); code != 0 || !strings.Contains(out, "not running") {
		t.Errorf("stop when stopped: %d %q", code, out)
	}
	log, _ := os.ReadFile(filepath.Join(h.home.LogsDir(), "daemon.log"))
	if !bytes.Contains(log, []byte(`"msg":"daemon stopped"`)) {
		t.Errorf("daemon.log:\n%s", log)
	}
}

// TestE2EDaemonRunForeground: `astrid daemon run` runs astridd in the
// foreground and a SIGTERM to astrid stops it gracefully.
func TestE2EDaemonRunForeground(t *testing.T) {
	_, astrid := binaries(t)
	h := newHome(t, "")
	p := startProc(t, h, astrid, "daemon", "run", "--ephemeral")
	st := waitReady(t, h)
	if st.Mode != api.ModeEphemeral || st.PID == p.cmd.Process.Pid {
		t.Errorf("status %+v (astrid pid %d)", st, p.cmd.Process.Pid)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("astrid daemon run exited %d: %s", code, p.stderr)
	}
	noStateFiles(t, h)
}

func TestE2EAutoStartAndEphemeralIdle(t *testing.T) {
	astridd, _ := binaries(t)
	h := newHome(t, "[gateway]\nidle_shutdown_secs = 1\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, h.home, client.ConnectOptions{AutoStart: true, Exe: astridd, Env: h.environ()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Mode != api.ModeEphemeral || st.PID == os.Getpid() {
		t.Fatalf("status %+v %v", st, err)
	}
	// A second client finds the running daemon instead of starting one.
	c2, err := client.Connect(ctx, h.home, client.ConnectOptions{AutoStart: true, Exe: "/nonexistent", Env: h.environ()})
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(st.PID, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("ephemeral daemon still running 10 s after its last client left")
		}
		time.Sleep(20 * time.Millisecond)
	}
	noStateFiles(t, h)
}

func TestE2EAutoStartFailure(t *testing.T) {
	astridd, _ := binaries(t)
	h := newHome(t, "[gateway]\nlisten_addr = \"[::1]:0\"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := client.Connect(ctx, h.home, client.ConnectOptions{AutoStart: true, Exe: astridd, Env: h.environ(), StartTimeout: 2 * time.Second})
	if !errors.Is(err, client.ErrStartFailed) || !strings.Contains(err.Error(), "127.0.0.1 only") || !strings.Contains(err.Error(), "daemon.log") {
		t.Fatalf("got %v", err)
	}
}

func TestE2EAuthAndOriginRefused(t *testing.T) {
	astridd, _ := binaries(t)
	h := newHome(t, "")
	startProc(t, h, astridd)
	waitReady(t, h)
	port, tok := readFile(t, h.home.PortFile()), readFile(t, h.home.TokenFile())
	for _, tt := range []struct {
		auth, origin string
		status       int
	}{
		{"", "", http.StatusUnauthorized},
		{"Bearer nope", "", http.StatusUnauthorized},
		{"Bearer " + tok, "https://example.com", http.StatusForbidden},
		{"Bearer " + tok, "", http.StatusSwitchingProtocols},
	} {
		hdr := http.Header{}
		if tt.auth != "" {
			hdr.Set("Authorization", tt.auth)
		}
		if tt.origin != "" {
			hdr.Set("Origin", tt.origin)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, resp, err := websocket.Dial(ctx, "ws://127.0.0.1:"+port+RPCPath, &websocket.DialOptions{HTTPHeader: hdr})
		cancel()
		if resp == nil || resp.StatusCode != tt.status {
			t.Errorf("auth %q origin %q: %v %v", tt.auth, tt.origin, resp, err)
		}
		if ws != nil {
			ws.CloseNow()
		}
	}
}

func TestE2ESecondDaemonRefused(t *testing.T) {
	astridd, _ := binaries(t)
	h := newHome(t, "")
	startProc(t, h, astridd)
	st := waitReady(t, h)
	second := startProc(t, h, astridd)
	if code := second.wait(t, 10*time.Second); code != 1 || !strings.Contains(second.stderr.String(), "already running") || !strings.Contains(second.stderr.String(), strconv.Itoa(st.PID)) {
		t.Errorf("second daemon: exit %d: %s", code, second.stderr)
	}
	if st2 := waitReady(t, h); st2.PID != st.PID {
		t.Errorf("the first daemon was replaced: %d", st2.PID)
	}
}

// TestE2EKilledDaemonReplaced: after SIGKILL the files are stale; clients
// see "not running", and the next daemon replaces them.
func TestE2EKilledDaemonReplaced(t *testing.T) {
	astridd, astrid := binaries(t)
	h := newHome(t, "")
	p := startProc(t, h, astridd)
	st := waitReady(t, h)
	tok := readFile(t, h.home.TokenFile())
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t, 10*time.Second)
	if readFile(t, h.home.PIDFile()) != strconv.Itoa(st.PID) {
		t.Fatal("a killed daemon's pid file should still be there")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Dial(ctx, h.home, client.DialOptions{}); !errors.Is(err, client.ErrNotRunning) {
		t.Fatalf("dial a dead daemon: %v", err)
	}
	if out, code := cli(t, h, astrid, "daemon", "status"); code != 3 {
		t.Errorf("status of a dead daemon: %d %q", code, out)
	}
	p2 := startProc(t, h, astridd)
	st2 := waitReady(t, h)
	if st2.PID != p2.cmd.Process.Pid || readFile(t, h.home.PIDFile()) != strconv.Itoa(st2.PID) || readFile(t, h.home.TokenFile()) == tok {
		t.Errorf("files not replaced: %+v", st2)
	}
	// SIGTERM is a graceful stop.
	p2.cmd.Process.Signal(syscall.SIGTERM)
	if code := p2.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM: %s", code, p2.stderr)
	}
	noStateFiles(t, h)
}

func TestE2EBadInput(t *testing.T) {
	astridd, _ := binaries(t)
	h := newHome(t, "")
	startProc(t, h, astridd)
	waitReady(t, h)
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+readFile(t, h.home.TokenFile()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://127.0.0.1:"+readFile(t, h.home.PortFile())+RPCPath, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for _, tt := range []struct {
		frame string
		code  int
	}{
		{`not json at all`, rpc.CodeParseError},
		{strings.Repeat(" ", 5<<20), rpc.CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"astrid.launchMissiles"}`, rpc.CodeMethodNotFound},
		{`{"jsonrpc":"2.0","id":2,"method":"astrid.listApprovals","params":{"session":"s","al":true}}`, rpc.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":3,"method":"astrid.createSession","params":{"workspace":"/w"}}`, rpc.CodeUnavailable},
	} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(tt.frame)); err != nil {
			t.Fatal(err)
		}
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"code":`+strconv.Itoa(tt.code)) {
			t.Errorf("%.60q: %s", tt.frame, b)
		}
	}
	ws.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":9,"method":"astrid.status"}`))
	if _, b, err := ws.Read(ctx); err != nil || !strings.Contains(string(b), `"pid"`) {
		t.Errorf("connection did not survive: %s %v", b, err)
	}
}
