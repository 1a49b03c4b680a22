package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testEnv is a CLI environment in a temp dir: $TMP/home is ASTRID_HOME,
// $TMP/etc/config.toml the system layer and $TMP/repo the working dir.
type testEnv struct {
	tmp  string
	vars map[string]string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	tmp := t.TempDir()
	for _, d := range []string{"home", "etc", "repo"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A test binary counts as built from the source: without the daemon
	// variable a command needing a daemon would build astridd. Tests that
	// want one serve it (serveTestDaemon) or point the variable at it.
	return &testEnv{tmp: tmp, vars: map[string]string{"ASTRID_HOME": filepath.Join(tmp, "home"), "HOME": tmp,
		DaemonExeVar: filepath.Join(tmp, "no-astridd")}}
}

func (te *testEnv) write(t *testing.T, rel, data string) {
	t.Helper()
	p := filepath.Join(te.tmp, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run executes the CLI and returns stdout, stderr and the exit code.
func (te *testEnv) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &Env{
		Stdin:            strings.NewReader(""),
		Stdout:           &stdout,
		Stderr:           &stderr,
		Getenv:           func(k string) string { return te.vars[k] },
		Dir:              filepath.Join(te.tmp, "repo"),
		systemConfigFile: filepath.Join(te.tmp, "etc", "config.toml"),
	}
	code := ExitCode(env, Run(context.Background(), env, args))
	return stdout.String(), stderr.String(), code
}

// golden compares got, with the temp dir replaced by $TMP, to
// testdata/name; -update rewrites the file.
func (te *testEnv) golden(t *testing.T, name, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, te.tmp, "$TMP")
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", name, diff)
	}
}

const (
	showSystem = `[logging]
level = "warn"
`
	showUser = `[model]
api_key = "sk-ant-api03-0123456789abcdefghij"

[budget]
session_max_usd = 50

[servers.github]
transport = "stdio"
command = "github-mcp-server"
args = ["stdio"]
env = { GITHUB_TOKEN = "${GH_TOKEN}" }
trusted = true
`
	showWorkspace = `[budget]
session_max_usd = 20

[workspace]
escape_policy = "deny"
never_allow = ["secrets/**"]
`
)

// secrets are values that must never appear in any output.
var secrets = []string{"0123456789abcdefghij", "ghp_supersecret", "ABCDEFsecretbot"}

func showEnv(t *testing.T) *testEnv {
	te := newTestEnv(t)
	te.write(t, "etc/config.toml", showSystem)
	te.write(t, "home/config.toml", showUser)
	te.write(t, "repo/.astrid/config.toml", showWorkspace)
	te.vars["GH_TOKEN"] = "ghp_supersecret"
	te.vars["TELEGRAM_BOT_TOKEN"] = "12345:ABCDEFsecretbot"
	return te
}

func TestConfigShow(t *testing.T) {
	te := showEnv(t)
	tests := []struct {
		golden string
		args   []string
	}{
		{"config_show.golden", []string{"config", "show"}},
		{"config_show_origin.golden", []string{"config", "show", "--origin"}},
		{"config_show_origin.golden", []string{"config", "show", "--origin", "--format", "toml"}},
		{"config_show_origin_json.golden", []string{"config", "show", "--origin", "--format", "json"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			stdout, stderr, code := te.run(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, s := range secrets {
				if strings.Contains(stdout, s) {
					t.Errorf("output contains the secret %q", s)
				}
			}
			te.golden(t, tt.golden, stdout)
		})
	}
}

// TestConfigShowLoadsBack checks that `config show` output is itself a
// valid configuration file that gives the same (masked) configuration.
func TestConfigShowLoadsBack(t *testing.T) {
	te := showEnv(t)
	first, stderr, code := te.run(t, "config", "show", "--format", "json")
	if code != 0 {
		t.Fatal(stderr)
	}
	toml, _, _ := te.run(t, "config", "show", "--origin")
	te2 := newTestEnv(t)
	te2.write(t, "home/config.toml", toml)
	second, stderr, code := te2.run(t, "config", "show", "--format", "json")
	if code != 0 {
		t.Fatalf("show output does not load: %s\n%s", stderr, toml)
	}
	// Masking is idempotent, so the two JSON documents are equal.
	var a, b any
	if err := json.Unmarshal([]byte(first), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(second), &b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("(-first +second):\n%s", diff)
	}
}

func TestConfigShowInvalid(t *testing.T) {
	te := newTestEnv(t)
	te.write(t, "home/config.toml", "[budget]\nsession_max_usd = -1\n")
	stdout, stderr, code := te.run(t, "config", "show")
	if code != 1 || stdout != "" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	want := "home/config.toml:2:1: budget.session_max_usd: -1.0 is out of range"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q lacks %q", stderr, want)
	}
}

