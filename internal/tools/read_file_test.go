package tools

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lines(n int, f func(i int) string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(f(i) + "\n")
	}
	return b.String()
}

func TestReadFileFormatting(t *testing.T) {
	e := newEnv(t, withLimits(Limits{LineChars: 10}))
	e.write("ten.txt", lines(10, func(i int) string { return fmt.Sprintf("line %d", i) }))
	e.write("long.txt", "short\n"+strings.Repeat("x", 25)+"\n"+strings.Repeat("é", 12)+"\n")
	e.write("crlf.txt", "a\r\nb\r\n")
	e.write("bom.txt", "\xEF\xBB\xBFhello\n")
	e.write("latin1.txt", "caf\xe9\n")
	e.write("nonl.txt", "one\ntwo")
	e.write("empty.txt", "")
	e.write("tabs.go", "func f() {\n\treturn\n}\n")
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"whole", map[string]any{"file_path": "tabs.go"},
			"     1\tfunc f() {\n     2\t\treturn\n     3\t}\n[WS/tabs.go: lines 1-3 of 3 · UTF-8]"},
		{"offset and limit", map[string]any{"file_path": "ten.txt", "offset": 3, "limit": 2},
			"     3\tline 3\n     4\tline 4\n[WS/ten.txt: lines 3-4; more follow, continue with offset=5 · UTF-8]"},
		{"offset to the end", map[string]any{"file_path": "ten.txt", "offset": 9},
			"     9\tline 9\n    10\tline 10\n[WS/ten.txt: lines 9-10 of 10 · UTF-8]"},
		{"absolute path", map[string]any{"file_path": filepath.Join(e.ws, "nonl.txt")},
			"     1\tone\n     2\ttwo\n[WS/nonl.txt: lines 1-2 of 2 · UTF-8]"},
		{"long lines cut", map[string]any{"file_path": "long.txt"},
			"     1\tshort\n     2\txxxxxxxxxx … [line 2 cut: 25 bytes in full]\n     3\téééééééééé … [line 3 cut: 24 bytes in full]\n[WS/long.txt: lines 1-3 of 3 · UTF-8]"},
		{"crlf", map[string]any{"file_path": "crlf.txt"},
			"     1\ta\n     2\tb\n[WS/crlf.txt: lines 1-2 of 2 · UTF-8, CRLF line endings (shown without the CR)]"},
		{"bom", map[string]any{"file_path": "bom.txt"},
			"     1\thello\n[WS/bom.txt: lines 1-1 of 1 · UTF-8 with a byte order mark]"},
		{"not utf-8", map[string]any{"file_path": "latin1.txt"},
			"     1\tcaf\uFFFD\n[WS/latin1.txt: lines 1-1 of 1 · not valid UTF-8 (invalid bytes shown as \uFFFD)]"},
		{"empty", map[string]any{"file_path": "empty.txt"}, "[WS/empty.txt: empty file]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.rel(e.ok("read_file", tc.args))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestReadFileDefaultsAndCaps(t *testing.T) {
	e := newEnv(t)
	e.write("big.txt", lines(2500, func(i int) string { return fmt.Sprint(i) }))
	got := e.ok("read_file", map[string]any{"file_path": "big.txt"})
	if n := strings.Count(got, "\n"); n != 2000 {
		t.Errorf("showed %d lines, want the default 2000", n)
	}
	mustContain(t, got, "  2000\t2000\n", "lines 1-2000; more follow, continue with offset=2001")
	mustNotContain(t, got, "2001\t")
	e.write("wide.txt", strings.Repeat("y", 5000)+"\n")
	got = e.ok("read_file", map[string]any{"file_path": "wide.txt"})
	if !strings.Contains(got, "\t"+strings.Repeat("y", 2000)+" … [line 1 cut: 5000 bytes in full]") {
		t.Errorf("a 5000-character line is not cut at 2000:\n%.200s", got)
	}

	// The byte cap: only the first ReadBytes bytes are read.
	small := newEnv(t, withLimits(Limits{ReadBytes: 100}))
	small.write("big.txt", lines(100, func(i int) string { return fmt.Sprintf("%03d", i) })) // 400 bytes
	got = small.ok("read_file", map[string]any{"file_path": "big.txt"})
	mustContain(t, got, "    25\t025\n", "lines 1-25; stopped after the first 100 bytes of a 400-byte file")
	mustNotContain(t, got, "026")
	got = small.fail("read_file", map[string]any{"file_path": "big.txt", "offset": 50})
	mustContain(t, got, "offset 50 is beyond the first 25 lines")
}

func TestReadFileRefusals(t *testing.T) {
	e := newEnv(t)
	e.write("bin.dat", "abc\x00def")
	e.write("utf16.txt", "\xFF\xFEh\x00i\x00")
	e.write("short.txt", "1\n2\n")
	if err := os.Mkdir(filepath.Join(e.ws, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"file_path": "bin.dat"}, "is a binary file (it has a NUL byte in its first 8 KiB)"},
		{map[string]any{"file_path": "utf16.txt"}, "is UTF-16 encoded"},
		{map[string]any{"file_path": "short.txt", "offset": 5}, "offset 5 is past the end of " + e.ws + "/short.txt, which has 2 lines"},
		{map[string]any{"file_path": "missing.txt"}, "missing.txt: does not exist"},
		{map[string]any{"file_path": "dir"}, "is a directory (use list_directory or glob)"},
		{map[string]any{"file_path": "short.txt", "limit": -1}, `argument "limit": must be between 1 and`},
		{map[string]any{"file_path": "short.txt", "offset": "2"}, `argument "offset": want an integer, got a string`},
	} {
		mustContain(t, e.fail("read_file", tc.args), tc.want)
	}
}
