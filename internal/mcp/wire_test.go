package mcp

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestLineReader: lines pass whole and trimmed; a line over the limit or
// not JSON is a violation reported once, and nothing of it passes.
func TestLineReader(t *testing.T) {
	for _, tc := range []struct {
		in, want, violation string
	}{
		{"{\"a\":1}\n\n  [2]  \r\n", "{\"a\":1}\n[2]\n", ""},
		{"{\"a\":1}", "{\"a\":1}\n", ""},
		{"{\"a\":1}\nnot json\n{\"b\":2}\n", "{\"a\":1}\n", "not JSON"},
		{"\"" + strings.Repeat("x", 100) + "\"\n", "", "longer than 64"},
	} {
		var got []string
		lr := newLineReader(strings.NewReader(tc.in), 64, func(r string) { got = append(got, r) }, make(chan struct{}))
		out, _ := io.ReadAll(lr)
		if string(out) != tc.want {
			t.Errorf("%q: read %q, want %q", tc.in, out, tc.want)
		}
		if tc.violation == "" && len(got) != 0 || tc.violation != "" && (len(got) != 1 || !strings.Contains(got[0], tc.violation)) {
			t.Errorf("%q: violations %q, want %q", tc.in, got, tc.violation)
		}
	}
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("{\"jsonrpc\":\"2.0\"}\n"))
	f.Add([]byte("x\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		lr := newLineReader(strings.NewReader(string(in)), 256, func(string) {}, make(chan struct{}))
		out, _ := io.ReadAll(lr)
		for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if line != "" && (len(line) > 256 || !strings.HasPrefix(line, strings.TrimSpace(line))) {
				t.Fatalf("passed %q", line)
			}
		}
	})
}

// TestLimiter: n per minute pass, the rest are refused, and n*flood
// requests in a minute is a flood.
func TestLimiter(t *testing.T) {
	l := newLimiter(2, 3)
	now := l.now()
	l.now = func() time.Time { return now }
	var oks, floods int
	for i := 0; i < 6; i++ {
		ok, flood := l.take()
		if ok {
			oks++
		}
		if flood {
			floods++
		}
	}
	if oks != 2 || floods != 1 {
		t.Errorf("oks %d floods %d, want 2 and 1", oks, floods)
	}
	now = now.Add(time.Minute)
	if ok, _ := l.take(); !ok {
		t.Error("not allowed again after a minute")
	}
}
