//go:build linux

package sandbox_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// TestWorkspaceAndTempWork: the ordinary work of a shell succeeds inside
// the sandbox: writing, moving and deleting in the workspace and TMPDIR,
// reading system directories, /dev/null.
func TestWorkspaceAndTempWork(t *testing.T) {
	requireLandlock(t)
	w := newWorld(t)
	r := sh(t, w.on, w.profile(), `set -e
		echo hello > a.txt
		mkdir -p sub/dir && mv a.txt sub/dir/ && cat sub/dir/a.txt
		echo tmp > "$TMPDIR/t" && mv "$TMPDIR/t" moved-from-tmp && cat moved-from-tmp
		ln -s sub/dir/a.txt link && cat link
		ln sub/dir/a.txt hard && cat hard
		rm -r sub hard link
		ls /usr/bin >/dev/null && head -c 4 /usr/bin/env | od -c | head -1
		cat /etc/hostname >/dev/null 2>&1 || true
		echo "tmpdir=$TMPDIR home=$HOME pwd=$(pwd)"
		grep -c processor /proc/cpuinfo >/dev/null
	`)
	if r.err != nil {
		t.Fatalf("ordinary work failed in the sandbox: %v", r)
	}
	for _, want := range []string{"hello", "tmp", "E   L   F", "tmpdir=" + w.tmp, "home=" + w.tmp, "pwd=" + w.ws} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q: %v", want, r)
		}
	}
	if !r.cmd.Sandboxed() || !r.cmd.NetworkRestricted() {
		t.Errorf("Sandboxed()=%v NetworkRestricted()=%v; want true, true", r.cmd.Sandboxed(), r.cmd.NetworkRestricted())
	}
	fi, err := os.Stat(w.tmp)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("session temp dir: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}
}

// TestBuildInWorkspace compiles and runs a C program inside the sandbox.
func TestBuildInWorkspace(t *testing.T) {
	requireLandlock(t)
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("SKIP: no C compiler on this machine; the build test needs one")
	}
	w := newWorld(t)
	writeFile(t, filepath.Join(w.ws, "main.c"), "#include <stdio.h>\nint main(void){puts(\"built ok\");return 0;}\n")
	r := sh(t, w.on, w.profile(), cc+" -o prog main.c && ./prog")
	if r.err != nil || !strings.Contains(r.out, "built ok") {
		t.Fatalf("build in the sandbox: %v", r)
	}
}

// TestEnvironmentIsOnlyTheProfiles: the daemon's environment (API keys)
// and the spec variable never reach the target.
func TestEnvironmentIsOnlyTheProfiles(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "sk-should-not-leak")
	w := newWorld(t)
	for _, sb := range []*sandbox.Sandbox{w.on, w.off} {
		p := w.profile()
		p.Env = append(p.Env, "EXTRA=1", "EXTRA=2")
		r := sh(t, sb, p, "env")
		if r.err != nil {
			t.Fatal(r)
		}
		if strings.Contains(r.out, "sk-should-not-leak") || strings.Contains(r.out, sandbox.SpecEnv) {
			t.Errorf("environment leaked into the target: %s", r.out)
		}
		if !strings.Contains(r.out, "EXTRA=2") || strings.Contains(r.out, "EXTRA=1") {
			t.Errorf("duplicate keys: want the last value only: %s", r.out)
		}
	}
}

