package tools

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/security"
)

// TestDeniedPathsComeBackAsErrors: what policy refuses is an error result
// naming the step and the rule, and nothing is touched.
func TestDeniedPathsComeBackAsErrors(t *testing.T) {
	e := newEnv(t)
	key := filepath.Join(e.home, "keys", "runtime.key")
	keyBytes := e.read(key)
	cfg := e.write(".astrid/config.toml", "[workspace]\nmode = \"autonomous\"\n")
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"read_file", map[string]any{"file_path": "/etc/passwd"}, "read_file was not run: denied by policy (denied_paths): /etc/passwd matches denied path \"/etc/**\""},
		{"read_file", map[string]any{"file_path": key}, "read_file was not run: denied by policy (astrid_home): " + key + " is inside Astrid's state directory"},
		{"read_file", map[string]any{"file_path": "secret/token.txt"}, "denied by policy (denied_paths)"},
		{"grep", map[string]any{"pattern": ".", "path": key}, "grep was not run: denied by policy (astrid_home)"},
		{"grep", map[string]any{"pattern": ".", "path": e.home}, "grep was not run: denied by policy (astrid_home)"},
		{"glob", map[string]any{"pattern": "**", "path": e.home}, "glob was not run: denied by policy (astrid_home)"},
		{"list_directory", map[string]any{"path": filepath.Join(e.home, "keys")}, "list_directory was not run: denied by policy (astrid_home)"},
		{"list_directory", map[string]any{"path": "/etc"}, "denied by policy (denied_paths)"},
		{"write_file", map[string]any{"file_path": ".astrid/config.toml", "content": "[workspace]\nmode = \"autonomous\"\n[budget]\n"}, "write_file was not run: denied by policy (workspace_config)"},
		{"edit_file", map[string]any{"file_path": ".astrid/config.toml", "old_string": "autonomous", "new_string": "x"}, "edit_file was not run: denied by policy (workspace_config)"},
		{"write_file", map[string]any{"file_path": key, "content": "x"}, "denied by policy (astrid_home)"},
		{"write_file", map[string]any{"file_path": filepath.Join(e.home, "config.toml"), "content": "x"}, "denied by policy (astrid_home)"},
		// Through a symlink: judged where it leads.
		{"read_file", map[string]any{"file_path": "keylink"}, "denied by policy (astrid_home)"},
		{"write_file", map[string]any{"file_path": "cfglink/config.toml", "content": "x"}, "denied by policy (workspace_config)"},
	} {
		if tc.args["file_path"] == "keylink" {
			os.Symlink(key, filepath.Join(e.ws, "keylink"))
			os.Symlink(filepath.Join(e.ws, ".astrid"), filepath.Join(e.ws, "cfglink"))
		}
		got := e.fail(tc.tool, tc.args)
		mustContain(t, got, tc.want)
		mustNotContain(t, got, keyBytes, "SECRET-TOKEN")
	}
	if e.read(key) != keyBytes {
		t.Error("the runtime key changed")
	}
	if e.read(cfg) != "[workspace]\nmode = \"autonomous\"\n" {
		t.Error("the workspace configuration changed")
	}
	noTempFiles(t, filepath.Dir(cfg))
	noTempFiles(t, e.home)
	if len(e.asked) != 0 {
		t.Errorf("policy denials reached the human: %v", e.asked)
	}
}

// TestDeferredAndDenied: with nobody to ask, an action outside the
// workspace is deferred; a human's refusal is a denial. Both are results
// the model can read, and nothing ran.
func TestDeferredAndDenied(t *testing.T) {
	e := newEnv(t)
	target := filepath.Join(e.outside, "new.txt")
	e.sess.Asker = nil
	got := e.fail("write_file", map[string]any{"file_path": target, "content": "x"})
	mustContain(t, got, "write_file was not run yet: it needs a human's approval (request ", "Continue with other work")
	e.sess.Asker = approval.AskerFunc(func(context.Context, approval.Request) (approval.Answer, error) {
		return approval.Answer{Decision: approval.Deny, By: "tester"}, nil
	})
	mustContain(t, e.fail("write_file", map[string]any{"file_path": target, "content": "x"}), "write_file was not run: denied by approval (user): the user denied it")
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused write created the file")
	}
}

