package tools

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tree writes files (path -> content) under the workspace with mtimes one
// minute apart in the order given, the last newest.
func (e *env) tree(files ...string) {
	e.t.Helper()
	base := time.Now().Add(-time.Hour)
	for i := 0; i+1 < len(files); i += 2 {
		p := e.write(files[i], files[i+1])
		mt := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(p, mt, mt); err != nil {
			e.t.Fatal(err)
		}
	}
}

func TestGlob(t *testing.T) {
	e := newEnv(t)
	e.tree(
		".gitignore", "build/\n*.log\n!keep.log\n",
		"main.go", "package main\n",
		"pkg/a/a.go", "package a\n",
		"pkg/a/a_test.go", "package a\n",
		"pkg/a/.gitignore", "gen_*.go\n",
		"pkg/a/gen_x.go", "package a\n",
		"build/out.go", "package build\n",
		"debug.log", "x",
		"keep.log", "x",
		".git/config", "[core]\n",
		".github/ci.yml", "on: push\n",
		"README.md", "# hi\n",
	)
	if err := os.Symlink(e.outside, filepath.Join(e.ws, "linkdir")); err != nil {
		t.Fatal(err)
	}
	e.writeAbs(filepath.Join(e.outside, "evil.go"), "package evil\n")
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		// Newest first: the tree's order reversed.
		{map[string]any{"pattern": "**/*.go"}, "WS/pkg/a/a_test.go\nWS/pkg/a/a.go\nWS/main.go\n[1 entries refused by the workspace policy were skipped]"},
		{map[string]any{"pattern": "*.go"}, "WS/main.go\n[1 entries refused by the workspace policy were skipped]"},
		{map[string]any{"pattern": "*.go", "path": "pkg/a"}, "WS/pkg/a/a_test.go\nWS/pkg/a/a.go"},
		{map[string]any{"pattern": "**/*.log"}, "WS/keep.log\n[1 entries refused by the workspace policy were skipped]"},
		{map[string]any{"pattern": ".github/*.{yml,yaml}"}, "WS/.github/ci.yml\n[1 entries refused by the workspace policy were skipped]"},
		{map[string]any{"pattern": "./README.md"}, "WS/README.md\n[1 entries refused by the workspace policy were skipped]"},
		{map[string]any{"pattern": "**/config"}, "No files match \"**/config\" under WS.\n[1 entries refused by the workspace policy were skipped]"},
		// The symlink itself ("**" also matches nothing), never what it points at.
		{map[string]any{"pattern": "linkdir/**"}, "WS/linkdir\n[1 entries refused by the workspace policy were skipped]"},
	} {
		if got := e.rel(e.ok("glob", tc.args)); got != tc.want {
			t.Errorf("glob %v:\ngot:\n%s\nwant:\n%s", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"pattern": "/etc/*"}, `glob: argument "pattern": must be relative to path; to search elsewhere, set path`},
		{map[string]any{"pattern": "../*"}, `glob: argument "pattern": must not contain ".."`},
		{map[string]any{"pattern": "a/[b"}, `glob: argument "pattern": "a/[b" is not a valid glob pattern`},
		{map[string]any{"pattern": "*", "path": "main.go"}, "main.go: a component of the path is not a directory"},
		{map[string]any{"path": "pkg"}, `glob: argument "pattern": is required`},
	} {
		mustContain(t, e.fail("glob", tc.args), tc.want)
	}
}

func TestGlobCap(t *testing.T) {
	e := newEnv(t, withLimits(Limits{Results: 3}))
	for i := range 5 {
		e.tree(fmt.Sprintf("f%d.txt", i), "x")
	}
	got := e.rel(e.ok("glob", map[string]any{"pattern": "*.txt"}))
	if n := strings.Count(got, "WS/f"); n != 3 {
		t.Errorf("showed %d matches with a cap of 3:\n%s", n, got)
	}
	mustContain(t, got, "[showing the 3 newest of 5 matches; narrow the pattern or path to see the rest]")

	w := newEnv(t, withLimits(Limits{WalkEntries: 4}))
	for i := range 10 {
		w.write(fmt.Sprintf("f%d.txt", i), "x")
	}
	mustContain(t, w.ok("glob", map[string]any{"pattern": "**"}), "[the walk stopped after 4 entries; results may be incomplete]")
}