// TestApprovedEscapes: an approved escape extends the rules for exactly
// that process: an extra read-only directory and a TCP port.
func TestApprovedEscapes(t *testing.T) {
	abi := requireLandlock(t)
	w := newWorld(t)
	shared := filepath.Join(w.root, "shared")
	os.Mkdir(shared, 0o755)
	writeFile(t, filepath.Join(shared, "data"), "shared data\n")

	p := w.profile()
	p.ReadOnly = append(p.ReadOnly, shared)
	r := sh(t, w.on, p, "cat "+shared+"/data; echo x > "+shared+"/data")
	if !strings.Contains(r.out, "shared data") {
		t.Errorf("granted read-only dir not readable: %v", r)
	}
	if readFile(t, filepath.Join(shared, "data")) != "shared data\n" {
		t.Error("read-only grant was writable")
	}
	if r := sh(t, w.on, w.profile(), "cat "+shared+"/data"); r.err == nil {
		t.Errorf("the escape leaked into the next command: %v", r)
	}

	if abi < 4 {
		t.Skipf("SKIP: TCP rules need Landlock ABI 4, the kernel has %d", abi)
	}
	addr := listen(t)
	_, portStr, _ := strings.Cut(addr, ":")
	port, _ := strconv.Atoi(portStr)
	p = w.profile()
	p.Network.ConnectTCP = []uint16{uint16(port)}
	probe := filepath.Join(w.probeDir, filepath.Base(mustExe(t)))
	if r := run(t, w.on, p, 10*time.Second, probe, probeArg, "connect", addr); r.err != nil {
		t.Errorf("granted port %d not reachable: %v", port, r)
	}
	other := listen(t)
	if r := run(t, w.on, p, 10*time.Second, probe, probeArg, "connect", other); r.err == nil {
		t.Errorf("a port that was not granted was reachable: %v", r)
	}
	p.Network = sandbox.Network{Unrestricted: true}
	r = run(t, w.on, p, 10*time.Second, probe, probeArg, "connect", other)
	if r.err != nil || r.cmd.NetworkRestricted() {
		t.Errorf("unrestricted network: %v, NetworkRestricted()=%v", r, r.cmd.NetworkRestricted())
	}
}

// TestLimitsApplied reads the limits from inside the sandbox.
func TestLimitsApplied(t *testing.T) {
	requireLandlock(t)
	w := newWorld(t)
	p := w.profile()
	p.ReadOnly = append(p.ReadOnly, "/proc")
	p.Limits = sandbox.Limits{CPUSeconds: 7, AddressSpace: 3 << 30, FileSize: 1 << 20, OpenFiles: 99, Processes: 1234}
	r := sh(t, w.on, p, "cat /proc/self/limits")
	if r.err != nil {
		t.Fatal(r)
	}
	for _, want := range [][]string{
		{"Max cpu time", "7", "7"},
		{"Max address space", strconv.Itoa(3 << 30), strconv.Itoa(3 << 30)},
		{"Max file size", strconv.Itoa(1 << 20), strconv.Itoa(1 << 20)},
		{"Max open files", "99", "99"},
		{"Max processes", "1234", "1234"},
		{"Max core file size", "0", "0"},
	} {
		if !regexpFields(r.out, want[0], want[1:]...) {
			t.Errorf("limit %q not %v:\n%s", want[0], want[1:], r.out)
		}
	}
	// The file size limit bites.
	r = sh(t, w.on, p, "head -c 2000000 /dev/zero > big")
	if r.err == nil {
		t.Errorf("wrote 2 MB past a 1 MiB RLIMIT_FSIZE: %v", r)
	}
	// Defaults fill zero fields.
	p.Limits = sandbox.Limits{OpenFiles: 55}
	r = sh(t, w.on, p, "cat /proc/self/limits")
	d := sandbox.DefaultLimits()
	if !regexpFields(r.out, "Max open files", "55", "55") || !regexpFields(r.out, "Max cpu time", strconv.FormatUint(d.CPUSeconds, 10)) {
		t.Errorf("defaults not applied:\n%s", r.out)
	}
}

