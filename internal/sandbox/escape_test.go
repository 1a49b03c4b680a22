//go:build linux

package sandbox_test

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// attack is one attempt to get out of the sandbox.
type attack struct {
	name   string
	minABI int
	setup  func(t *testing.T, w *world)
	// argv returns the command; nil means script under /bin/sh -c.
	script func(w *world) string
	argv   func(w *world) []string
	// breached reports whether the attempt got what it wanted.
	breached func(t *testing.T, w *world, r result) bool
}

func changed(path string) func(t *testing.T, w *world, r result) bool {
	return func(t *testing.T, w *world, r result) bool {
		b, err := os.ReadFile(path)
		return err != nil || string(b) != outsideContent
	}
}

func outsideChanged(t *testing.T, w *world, r result) bool { return changed(w.outside)(t, w, r) }

func dbChanged(t *testing.T, w *world, r result) bool {
	b, err := os.ReadFile(w.db)
	return err != nil || string(b) != "SQLite format 3\x00 audit log\n"
}

func leakedKey(t *testing.T, w *world, r result) bool { return strings.Contains(r.out, w.keySecret) }

func succeeded(t *testing.T, w *world, r result) bool { return r.err == nil }

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// systemTmpFile is a per-world file in the real /tmp.
func systemTmpFile(t *testing.T, w *world) string {
	p := filepath.Join(os.TempDir(), "astrid-sandbox-escape-"+strings.ReplaceAll(w.root, "/", "_"))
	t.Cleanup(func() { os.Remove(p) })
	return p
}

func attacks(t *testing.T) []attack {
	return []attack{
		{name: "write outside the workspace",
			script:   func(w *world) string { return "echo pwned > " + w.outside },
			breached: outsideChanged},
		{name: "delete a file outside the workspace",
			script:   func(w *world) string { return "rm -f " + w.outside },
			breached: outsideChanged},
		{name: "write the system /tmp",
			script:   func(w *world) string { return "echo pwned > " + systemTmpFile(t, w) },
			breached: func(t *testing.T, w *world, r result) bool { return exists(systemTmpFile(t, w)) }},
		{name: "read a key in ASTRID_HOME",
			script:   func(w *world) string { return "cat " + w.key },
			breached: leakedKey},
		{name: "list ASTRID_HOME/keys",
			script:   func(w *world) string { return "ls " + filepath.Dir(w.key) },
			breached: func(t *testing.T, w *world, r result) bool { return strings.Contains(r.out, "runtime.key") }},
		{name: "append to the audit database",
			script:   func(w *world) string { return "echo forged >> " + w.db },
			breached: dbChanged},
		{name: "truncate the audit database",
			script:   func(w *world) string { return "truncate -s 0 " + w.db },
			breached: dbChanged},
		{name: "delete the audit database",
			script:   func(w *world) string { return "rm -f " + w.db },
			breached: dbChanged},
		{name: "follow a symlink planted in the workspace",
			setup: func(t *testing.T, w *world) {
				if err := os.Symlink(w.outside, filepath.Join(w.ws, "link")); err != nil {
					t.Fatal(err)
				}
			},
			script:   func(w *world) string { return "echo pwned > link" },
			breached: outsideChanged},
		{name: "make a symlink to the outside and write through it",
			script:   func(w *world) string { return "ln -s " + w.outside + " evil && echo pwned > evil" },
			breached: outsideChanged},
		{name: "symlink to ASTRID_HOME and read the key",
			script:   func(w *world) string { return "ln -s " + w.home + " h && cat h/keys/runtime.key" },
			breached: leakedKey},
		{name: "cd .. then write",
			script:   func(w *world) string { return "cd .. && echo pwned > outside/file" },
			breached: outsideChanged},
		{name: "hard link an outside file into the workspace, then write",
			script:   func(w *world) string { return "ln " + w.outside + " x; echo pwned > x" },
			breached: outsideChanged},
		{name: "hard link the key into the workspace, then read",
			script:   func(w *world) string { return "ln " + w.key + " k; cat k" },
			breached: leakedKey},
		{name: "move a workspace file outside",
			script: func(w *world) string {
				return "echo data > f && mv f " + filepath.Join(filepath.Dir(w.outside), "moved")
			},
			breached: func(t *testing.T, w *world, r result) bool {
				return exists(filepath.Join(filepath.Dir(w.outside), "moved"))
			}},
		{name: "write through /proc/self/root",
			script:   func(w *world) string { return "echo pwned > /proc/self/root" + w.outside },
			breached: outsideChanged},
		{name: "read the key through /proc/self/root",
			script:   func(w *world) string { return "cat /proc/self/root" + w.key },
			breached: leakedKey},
		{name: "write through /proc/self/cwd/..",
			script:   func(w *world) string { return "echo pwned > /proc/self/cwd/../outside/file" },
			breached: outsideChanged},
		{name: "read the daemon's environment through /proc",
			script:   func(w *world) string { return "cat /proc/" + strconv.Itoa(os.Getpid()) + "/environ | tr '\\0' '\\n'" },
			breached: func(t *testing.T, w *world, r result) bool { return strings.Contains(r.out, "PATH=") }},
		{name: "list the daemon's open files through /proc",
			script:   func(w *world) string { return "ls -l /proc/" + strconv.Itoa(os.Getpid()) + "/fd/" },
			breached: func(t *testing.T, w *world, r result) bool { return strings.Contains(r.out, " 0 -> ") }},
		{name: "signal the daemon", minABI: 6,
			script:   func(w *world) string { return "kill -0 " + strconv.Itoa(os.Getpid()) },
			breached: succeeded},
		{name: "connect to a loopback port that is not granted", minABI: 4,
			argv: func(w *world) []string {
				return []string{filepath.Join(w.probeDir, filepath.Base(mustExe(t))), probeArg, "connect", listen(t)}
			},
			breached: succeeded},
		{name: "listen on a port", minABI: 4,
			argv: func(w *world) []string {
				return []string{filepath.Join(w.probeDir, filepath.Base(mustExe(t))), probeArg, "bind", "127.0.0.1:0"}
			},
			breached: succeeded},
	}
}

