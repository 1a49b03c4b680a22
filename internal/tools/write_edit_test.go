package tools

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// noTempFiles fails if a write left a temporary file in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, d := range ents {
		if strings.HasPrefix(d.Name(), ".astrid-tmp-") {
			t.Errorf("temporary file left behind: %s", filepath.Join(dir, d.Name()))
		}
	}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteFile(t *testing.T) {
	e := newEnv(t)
	// Create, with missing parents.
	got := e.ok("write_file", map[string]any{"file_path": "a/b/c.txt", "content": "one\ntwo\n"})
	if want := "Created WS/a/b/c.txt (8 bytes, 2 lines)."; e.rel(got) != want {
		t.Errorf("got %q, want %q", e.rel(got), want)
	}
	p := filepath.Join(e.ws, "a/b/c.txt")
	if e.read(p) != "one\ntwo\n" {
		t.Fatal("content not written")
	}
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	if m := mode(t, p); m != 0o644&^os.FileMode(umask) {
		t.Errorf("new file mode %v, want 0644 less umask %03o", m, umask)
	}

	// Replace: a diff, the mode kept.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	got = e.ok("write_file", map[string]any{"file_path": p, "content": "one\n2\nthree\n"})
	want := "Replaced WS/a/b/c.txt (8 bytes before, 12 bytes now).\n" +
		"--- WS/a/b/c.txt\n+++ WS/a/b/c.txt\n@@ -1,2 +1,3 @@\n one\n-two\n+2\n+three"
	if diff := cmp.Diff(want, e.rel(got)); diff != "" {
		t.Errorf("replace (-want +got)\n%s", diff)
	}
	if m := mode(t, p); m != 0o600 {
		t.Errorf("replaced file mode %v, want 0600 kept", m)
	}
	noTempFiles(t, filepath.Dir(p))

	// Same content: nothing written.
	mustContain(t, e.ok("write_file", map[string]any{"file_path": p, "content": "one\n2\nthree\n"}), "is unchanged")

	// Empty content is a valid file.
	mustContain(t, e.ok("write_file", map[string]any{"file_path": "empty", "content": ""}), "Created", "(0 bytes, 0 lines)")

	// A directory is not a file.
	mustContain(t, e.fail("write_file", map[string]any{"file_path": "a/b", "content": "x"}), "is a directory")
	// A path under a file.
	mustContain(t, e.fail("write_file", map[string]any{"file_path": "a/b/c.txt/d", "content": "x"}), "not a directory")
	// Missing content is not empty content.
	mustContain(t, e.fail("write_file", map[string]any{"file_path": "x"}), `write_file: argument "content": is required`)
}

func TestWriteFileDiffIsCapped(t *testing.T) {
	e := newEnv(t, withLimits(Limits{DiffBytes: 200}))
	old := lines(100, func(i int) string { return fmt.Sprint("old ", i) })
	p := e.write("f.txt", old)
	got := e.ok("write_file", map[string]any{"file_path": p, "content": strings.ReplaceAll(old, "old", "new")})
	mustContain(t, got, "[diff cut: ", "more lines not shown]")
	if len(got) > 400 {
		t.Errorf("diff of %d bytes shown with a 200-byte cap", len(got))
	}
}