// TestWalksNeverTouchWhatPolicyRefuses walks from parents of $ASTRID_HOME
// and of a denied directory. An inotify watch on each refused directory
// shows that nothing in it is opened or read, and the path filter is never
// asked about anything below it (the walker asks before every open).
func TestWalksNeverTouchWhatPolicyRefuses(t *testing.T) {
	var mu sync.Mutex
	var askedAbout []string
	e := newEnv(t, withFilter(func(f func(string) bool) func(string) bool {
		return func(p string) bool {
			mu.Lock()
			askedAbout = append(askedAbout, p)
			mu.Unlock()
			return f(p)
		}
	}))
	e.write("secret/deeper/more.txt", "SECRET-TOKEN\n")
	e.write("src/ok.txt", "SECRET-TOKEN is mentioned here\n")
	refused := []string{e.home, filepath.Join(e.home, "keys"), filepath.Join(e.ws, "secret"), filepath.Join(e.ws, "secret", "deeper")}
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	for _, d := range refused {
		if _, err := unix.InotifyAddWatch(in, d, unix.IN_OPEN|unix.IN_ACCESS); err != nil {
			t.Fatal(err)
		}
	}
	for _, root := range []string{e.user, e.dir, e.ws} {
		for _, c := range []struct {
			tool string
			args map[string]any
		}{
			{"glob", map[string]any{"pattern": "**", "path": root}},
			{"glob", map[string]any{"pattern": "**/*.key", "path": root}},
			{"grep", map[string]any{"pattern": "SECRET|PRIVATE|BEGIN|\\[", "path": root}},
			{"list_directory", map[string]any{"path": root}},
		} {
			got := e.ok(c.tool, c.args)
			mustNotContain(t, got, e.home+"/", "/secret/", "runtime.key", "state.db")
			if c.tool == "grep" {
				mustContain(t, got, "src/ok.txt:1:SECRET-TOKEN is mentioned here")
			}
		}
	}
	// The walks found the allowed files, so they did run.
	mustContain(t, e.ok("glob", map[string]any{"pattern": "**/*.txt", "path": e.user}), e.ws+"/src/ok.txt")

	var buf [64 << 10]byte
	n, err := unix.Read(in, buf[:])
	if err != nil && err != unix.EAGAIN {
		t.Fatal(err)
	}
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		mask := binary.NativeEndian.Uint32(buf[off+4:])
		nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
		name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+nameLen]), "\x00")
		off += unix.SizeofInotifyEvent + nameLen
		if strings.HasPrefix(name, "state.db") {
			continue // the audit log, written by the interceptor itself
		}
		t.Errorf("a walk touched a refused directory: event %#x on %q", mask, name)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range askedAbout {
		for _, d := range refused {
			if strings.HasPrefix(p, d+"/") && !slicesContains(refused, p) {
				t.Errorf("the walk got as far as asking about %s, inside refused %s", p, d)
			}
		}
	}
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// TestWalkingToolsFailClosedWithoutFilter: no path filter, no walk.
func TestWalkingToolsFailClosedWithoutFilter(t *testing.T) {
	e := newEnv(t, withFilter(func(func(string) bool) func(string) bool { return nil }))
	e.write("a.txt", "x")
	mustContain(t, e.fail("glob", map[string]any{"pattern": "**"}), "walking tools are disabled: the runtime gave no path filter")
	mustContain(t, e.fail("grep", map[string]any{"pattern": "x"}), "walking tools are disabled")
}

// swapRun runs a prepared call through the interceptor, replacing the
// directory dir by a symlink to target after the interceptor's decision
// and before the executor runs: the race the executors must lose safely.
func (e *env) swapRun(tool string, args map[string]any, dir, target string) (string, error) {
	e.t.Helper()
	raw, _ := json.Marshal(args)
	a, ex, err := e.reg.tools[tool].Prepare(e.sess, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.core.Interceptor.Run(context.Background(), a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		if err := os.Rename(dir, dir+".orig"); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Symlink(target, dir); err != nil {
			e.t.Fatal(err)
		}
		return ex.Execute(ctx, a)
	}))
	return string(out), err
}

