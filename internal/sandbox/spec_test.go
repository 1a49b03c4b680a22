package sandbox

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func validSpec() *Spec {
	return &Spec{
		Version: SpecVersion, Path: "sh", Args: []string{"sh", "-c", "true"},
		Env: []string{"PATH=/usr/bin"}, Dir: "/work", Enforce: true, RestrictNetwork: true,
		ReadOnly: []string{"/usr"}, ReadWrite: []string{"/work"}, Protected: []string{"/home/u/.astrid"},
		ConnectTCP: []uint16{443}, Limits: SpecLimits(DefaultLimits()),
	}
}

func TestSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(s *Spec)
		want string // substring of the error; empty means valid
	}{
		{"valid", func(s *Spec) {}, ""},
		{"version", func(s *Spec) { s.Version = 2 }, "version"},
		{"empty path", func(s *Spec) { s.Path = "" }, "empty program"},
		{"no args", func(s *Spec) { s.Args = nil }, "arguments"},
		{"NUL arg", func(s *Spec) { s.Args = []string{"a\x00b"} }, "NUL"},
		{"env without =", func(s *Spec) { s.Env = []string{"PATH"} }, "KEY=value"},
		{"env =x", func(s *Spec) { s.Env = []string{"=x"} }, "KEY=value"},
		{"relative dir", func(s *Spec) { s.Dir = "work" }, "absolute"},
		{"unclean rule", func(s *Spec) { s.ReadOnly = []string{"/usr/../etc"} }, "clean"},
		{"relative rule", func(s *Spec) { s.ReadWrite = []string{"work"} }, "absolute"},
		{"protected itself", func(s *Spec) { s.ReadOnly = []string{"/home/u/.astrid"} }, "protected"},
		{"inside protected", func(s *Spec) { s.ReadWrite = []string{"/home/u/.astrid/keys"} }, "protected"},
		{"contains protected", func(s *Spec) { s.ReadOnly = []string{"/home"} }, "protected"},
		{"root", func(s *Spec) { s.ReadOnly = []string{"/"} }, "protected"},
		{"sibling prefix is fine", func(s *Spec) { s.ReadOnly = []string{"/home/u/.astrid2"} }, ""},
		{"net without enforce", func(s *Spec) { s.Enforce = false; s.ReadOnly, s.ReadWrite = nil, nil }, "network rules need"},
		{"ports without net", func(s *Spec) { s.RestrictNetwork = false }, "ports granted"},
		{"too many ports", func(s *Spec) { s.ConnectTCP = make([]uint16, maxPorts+1) }, "ports"},
		{"too many paths", func(s *Spec) { s.ReadOnly = make([]string, maxPaths+1) }, "paths"},
		{"zero limit", func(s *Spec) { s.Limits.Processes = 0 }, "limit"},
	} {
		s := validSpec()
		tc.mod(s)
		err := s.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v; want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestSpecRoundTrip(t *testing.T) {
	s := validSpec()
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSpec(enc)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(s, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	for _, bad := range []string{enc + " x", enc + "{}", strings.Replace(enc, `"version"`, `"Version2"`, 1), "", "null", "[]"} {
		if _, err := DecodeSpec(bad); err == nil {
			t.Errorf("DecodeSpec(%.60q...) accepted", bad)
		}
	}
}

// FuzzDecodeSpec: the decoder never panics, and what it accepts is valid
// and encodes back to an equivalent spec.
func FuzzDecodeSpec(f *testing.F) {
	enc, _ := validSpec().Encode()
	f.Add(enc)
	f.Add(`{"version":1}`)
	f.Add(`{"version":1,"path":"x","args":["x"],"dir":"/","limits":{"cpu_seconds":1,"address_space":1,"file_size":1,"open_files":1,"processes":1}}`)
	f.Fuzz(func(t *testing.T, data string) {
		s, err := DecodeSpec(data)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted an invalid spec: %v", err)
		}
		enc, err := s.Encode()
		if err != nil {
			t.Fatalf("cannot re-encode an accepted spec: %v", err)
		}
		s2, err := DecodeSpec(enc)
		if err != nil {
			t.Fatalf("re-encoded spec rejected: %v", err)
		}
		a, _ := json.Marshal(s)
		b, _ := json.Marshal(s2)
		if string(a) != string(b) {
			t.Fatalf("round trip changed the spec:\n%s\n%s", a, b)
		}
	})
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		p, dir string
		want   bool
	}{
		{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/a", "/a/b", false},
		{"/anything", "/", true}, {"/", "/", true},
	} {
		if got := within(tc.p, tc.dir); got != tc.want {
			t.Errorf("within(%q, %q) = %v", tc.p, tc.dir, got)
		}
	}
	var pe *ProtectedPathError
	if err := overlapsProtected("/home", []string{"/home/u/.astrid"}); !errors.As(err, &pe) || pe.Protected != "/home/u/.astrid" {
		t.Errorf("overlapsProtected: %v", err)
	}
}

func TestDedupEnv(t *testing.T) {
	got := dedupEnv([]string{"A=1", "B=2", "A=3", "C=", "B=4"})
	if d := cmp.Diff([]string{"A=3", "C=", "B=4"}, got); d != "" {
		t.Errorf("dedupEnv (-want +got):\n%s", d)
	}
}

func TestResolveNearest(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(dir, "link")
	os.Symlink(real, link)
	realDir, _ := filepath.EvalSymlinks(real)
	if got := resolveNearest(filepath.Join(link, "not", "yet")); got != filepath.Join(realDir, "not", "yet") {
		t.Errorf("resolveNearest = %q", got)
	}
}

func TestSBPL(t *testing.T) {
	s := validSpec()
	s.ReadOnly = []string{`/opt/we"ird\path`}
	got := SBPL(s)
	for _, want := range []string{
		"(deny default)",
		`(allow file-read* (subpath "/opt/we\"ird\\path"))`,
		`(allow file-read* file-write* (subpath "/work"))`,
		`(allow network-outbound (remote tcp "*:443"))`,
		`(deny file-read* file-write* (subpath "/home/u/.astrid"))`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("profile lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "(allow network*)") {
		t.Error("restricted network allowed wholesale")
	}
	// The protected deny comes after every allow: in SBPL the last match wins.
	if strings.LastIndex(got, "(allow") > strings.Index(got, "(deny file-read*") {
		t.Error("an allow follows the protected deny")
	}
	s.RestrictNetwork, s.ConnectTCP = false, nil
	if !strings.Contains(SBPL(s), "(allow network*)") {
		t.Error("unrestricted network not allowed")
	}
}

func TestDefaultShellProfile(t *testing.T) {
	p := DefaultShellProfile("/work/ws", "/tmp/astrid-sess", []string{"/usr/local/go", "/does/not/exist"})
	if p.Dir != "/work/ws" || p.TempDir != "/tmp/astrid-sess" || p.Network.Unrestricted || len(p.Network.ConnectTCP) != 0 {
		t.Errorf("profile: %+v", p)
	}
	for _, ro := range p.ReadOnly {
		if ro == "/does/not/exist" || ro == "/proc" || strings.HasPrefix(ro, os.Getenv("HOME")+"/") {
			t.Errorf("read-only %q should not be granted", ro)
		}
	}
	if d := cmp.Diff([]string{"/work/ws"}, p.ReadWrite[:1]); d != "" {
		t.Errorf("read-write: %s", d)
	}
	env := strings.Join(p.Env, "\n")
	if !strings.Contains(env, "HOME=/tmp/astrid-sess") || (isDir("/usr/local/go/bin") && !strings.Contains(env, "PATH=/usr/local/go/bin:")) {
		t.Errorf("env: %v", p.Env)
	}
}