func TestConfigValidate(t *testing.T) {
	te := newTestEnv(t)
	stdout, stderr, code := te.run(t, "config", "validate")
	if code != 0 || stdout != "ok\n" {
		t.Errorf("valid config: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	te.write(t, "etc/config.toml", "[gateway]\nlisten_addr = \"0.0.0.0:80\"\n")
	te.write(t, "home/config.toml", "[model]\nprovider = \"gemini\"\napi_url = \"https://${MISSING}/\"\n[servers.x]\ntransport = \"stdio\"\n")
	te.write(t, "other/.astrid/config.toml", "[budget]\nsession_max_usd = 1000\n[workspace]\nmode = \"autonomous\"\n[model]\napi_key = \"x\"\n")
	stdout, stderr, code = te.run(t, "config", "validate", "--workspace", "../other")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	te.golden(t, "config_validate_errors.golden", stdout)
	if !strings.Contains(stderr, "configuration has 7 problem(s)") {
		t.Errorf("stderr %q", stderr)
	}

	stdout, _, code = te.run(t, "config", "validate", "--workspace", "../other", "--format", "json")
	if code != 1 {
		t.Errorf("json: exit %d", code)
	}
	var out struct {
		OK     bool `json:"ok"`
		Errors []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Col     int    `json:"col"`
			Key     string `json:"key"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.OK || len(out.Errors) != 7 || out.Errors[0].Line != 2 || out.Errors[0].Key != "gateway.listen_addr" {
		t.Errorf("json output %+v", out)
	}
}

func TestConfigPaths(t *testing.T) {
	te := newTestEnv(t)
	te.write(t, "home/config.toml", "not valid toml [\n")
	stdout, stderr, code := te.run(t, "config", "paths")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Column widths depend on the temp dir's length; compare the cells.
	te.golden(t, "config_paths.golden", regexp.MustCompile(` {2,}`).ReplaceAllString(strings.ReplaceAll(stdout, te.tmp, "$TMP"), "  "))
	stdout, _, _ = te.run(t, "config", "paths", "--format", "json", "--workspace", "/elsewhere")
	te.golden(t, "config_paths_json.golden", stdout)
}

func TestDaemonCommandsWithoutDaemon(t *testing.T) {
	te := newTestEnv(t)
	if out, _, code := te.run(t, "daemon", "status"); code != 3 || !strings.Contains(out, "not running") {
		t.Errorf("status: %d %q", code, out)
	}
	if out, _, code := te.run(t, "--format", "json", "daemon", "status"); code != 3 || !strings.Contains(out, `"running": false`) {
		t.Errorf("json status: %d %q", code, out)
	}
	if out, _, code := te.run(t, "daemon", "stop"); code != 0 || !strings.Contains(out, "not running") {
		t.Errorf("stop: %d %q", code, out)
	}
	te.vars["ASTRID_DAEMON_EXE"] = filepath.Join(te.tmp, "no-astridd")
	if _, stderr, code := te.run(t, "daemon", "run"); code == 0 || !strings.Contains(stderr, "no-astridd") {
		t.Errorf("run without astridd: %d %q", code, stderr)
	}
}