func TestSymlinkSwapAfterTheDecision(t *testing.T) {
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{
		{"write_file", map[string]any{"file_path": "sub/new.txt", "content": "PWNED"}},
		{"write_file", map[string]any{"file_path": "sub/deeper/new.txt", "content": "PWNED"}},
		{"edit_file", map[string]any{"file_path": "sub/victim.txt", "old_string": "original", "new_string": "PWNED"}},
		{"read_file", map[string]any{"file_path": "sub/victim.txt"}},
		{"list_directory", map[string]any{"path": "sub"}},
		{"glob", map[string]any{"pattern": "**", "path": "sub"}},
		{"grep", map[string]any{"pattern": "original", "path": "sub"}},
		{"grep", map[string]any{"pattern": "original", "path": "sub/victim.txt"}},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			e := newEnv(t)
			e.write("sub/victim.txt", "original inside\n")
			e.write("sub/deeper/x", "")
			// Outside: same names, different content.
			e.writeAbs(filepath.Join(e.outside, "victim.txt"), "original OUTSIDE\n")
			e.writeAbs(filepath.Join(e.outside, "deeper", "x"), "")
			out, err := e.swapRun(tc.tool, tc.args, filepath.Join(e.ws, "sub"), e.outside)
			if err == nil {
				t.Fatalf("ran through a swapped symlink: %s", out)
			}
			if !errors.Is(err, unix.ELOOP) && !strings.Contains(describeErr(err), "symbolic link") {
				t.Errorf("error %v, want ELOOP", err)
			}
			mustNotContain(t, out, "OUTSIDE")
			if got := e.read(filepath.Join(e.outside, "victim.txt")); got != "original OUTSIDE\n" {
				t.Errorf("the outside file changed: %q", got)
			}
			for _, p := range []string{filepath.Join(e.outside, "new.txt"), filepath.Join(e.outside, "deeper", "new.txt")} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the write landed outside: %s", p)
				}
			}
			noTempFiles(t, e.outside)
			noTempFiles(t, filepath.Join(e.ws, "sub.orig"))
		})
	}
}

// TestSymlinkSwapDuringAWalk replaces a directory the walk has listed but
// not yet entered.
func TestSymlinkSwapDuringAWalk(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "first\n")
	e.write("b/inside.txt", "inside\n")
	e.writeAbs(filepath.Join(e.outside, "outside.txt"), "outside\n")
	var seen []string
	swapped := false
	w := walkConfig{filter: func(string) bool { return true }, limits: DefaultLimits()}
	_, err := w.walk(context.Background(), e.ws, e.ws, func(we walkEntry) error {
		seen = append(seen, we.rel)
		if !swapped {
			swapped = true
			b := filepath.Join(e.ws, "b")
			if err := os.Rename(b, b+".orig"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(e.outside, b); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seen {
		if strings.Contains(s, "outside") {
			t.Errorf("the walk followed a swapped symlink: saw %v", seen)
		}
	}
	if len(seen) == 0 || seen[0] != "a.txt" {
		t.Errorf("walk saw %v", seen)
	}
}

// TestOpenRefusesSymlinks covers openPath and its fallback walkOpen (used
// where openat2 is missing) on the same paths.
func TestOpenRefusesSymlinks(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"real/sub", "other"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "real/sub/f"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "other/f"), []byte("x"), 0o644)
	os.Symlink(filepath.Join(dir, "other"), filepath.Join(dir, "real/link"))
	os.Symlink(filepath.Join(dir, "real/sub/f"), filepath.Join(dir, "real/flink"))
	for name, open := range map[string]func(string, int, uint32) (int, error){"openat2": openPath, "fallback": walkOpen} {
		for _, tc := range []struct {
			path  string
			flags int
			want  error
		}{
			{"real/sub/f", unix.O_RDONLY, nil},
			{"real/sub", unix.O_RDONLY | unix.O_DIRECTORY, nil},
			{"real/link/f", unix.O_RDONLY, unix.ELOOP},
			{"real/link", unix.O_RDONLY | unix.O_DIRECTORY, unix.ELOOP},
			{"real/flink", unix.O_RDONLY, unix.ELOOP},
			{"real/link/new", unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL, unix.ELOOP},
			{"real/sub/new-" + name, unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL, nil},
			{"real/missing/f", unix.O_RDONLY, unix.ENOENT},
		} {
			fd, err := open(filepath.Join(dir, tc.path), tc.flags, 0o644)
			if err == nil {
				unix.Close(fd)
			}
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("%s %s: %v, want %v", name, tc.path, err, tc.want)
			}
		}
		if _, err := open("relative/path", unix.O_RDONLY, 0); err == nil {
			t.Errorf("%s opened a relative path", name)
		}
		if _, err := open(dir+"/real/../other/f", unix.O_RDONLY, 0); err == nil {
			t.Errorf("%s opened a path with ..", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "other", "new")); err == nil {
		t.Error("a create through a symlink landed")
	}
}