// TestTimeoutKillsGroupIgnoringSIGTERM: a script that ignores SIGTERM, with
// a child that ignores it too, is killed with SIGKILL after the grace
// period; nothing of its process group survives.
func TestTimeoutKillsGroupIgnoringSIGTERM(t *testing.T) {
	w := newWorld(t)
	for _, sb := range []*sandbox.Sandbox{w.on, w.off} {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		c, err := sb.Command(ctx, w.profile(), "/bin/sh", "-c", `trap '' TERM; sleep 30 & echo $!; while :; do sleep 1; done`)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		c.Stdout = &out
		start := time.Now()
		err = c.Run()
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v; want one wrapping context.DeadlineExceeded", err)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("err = %v; want an exit by SIGKILL", err)
		}
		// 500 ms timeout + 300 ms grace, with room for a loaded machine.
		if took < 700*time.Millisecond || took > 5*time.Second {
			t.Errorf("took %v; want about 800 ms", took)
		}
		assertGone(t, out.String())
		deadline := time.Now().Add(2 * time.Second)
		for live := liveInGroup(c.Pid()); len(live) > 0; live = liveInGroup(c.Pid()) {
			if time.Now().After(deadline) {
				t.Errorf("process group %d still has live members: %v", c.Pid(), live)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestLeftoversKilledAfterExit: background jobs do not outlive the command,
// and Wait does not hang on the output pipe they hold.
func TestLeftoversKilledAfterExit(t *testing.T) {
	w := newWorld(t)
	r := sh(t, w.on, w.profile(), "sleep 30 & echo $!")
	if r.err != nil {
		t.Fatal(r)
	}
	if r.took > 5*time.Second {
		t.Errorf("Wait took %v: it waited for the background job", r.took)
	}
	assertGone(t, r.out)
}

// assertGone checks that the pid printed first in out no longer runs.
func assertGone(t *testing.T, out string) {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]))
	if err != nil {
		t.Fatalf("no pid in output %q", out)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		// Reparented to init and reaped, or at least a zombie.
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("background process %d survived the command: %s", pid, b)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestForkBombBounded: RLIMIT_NPROC stops a fork bomb. The kernel does not
// enforce RLIMIT_NPROC for root, so as root the bomb first drops to the
// otherwise idle uid 65534 (setpriv, allowed under no_new_privs since it
// only lowers privileges). It is kept safe: a low limit, a bounded loop
// first (which must hit the limit before the real bomb is tried), CPU and
// time limits, and a check that nothing survives.
func TestForkBombBounded(t *testing.T) {
	requireLandlock(t)
	w := newWorld(t)
	drop := ""
	if isRoot() {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("SKIP: running as root, where RLIMIT_NPROC does not apply, and setpriv is missing to drop to another uid")
		}
		drop = setpriv + " --reuid=65534 --regid=65534 --clear-groups "
		for d := w.ws; d != "/"; d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // let uid 65534 enter the workspace
		}
		if n := countTasks(65534); n > 0 {
			t.Skipf("SKIP: uid 65534 already runs %d tasks; the bound would be inexact", n)
		}
	} else {
		t.Skip("SKIP: not root: RLIMIT_NPROC would count all of this user's processes; run as root (CI does)")
	}
	const limit = 20
	p := w.profile()
	p.Limits = sandbox.Limits{Processes: limit, CPUSeconds: 5}

	// Bounded: try 60 background sleeps, count those that started.
	r := run(t, w.on, p, 15*time.Second, "/bin/sh", "-c",
		drop+`/bin/sh -c 'n=0; i=0; while [ $i -lt 60 ]; do i=$((i+1)); if sleep 3 2>/dev/null & then n=$((n+1)); fi; done; echo started=$n' 2>&1; true`)
	started := 0
	for _, f := range strings.Fields(r.out) {
		if v, ok := strings.CutPrefix(f, "started="); ok {
			started, _ = strconv.Atoi(v)
		}
	}
	if !strings.Contains(strings.ToLower(r.out), "fork") || started >= 60 {
		t.Fatalf("RLIMIT_NPROC=%d did not stop 60 forks (started=%d): %v", limit, started, r)
	}
	waitNoTasks(t, 65534)

	// The real thing, bounded by the limit and killed by the timeout.
	r = run(t, w.on, p, 2*time.Second, "/bin/sh", "-c", drop+`/bin/sh -c 'b(){ b | b & }; b' 2>/dev/null`)
	if r.took > 10*time.Second {
		t.Errorf("fork bomb ran for %v", r.took)
	}
	waitNoTasks(t, 65534)
}

// liveInGroup lists the processes of group pgid that are not zombies (an
// orphan killed with its group stays a zombie until init reaps it).
func liveInGroup(pgid int) []string {
	var live []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b)[i+1:])
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			live = append(live, string(b[:i+1]))
		}
	}
	return live
}

// countTasks counts the threads of processes whose real uid is uid.
func countTasks(uid int) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, st := range procs {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == strconv.Itoa(uid) {
				n++
			}
		}
	}
	return n
}

func waitNoTasks(t *testing.T, uid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for countTasks(uid) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d processes of uid %d survived", countTasks(uid), uid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