// TestEscapes runs every attack twice: without the sandbox, where it must
// succeed (otherwise the test would prove nothing), and with it, where it
// must fail and leave everything outside unchanged.
func TestEscapes(t *testing.T) {
	abi := requireLandlock(t)
	for _, a := range attacks(t) {
		t.Run(a.name, func(t *testing.T) {
			if abi < a.minABI {
				t.Skipf("SKIP: needs Landlock ABI %d, the kernel has %d", a.minABI, abi)
			}
			for _, enforced := range []bool{false, true} {
				w := newWorld(t)
				if a.setup != nil {
					a.setup(t, w)
				}
				sb := w.off
				if enforced {
					sb = w.on
				}
				var r result
				if a.argv != nil {
					r = run(t, sb, w.profile(), 20*time.Second, a.argv(w)...)
				} else {
					r = sh(t, sb, w.profile(), a.script(w))
				}
				if r.cmd.Sandboxed() != enforced {
					t.Fatalf("Sandboxed() = %v, want %v", r.cmd.Sandboxed(), enforced)
				}
				got := a.breached(t, w, r)
				switch {
				case !enforced && !got:
					t.Fatalf("control run without the sandbox did not succeed, so this test proves nothing: %v", r)
				case enforced && got:
					t.Errorf("ESCAPE with the sandbox: %v", r)
				}
				if enforced {
					if !dbChanged(t, w, r) && readFile(t, w.key) == w.keySecret+"\n" && !outsideChanged(t, w, r) {
						continue
					}
					t.Errorf("state outside the workspace changed")
				}
			}
		})
	}
}

func mustExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// listen returns the address of a loopback TCP listener that lives until
// the test ends. Connections complete in the backlog; nothing accepts.
func listen(t *testing.T) string {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// TestNoNewPrivs: inside the sandbox no_new_privs is set, and a setuid
// binary does not change the effective uid. Outside (plain exec) the same
// binary does, so the test is meaningful.
func TestNoNewPrivs(t *testing.T) {
	requireLandlock(t)
	w := newWorld(t)
	withProc := w.profile()
	withProc.ReadOnly = append(withProc.ReadOnly, "/proc")
	r := sh(t, w.on, withProc, "grep NoNewPrivs /proc/self/status")
	if r.err != nil || !strings.Contains(r.out, "NoNewPrivs:\t1") {
		t.Fatalf("NoNewPrivs not set inside the sandbox: %v", r)
	}
	if !isRoot() {
		t.Log("not root: the setuid part needs to chown a binary to another user")
		return
	}
	// A setuid copy of id owned by nobody: run normally, it reports uid
	// 65534; under no_new_privs, the setuid bit is ignored.
	suid := filepath.Join(w.ws, "id-suid")
	b, err := os.ReadFile("/usr/bin/id")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(suid, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(suid, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	// The workspace and its parents must be traversable by nobody for
	// the control run, which execs it directly.
	for d := w.ws; d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	out, err := execPlain(suid, "-u")
	if err != nil || strings.TrimSpace(out) != "65534" {
		t.Fatalf("control: setuid binary outside the sandbox gave %q, %v; want 65534 (nosuid mount?)", out, err)
	}
	r = run(t, w.on, w.profile(), 10*time.Second, suid, "-u")
	if r.err != nil || strings.TrimSpace(r.out) != "0" {
		t.Errorf("setuid binary inside the sandbox: %v; want euid 0 (setuid ignored)", r)
	}
}

// execPlain runs a program directly, outside any sandbox.
func execPlain(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestUnavailableFallback: with the sandbox off, commands still run, with
// no_new_privs and limits, and report Sandboxed() == false so the
// interceptor can require approval.
func TestUnavailableFallback(t *testing.T) {
	w := newWorld(t)
	if w.off.Available() {
		t.Fatal("DisableLandlock did not make the sandbox unavailable")
	}
	p := w.profile()
	p.Limits.OpenFiles = 77
	r := sh(t, w.off, p, "grep NoNewPrivs /proc/self/status; grep 'Max open files' /proc/self/limits")
	if r.err != nil {
		t.Fatal(r)
	}
	if r.cmd.Sandboxed() || r.cmd.NetworkRestricted() {
		t.Errorf("Sandboxed()=%v NetworkRestricted()=%v; want false, false", r.cmd.Sandboxed(), r.cmd.NetworkRestricted())
	}
	if !strings.Contains(r.out, "NoNewPrivs:\t1") || !regexpFields(r.out, "Max open files", "77", "77") {
		t.Errorf("fallback lost no_new_privs or limits: %s", r.out)
	}
}

// regexpFields reports whether a line starting with label has the given
// next fields.
func regexpFields(out, label string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, label); ok {
			f := strings.Fields(rest)
			if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
				return true
			}
		}
	}
	return false
}

// TestProtectedRulesRefused: no rule may be, contain or lie inside
// ASTRID_HOME, however it is spelled; Command refuses before anything runs.
func TestProtectedRulesRefused(t *testing.T) {
	w := newWorld(t)
	link := filepath.Join(w.ws, "home-link")
	if err := os.Symlink(w.home, link); err != nil {
		t.Fatal(err)
	}
	for _, sb := range []*sandbox.Sandbox{w.on, w.off} {
		for _, tc := range []struct {
			name string
			mod  func(p *sandbox.Profile)
		}{
			{"home itself read-only", func(p *sandbox.Profile) { p.ReadOnly = append(p.ReadOnly, w.home) }},
			{"keys read-only", func(p *sandbox.Profile) { p.ReadOnly = append(p.ReadOnly, filepath.Join(w.home, "keys")) }},
			{"database file read-write", func(p *sandbox.Profile) { p.ReadWrite = append(p.ReadWrite, w.db) }},
			{"parent of home", func(p *sandbox.Profile) { p.ReadOnly = append(p.ReadOnly, w.root) }},
			{"root directory", func(p *sandbox.Profile) { p.ReadOnly = append(p.ReadOnly, "/") }},
			{"unclean spelling", func(p *sandbox.Profile) { p.ReadOnly = append(p.ReadOnly, w.ws+"/../astrid-home/./keys") }},
			{"symlink to home", func(p *sandbox.Profile) { p.ReadOnly = append(p.ReadOnly, link) }},
			{"workspace that contains home", func(p *sandbox.Profile) { *p = sandbox.DefaultShellProfile(w.root, w.tmp, nil) }},
			{"temp dir inside home", func(p *sandbox.Profile) { p.TempDir = filepath.Join(w.home, "tmp") }},
		} {
			p := w.profile()
			tc.mod(&p)
			_, err := sb.Command(t.Context(), p, "/bin/true")
			var pe *sandbox.ProtectedPathError
			if !errors.As(err, &pe) {
				t.Errorf("%s (available=%v): err = %v, want a *ProtectedPathError", tc.name, sb.Available(), err)
			}
		}
	}
}
