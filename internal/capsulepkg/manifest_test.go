package capsulepkg

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseManifestFull(t *testing.T) {
	data, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest("full.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Package.Name != "notes" || m.Component.Entrypoint != "notes.wasm" || len(m.Tools) != 2 {
		t.Fatalf("decoded %+v", m)
	}
	if got, want := string(m.Tools[0].Schema), `{"properties":{"text":{"type":"string"}},"required":["text"],"type":"object"}`; got != want {
		t.Errorf("schema = %s, want %s", got, want)
	}
	if got := string(m.Tools[1].Schema); got != `{"type":"object"}` {
		t.Errorf("string schema = %s", got)
	}
	if diff := cmp.Diff([]string{"api.example.com", "example.org:8443"}, m.Capabilities.Net); diff != "" {
		t.Error(diff)
	}
	if m.Env["API_TOKEN"].Type != "secret" || m.Cron[0].Schedule != "*/5 * * * *" || m.Dependencies["base"] != "^1.0" {
		t.Errorf("decoded %+v", m)
	}
}

const minimal = `[package]
name = "x"
version = "1.0.0"
`

func TestParseManifestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // each line of the error, in order
	}{
		{"unknown key", minimal + "colour = 1\n", []string{"C.toml:4:1: package.colour: unknown key"}},
		{"unknown table", minimal + "[extra]\na = 1\n", []string{"C.toml:4:2: extra: unknown key"}},
		{"wrong type", "[package]\nname = 5\n", []string{"C.toml:2:8: package.name: "}},
		{"syntax", "[package\n", []string{"C.toml:1:"}},
		{"duplicate key", minimal + "name = \"y\"\n", []string{"C.toml:4:1: "}},
		{"missing package", "[capabilities]\nkv = true\n", []string{"C.toml: package.name: is required", "C.toml: package.version: is required"}},
		{"bad name", "[package]\nname = \"Bad Name\"\nversion = \"1.0.0\"\n", []string{`C.toml:2:1: package.name: "Bad Name": want`}},
		{"bad version", "[package]\nname = \"x\"\nversion = \"one\"\n", []string{`C.toml:3:1: package.version: "one" is not a version`}},
		{"entrypoint escapes", minimal + "[component]\nentrypoint = \"../x.wasm\"\n", []string{`C.toml:5:1: component.entrypoint: "../x.wasm": want a relative path`}},
		{"bad hash", minimal + "[component]\nentrypoint = \"x.wasm\"\nhash = \"sha256:00\"\n", []string{`C.toml:6:1: component.hash: want "blake3:"`}},
		{"glob host", minimal + "[capabilities]\nnet = [\"*.example.com\"]\n", []string{`C.toml:5:1: capabilities.net: entry 1: host "*.example.com"`}},
		{"http without net", minimal + "[capabilities]\nhttp = true\n", []string{`C.toml:5:1: capabilities.http: http needs`}},
		{"dotdot root", minimal + "[capabilities]\nfs_write = [\"../../outside\"]\n", []string{`C.toml:5:1: capabilities.fs_write: entry 1: "../../outside" contains ..`}},
		{"bad topic", minimal + "[capabilities]\nipc = [\"a b\"]\n", []string{`C.toml:5:1: capabilities.ipc: topic "a b"`}},
		{"secret default", minimal + "[env.TOKEN]\ntype = \"secret\"\ndefault = \"x\"\n", []string{`C.toml:6:1: env.TOKEN.default: a secret has no default`}},
		{"env type", minimal + "[env.TOKEN]\ntype = \"int\"\n", []string{`C.toml:5:1: env.TOKEN.type: "int": want string or secret`}},
		{"tool without component", minimal + "[[tool]]\nname = \"a\"\ndescription = \"d\"\n", []string{`C.toml:4:3: tool: tools need a [component]`}},
		{"second tool bad", minimal + "[component]\nentrypoint = \"x.wasm\"\n[[tool]]\nname = \"a\"\ndescription = \"d\"\n[[tool]]\nname = \"a\"\ndescription = \"d\"\ninput_schema = '{\"type\":\"string\"}'\n",
			[]string{`C.toml:10:1: tool.1.name: tool "a" is declared twice`, `C.toml:12:1: tool.1.input_schema: type must be "object"`}},
		{"schema not json", minimal + "[component]\nentrypoint = \"x.wasm\"\n[[tool]]\nname = \"a\"\ndescription = \"d\"\ninput_schema = 'nope'\n", []string{`C.toml:9:1: tool.0.input_schema: is not a JSON object`}},
		{"cron schedule", minimal + "[component]\nentrypoint = \"x.wasm\"\n[[cron]]\nname = \"c\"\nschedule = \"every minute\"\n", []string{`C.toml:8:1: cron.0.schedule: "every minute" is not a valid cron expression`}},
		{"interceptor event", minimal + "[component]\nentrypoint = \"x.wasm\"\n[[interceptor]]\nevent = \"Whenever\"\n", []string{`C.toml:7:1: interceptor.0.event: "Whenever": want one of`}},
		{"uplink without capability", minimal + "[[uplink]]\nname = \"u\"\n", []string{`C.toml:4:3: uplink: [[uplink]] needs capabilities.uplink`}},
		{"context file escapes", minimal + "[[context_file]]\npath = \"/etc/passwd\"\n", []string{`C.toml:5:1: context_file.0.path: "/etc/passwd": want a relative path`}},
		{"too many", minimal + "[capabilities]\nipc = [" + strings.Repeat(`"a",`, maxList+1) + "]\n", []string{`C.toml:5:1: capabilities.ipc: has 257 entries`}},
		{"not utf8", "[package]\nname = \"\xff\"\n", []string{"C.toml: manifest is not valid UTF-8"}},
		{"too large", strings.Repeat("#", MaxManifestSize+1), []string{"C.toml: manifest is larger than"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest("C.toml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	full, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "[[tool]]\nname = \"a\"\n[[tool]]\n"))
	f.Add([]byte("[package]\nname = 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest("f.toml", data)
		if err != nil {
			if m != nil {
				t.Fatal("manifest returned with an error")
			}
			if _, ok := err.(*ManifestError); !ok {
				t.Fatalf("error %T is not a *ManifestError", err)
			}
			return
		}
		// An accepted manifest keeps its invariants.
		if !nameRE.MatchString(m.Package.Name) {
			t.Fatalf("accepted name %q", m.Package.Name)
		}
		if c := m.Component; c != nil && !relPath(c.Entrypoint) {
			t.Fatalf("accepted entrypoint %q", c.Entrypoint)
		}
		for _, tl := range m.Tools {
			if !toolRE.MatchString(tl.Name) || len(tl.Schema) == 0 {
				t.Fatalf("accepted tool %+v", tl)
			}
		}
		for _, r := range append(m.Capabilities.FSRead, m.Capabilities.FSWrite...) {
			if strings.Contains("/"+r+"/", "/../") {
				t.Fatalf("accepted root %q", r)
			}
		}
	})
}

func TestSetManifestHash(t *testing.T) {
	h := "blake3:" + strings.Repeat("ab", 32)
	for _, tc := range []struct{ name, in string }{
		{"replace", minimal + "[component]\nentrypoint = \"x.wasm\"\nhash = \"\"\n[capabilities]\nkv = true\n"},
		{"replace old", minimal + "[component]\nhash = \"blake3:" + strings.Repeat("00", 32) + "\"\nentrypoint = \"x.wasm\"\n"},
		{"insert", minimal + "[component]\nentrypoint = \"x.wasm\" # the module\n[capabilities]\nkv = true\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := SetManifestHash("C.toml", []byte(tc.in), h)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseManifest("C.toml", out)
			if err != nil || m.Component.Hash != h || m.Component.Entrypoint != "x.wasm" {
				t.Fatalf("%s\n%v", out, err)
			}
			if strings.Count(string(out), "\n") < strings.Count(tc.in, "\n") {
				t.Errorf("lines lost:\n%s", out)
			}
		})
	}
	if _, err := SetManifestHash("C.toml", []byte(minimal), h); err == nil {
		t.Error("set a hash without a [component]")
	}
	if _, err := SetManifestHash("C.toml", []byte(minimal+"[component]\nentrypoint = \"x.wasm\"\n"), "blake3:xyz"); err == nil {
		t.Error("accepted a bad hash")
	}
	// A hash inline with other keys cannot be replaced safely.
	if _, err := SetManifestHash("C.toml", []byte(minimal+"component = { entrypoint = \"x.wasm\", hash = \"\" }\n"), h); err == nil {
		t.Error("rewrote an inline table")
	}
}
