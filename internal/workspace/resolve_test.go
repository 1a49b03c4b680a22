package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture builds:
//
//	root/ws/            the workspace
//	root/ws/src/a.go
//	root/ws/etclink  -> /etc
//	root/ws/up       -> ..            (relative, leaves the workspace)
//	root/ws/sslsub   -> /etc/ssl      (for physical "..")
//	root/ws/loop1    -> loop2, loop2 -> loop1
//	root/ws/dangling -> root/outside/new.txt
//	root/outside/
func fixture(t *testing.T) (root, ws string) {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws = filepath.Join(root, "ws")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(ws, "src"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "outside"), 0o755))
	must(os.WriteFile(filepath.Join(ws, "src", "a.go"), nil, 0o644))
	must(os.Symlink("/etc", filepath.Join(ws, "etclink")))
	must(os.Symlink("..", filepath.Join(ws, "up")))
	must(os.Symlink("/etc/ssl", filepath.Join(ws, "sslsub")))
	must(os.Symlink("loop2", filepath.Join(ws, "loop1")))
	must(os.Symlink("loop1", filepath.Join(ws, "loop2")))
	must(os.Symlink(filepath.Join(root, "outside", "new.txt"), filepath.Join(ws, "dangling")))
	return root, ws
}

func TestResolve(t *testing.T) {
	root, ws := fixture(t)
	for _, tc := range []struct {
		in, want string
	}{
		{"src/a.go", ws + "/src/a.go"},
		{"./src/../src/a.go", ws + "/src/a.go"},
		{ws + "/src/a.go", ws + "/src/a.go"},
		{"new/dir/file.txt", ws + "/new/dir/file.txt"},
		{"../outside/x", root + "/outside/x"},
		{"../../../../../../etc/passwd", "/etc/passwd"},
		{"etclink/passwd", "/etc/passwd"},
		{"etclink/../root/.ssh/id", "/root/.ssh/id"},
		{"up/outside/x", root + "/outside/x"},
		{"sslsub/../passwd", "/etc/passwd"}, // physical "..": /etc/ssl/.. is /etc
		{"dangling", root + "/outside/new.txt"},
		{"/proc/self/root/etc/passwd", "/etc/passwd"},
		{"src/a.go/x", ws + "/src/a.go/x"},
		{"//etc///passwd", "/etc/passwd"},
	} {
		got, err := Resolve(ws, tc.in)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Resolve(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	_, ws := fixture(t)
	for _, tc := range []struct{ base, in, want string }{
		{ws, "", "empty"},
		{ws, "a\x00b", "NUL"},
		{ws, strings.Repeat("a/", 3000), "longer"},
		{ws, "loop1/x", "symbolic links"},
		{ws, "missing/../../etc/passwd", "does not exist"},
		{"relative", "x", "not absolute"},
	} {
		_, err := Resolve(tc.base, tc.in)
		if err == nil || !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%q, %q) = %v, want ErrInvalidPath containing %q", tc.base, tc.in, err, tc.want)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		root, p string
		want    bool
	}{
		{"/ws", "/ws", true},
		{"/ws", "/ws/a", true},
		{"/ws", "/wsx", false},
		{"/ws", "/", false},
		{"/", "/etc", true},
	} {
		if got := Within(tc.root, tc.p); got != tc.want {
			t.Errorf("Within(%q, %q) = %v", tc.root, tc.p, got)
		}
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("src/a.go")
	f.Add("../../x/../y")
	f.Add("etclink/../../a")
	f.Fuzz(func(t *testing.T, p string) {
		got, err := Resolve("/tmp", p)
		if err == nil && (!filepath.IsAbs(got) || filepath.Clean(got) != got) {
			t.Fatalf("Resolve(%q) = %q: not canonical", p, got)
		}
	})
}