func TestEditFile(t *testing.T) {
	e := newEnv(t)
	src := "package main\n\nfunc main() {\n\tfmt.Println(\"hi\")\n\tfmt.Println(\"hi\")\n}\n\nfunc other() {\n\treturn\n}\n"
	p := e.write("main.go", src)
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args map[string]any
		want string // exact (after e.rel) when it starts with "=", else a substring
	}{
		{"no match, whitespace differs", map[string]any{"file_path": "main.go", "old_string": "func main() {\n    fmt.Println(\"hi\")", "new_string": "x"},
			"=edit_file: old_string was not found in WS/main.go. It matches lines 3-4 if whitespace is ignored (indentation, tabs or line endings differ). Those lines are:\n" +
				"     3\tfunc main() {\n     4\t\tfmt.Println(\"hi\")\nCopy the text exactly as shown after the tab."},
		{"no match, close lines", map[string]any{"file_path": "main.go", "old_string": "func mian() {\n\tprintln()", "new_string": "x"},
			"=edit_file: old_string was not found in WS/main.go. The lines closest to the first line of old_string are:\n" +
				"     3\tfunc main() {\n     8\tfunc other() {\nRead the file around these lines and copy the text exactly."},
		{"no match, nothing alike", map[string]any{"file_path": "main.go", "old_string": "zzzz qqqq", "new_string": "x"},
			"No line of the file resembles it"},
		{"several matches", map[string]any{"file_path": "main.go", "old_string": "fmt.Println(\"hi\")", "new_string": "x"},
			"=edit_file: old_string occurs 2 times in WS/main.go (at lines 4, 5); include more surrounding text to make it unique, or set replace_all to true"},
		{"missing file", map[string]any{"file_path": "nope.go", "old_string": "a", "new_string": "b"},
			"=edit_file: WS/nope.go does not exist; use write_file to create a file"},
		{"same strings", map[string]any{"file_path": "main.go", "old_string": "a", "new_string": "a"},
			`=edit_file: argument "new_string": is the same as old_string; nothing would change`},
		{"empty old_string", map[string]any{"file_path": "main.go", "old_string": "", "new_string": "b"},
			`=edit_file: argument "old_string": is empty; to create a file or replace all of it use write_file`},
		{"missing new_string", map[string]any{"file_path": "main.go", "old_string": "a"},
			`=edit_file: argument "new_string": is required`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.rel(e.fail("edit_file", tc.args))
			if want, exact := strings.CutPrefix(tc.want, "="); exact {
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			} else {
				mustContain(t, got, tc.want)
			}
		})
	}
	if e.read(p) != src {
		t.Fatal("a failed edit changed the file")
	}

	// One replacement, with its diff.
	got := e.ok("edit_file", map[string]any{"file_path": "main.go", "old_string": "\treturn\n", "new_string": "\treturn // done\n"})
	want := "Edited WS/main.go: replaced 1 occurrence of old_string.\n" +
		"--- WS/main.go\n+++ WS/main.go\n@@ -6,5 +6,5 @@\n }\n \n func other() {\n-\treturn\n+\treturn // done\n }"
	if diff := cmp.Diff(want, e.rel(got)); diff != "" {
		t.Errorf("edit (-want +got)\n%s", diff)
	}
	// replace_all.
	got = e.ok("edit_file", map[string]any{"file_path": "main.go", "old_string": "\"hi\"", "new_string": "\"bye\"", "replace_all": true})
	mustContain(t, got, "replaced all 2 occurrences", "-\tfmt.Println(\"hi\")\n-\tfmt.Println(\"hi\")\n+\tfmt.Println(\"bye\")\n+\tfmt.Println(\"bye\")")
	if want := strings.ReplaceAll(strings.Replace(src, "\treturn\n", "\treturn // done\n", 1), "\"hi\"", "\"bye\""); e.read(p) != want {
		t.Errorf("file after edits:\n%s", e.read(p))
	}
	if m := mode(t, p); m != 0o640 {
		t.Errorf("edited file mode %v, want 0640 kept", m)
	}
	noTempFiles(t, e.ws)

	// Binary files are not edited.
	e.write("bin", "a\x00b")
	mustContain(t, e.fail("edit_file", map[string]any{"file_path": "bin", "old_string": "a", "new_string": "c"}), "is a binary file")
}

func TestMatchLinesAndLooseMatch(t *testing.T) {
	content := "a x\nb\na x\n\na x\n"
	if got := matchLines(content, "a x", 2); got != "1, 3, …" {
		t.Errorf("matchLines capped = %q", got)
	}
	if got := matchLines(content, "a x\nb", 5); got != "1" {
		t.Errorf("matchLines multi-line = %q", got)
	}
	from, to, ok := looseMatch("x\n  foo(a,\n\tb)\ny\n", "foo(a, b)")
	if !ok || from != 2 || to != 3 {
		t.Errorf("looseMatch = %d-%d %v, want 2-3", from, to, ok)
	}
	if _, _, ok := looseMatch("foo", "   "); ok {
		t.Error("looseMatch of blank text matched")
	}
}
