//go:build linux

package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/sandbox/helper"
)

// probeArg makes the test binary act as a small probe program inside the
// sandbox (it is exec'd as the target), for what a shell cannot do.
const probeArg = "__probe"

// TestMain lets this test binary play the two roles astridd plays in
// production: the helper (sandbox.HelperArg) and, for the tests, a probe
// target.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case sandbox.HelperArg:
			os.Exit(helper.Main(os.Args[2:]))
		case probeArg:
			os.Exit(probe(os.Args[2:]))
		}
	}
	goleak.VerifyTestMain(m)
}

// probe runs one network operation with raw syscalls and exits 0 if it
// succeeded.
func probe(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "probe: want OP ADDR")
		return 2
	}
	op, addr := args[0], args[1]
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	port, _ := strconv.Atoi(portStr)
	sa := &unix.SockaddrInet4{Port: port}
	copy(sa.Addr[:], net.ParseIP(host).To4())
	proto := 0
	if strings.HasPrefix(op, "mptcp-") {
		proto = unix.IPPROTO_MPTCP
		op = strings.TrimPrefix(op, "mptcp-")
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, proto)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socket:", err)
		return 1
	}
	defer unix.Close(fd)
	switch op {
	case "connect":
		err = unix.Connect(fd, sa)
	case "bind":
		err = unix.Bind(fd, sa)
	default:
		err = errors.New("unknown op " + op)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, op+":", err)
		return 1
	}
	fmt.Println(op, "ok")
	return 0
}

// requireLandlock skips, saying why, when the kernel cannot enforce the
// sandbox: the only reason a sandbox test may skip.
func requireLandlock(t testing.TB) int {
	t.Helper()
	abi, err := sandbox.ABI()
	if err != nil {
		t.Skipf("SKIP: Landlock is not available on this kernel: %v", err)
	}
	if abi < sandbox.MinABI {
		t.Skipf("SKIP: Landlock ABI %d is below the minimum %d", abi, sandbox.MinABI)
	}
	return abi
}

// world is a fake installation: an $ASTRID_HOME with a key and an audit
// database, a workspace, a file outside everything, and two sandboxes over
// it, one enforcing and one forced off (the control: every attack must
// succeed there, or the test proves nothing).
type world struct {
	root      string
	home      string // protected
	key       string // home/keys/runtime.key
	db        string // home/state.db
	ws        string // workspace
	tmp       string // session temp dir (created by Command)
	outside   string // a file outside every rule
	probeDir  string // where the test binary lives (granted read-only)
	on, off   *sandbox.Sandbox
	keySecret string
}

const outsideContent = "original content\n"

func newWorld(t testing.TB) *world {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{
		root:      root,
		home:      filepath.Join(root, "astrid-home"),
		ws:        filepath.Join(root, "ws"),
		tmp:       filepath.Join(root, "session-tmp"),
		outside:   filepath.Join(root, "outside", "file"),
		keySecret: "PRIVATE-KEY-" + strconv.Itoa(os.Getpid()),
	}
	w.key = filepath.Join(w.home, "keys", "runtime.key")
	w.db = filepath.Join(w.home, "state.db")
	for _, d := range []string{filepath.Join(w.home, "keys"), w.ws, filepath.Dir(w.outside)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, w.key, w.keySecret+"\n")
	writeFile(t, w.db, "SQLite format 3\x00 audit log\n")
	writeFile(t, w.outside, outsideContent)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		t.Fatal(err)
	}
	w.probeDir = filepath.Dir(exe)
	opts := sandbox.Options{Helper: exe, Protected: []string{w.home}, KillGrace: 300 * time.Millisecond}
	if w.on, err = sandbox.New(opts); err != nil {
		t.Fatal(err)
	}
	opts.DisableLandlock = true
	opts.Logger = discardLogger()
	if w.off, err = sandbox.New(opts); err != nil {
		t.Fatal(err)
	}
	return w
}

// profile is the default shell profile, plus the directory of the test
// binary so that it can run as a probe.
func (w *world) profile() sandbox.Profile {
	return sandbox.DefaultShellProfile(w.ws, w.tmp, []string{w.probeDir})
}

// result is what one command did.
type result struct {
	out  string // stdout and stderr
	err  error
	took time.Duration
	cmd  *sandbox.Cmd
}

func (r result) String() string { return fmt.Sprintf("err=%v out=%q", r.err, r.out) }

// run runs argv under p and returns its combined output and error.
func run(t testing.TB, sb *sandbox.Sandbox, p sandbox.Profile, timeout time.Duration, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := sb.Command(ctx, p, argv[0], argv[1:]...)
	if err != nil {
		t.Fatalf("Command(%q): %v", argv, err)
	}
	var buf bytes.Buffer
	c.Stdout, c.Stderr = &buf, &buf
	start := time.Now()
	err = c.Run()
	return result{out: buf.String(), err: err, took: time.Since(start), cmd: c}
}

// sh runs a shell script under p with a 20 s timeout.
func sh(t testing.TB, sb *sandbox.Sandbox, p sandbox.Profile, script string) result {
	t.Helper()
	return run(t, sb, p, 20*time.Second, "/bin/sh", "-c", script)
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func isRoot() bool { return os.Geteuid() == 0 }

// exitCode returns the exit status in err, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