func TestGrep(t *testing.T) {
	e := newEnv(t)
	e.tree(
		".gitignore", "vendor/\n",
		"a.go", "package a\n\nfunc Alpha() {}\n\nfunc beta() {}\nfunc Gamma() {}\n",
		"sub/b.go", "package sub\n// TODO: fix\n",
		"sub/c.txt", "todo later\nfunc in text\n",
		"vendor/v.go", "func Vendored() {}\n",
		"bin.dat", "func \x00 binary",
	)
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"pattern": `^func [A-Z]`},
			"WS/a.go:3:func Alpha() {}\nWS/a.go:6:func Gamma() {}\n[1 binary files skipped]\n[1 entries refused by the workspace policy were skipped]"},
		{map[string]any{"pattern": `func`, "glob": "*.go"},
			"WS/a.go:3:func Alpha() {}\nWS/a.go:5:func beta() {}\nWS/a.go:6:func Gamma() {}\n[1 entries refused by the workspace policy were skipped]"},
		{map[string]any{"pattern": `todo`, "case_insensitive": true, "path": "sub"},
			"WS/sub/b.go:2:// TODO: fix\nWS/sub/c.txt:1:todo later"},
		{map[string]any{"pattern": `todo`, "path": "sub"},
			"WS/sub/c.txt:1:todo later"},
		{map[string]any{"pattern": `todo`, "glob": "sub/*.txt"},
			"WS/sub/c.txt:1:todo later\n[1 entries refused by the workspace policy were skipped]"},
		{map[string]any{"pattern": `later$`, "path": "sub/c.txt"},
			"WS/sub/c.txt:1:todo later"},
		{map[string]any{"pattern": `Alpha|Gamma`, "context": 1, "path": "a.go"},
			"WS/a.go-2-\nWS/a.go:3:func Alpha() {}\nWS/a.go-4-\nWS/a.go-5-func beta() {}\nWS/a.go:6:func Gamma() {}"},
		{map[string]any{"pattern": `package|Gamma`, "context": 1, "path": "a.go"},
			"WS/a.go:1:package a\nWS/a.go-2-\n--\nWS/a.go-5-func beta() {}\nWS/a.go:6:func Gamma() {}"},
		{map[string]any{"pattern": `\Afunc`, "path": "a.go"},
			"WS/a.go:3:func Alpha() {}\nWS/a.go:5:func beta() {}\nWS/a.go:6:func Gamma() {}"},
		{map[string]any{"pattern": `beta`, "context": 5, "path": "a.go"},
			"WS/a.go-1-package a\nWS/a.go-2-\nWS/a.go-3-func Alpha() {}\nWS/a.go-4-\nWS/a.go:5:func beta() {}\nWS/a.go-6-func Gamma() {}"},
		{map[string]any{"pattern": `Vendored`}, "No matches for /Vendored/ in WS (5 files searched).\n[1 binary files skipped]\n[1 entries refused by the workspace policy were skipped]"},
	} {
		got := e.rel(e.ok("grep", tc.args))
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("grep %v (-want +got)\n%s", tc.args, diff)
		}
	}
	// CRLF lines match "$" at their end, as the model sees them.
	e.writeAbs(filepath.Join(e.outside, "crlf.txt"), "end here\r\nnot\r\n")
	if got := e.rel(e.ok("grep", map[string]any{"pattern": `here$`, "path": filepath.Join(e.outside, "crlf.txt")})); got != "DIR/outside/crlf.txt:1:end here" {
		t.Errorf("grep in a CRLF file: %q", got)
	}
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"pattern": `(`}, `grep: argument "pattern": not a valid RE2 regular expression: missing closing ): ` + "`(`"},
		{map[string]any{"pattern": `x`, "context": 99}, `grep: argument "context": must be between 0 and 20, got 99`},
		{map[string]any{"pattern": `x`, "glob": "/abs"}, `grep: argument "glob": must be relative to path`},
		{map[string]any{"pattern": `x`, "path": "nope"}, "nope: does not exist"},
	} {
		mustContain(t, e.fail("grep", tc.args), tc.want)
	}
}

func TestGrepCaps(t *testing.T) {
	e := newEnv(t, withLimits(Limits{Results: 5}))
	e.write("many.txt", lines(50, func(i int) string { return fmt.Sprint("hit ", i) }))
	got := e.ok("grep", map[string]any{"pattern": "hit"})
	if n := strings.Count(got, ":hit "); n != 5 {
		t.Errorf("%d matches shown with a cap of 5", n)
	}
	mustContain(t, got, "[output cut after 5 matching lines (limit 5 lines or 65536 bytes); there are more: narrow the pattern, path or glob]")

	b := newEnv(t, withLimits(Limits{OutputBytes: 300, GrepFileBytes: 1000}))
	b.write("many.txt", lines(50, func(i int) string { return fmt.Sprint("hit ", i) }))
	b.write("huge.txt", strings.Repeat("hit\n", 500))
	got = b.ok("grep", map[string]any{"pattern": "hit"})
	if len(got) > 300+300 {
		t.Errorf("output of %d bytes with a 300-byte cap", len(got))
	}
	mustContain(t, got, "[output cut after ", "[1 files over 1000 bytes skipped]")
}

func TestListDirectory(t *testing.T) {
	e := newEnv(t)
	e.write("b.txt", "12345")
	e.write("a/x", "")
	if err := os.Symlink("../outside", filepath.Join(e.ws, "link")); err != nil {
		t.Fatal(err)
	}
	want := "dir                   a/\n" +
		"file               5  b.txt\n" +
		"symlink               link -> ../outside\n" +
		"[1 entries refused by the workspace policy are not shown]" // secret/
	if diff := cmp.Diff(want, e.ok("list_directory", map[string]any{})); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	mustContain(t, e.ok("list_directory", map[string]any{"path": "a"}), "file               0  x")
	mustContain(t, e.ok("list_directory", map[string]any{"path": "a/"}), "file               0  x")
	if err := os.Mkdir(filepath.Join(e.ws, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.rel(e.ok("list_directory", map[string]any{"path": "empty"})), "WS/empty is empty.")
	mustContain(t, e.fail("list_directory", map[string]any{"path": "b.txt"}), "b.txt: a component of the path is not a directory")

	c := newEnv(t, withLimits(Limits{ListEntries: 2}))
	for i := range 4 {
		c.write(fmt.Sprint("f", i), "")
	}
	got := c.ok("list_directory", map[string]any{})
	mustContain(t, got, "  f0\n", "  f1\n", "[showing 2 of 5 entries; use glob to find specific files]")
	mustNotContain(t, got, "f2")
}
