package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runIn is run with stdin.
func (te *testEnv) runIn(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &Env{
		Stdin:            strings.NewReader(stdin),
		Stdout:           &stdout,
		Stderr:           &stderr,
		Getenv:           func(k string) string { return te.vars[k] },
		Dir:              filepath.Join(te.tmp, "repo"),
		systemConfigFile: filepath.Join(te.tmp, "etc", "config.toml"),
	}
	code := ExitCode(env, Run(context.Background(), env, args))
	return stdout.String(), stderr.String(), code
}

func TestCapsuleCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example capsule")
	}
	te := newTestEnv(t)
	// Compile a copy of the example inside the module, so that it builds
	// against this checkout's sdk.
	src, err := os.MkdirTemp("testdata", "capsule-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(src) })
	src, _ = filepath.Abs(src)
	for _, f := range []string{"main.go", "Capsule.toml"} {
		b, err := os.ReadFile(filepath.Join("../../examples/notes", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := te.run(t, "capsule", "compile", src)
	if code != 0 || !strings.Contains(out, "blake3:") {
		t.Fatalf("compile: %d %s %s", code, out, errOut)
	}
	man, _ := os.ReadFile(filepath.Join(src, "Capsule.toml"))
	if !strings.Contains(string(man), `hash = "blake3:`) {
		t.Fatalf("hash not written:\n%s", man)
	}

	// Refusing the grant installs nothing.
	_, errOut, code = te.runIn(t, "n\n", "capsule", "install", src)
	if code != 1 || !strings.Contains(errOut, "write files under: notes") || !strings.Contains(errOut, "offer the agent the tool note_add") || !strings.Contains(errOut, "were not granted") {
		t.Fatalf("install, refused: %d %s", code, errOut)
	}
	if out, _, _ := te.run(t, "capsule", "list"); out != "no capsules installed\n" {
		t.Fatalf("list after refusal: %q", out)
	}
	out, errOut, code = te.runIn(t, "y\n", "capsule", "install", filepath.Join(src, "Capsule.toml"))
	if code != 0 || !strings.HasPrefix(out, "installed notes 0.1.0") {
		t.Fatalf("install: %d %s %s", code, out, errOut)
	}
	if _, errOut, code = te.runIn(t, "y\n", "capsule", "install", src); code != 1 || !strings.Contains(errOut, "already installed") {
		t.Errorf("second install: %d %s", code, errOut)
	}
	out, _, code = te.run(t, "capsule", "list")
	if code != 0 || !strings.Contains(out, "notes") || !strings.Contains(out, "note_add,note_list,note_read") {
		t.Errorf("list: %d %s", code, out)
	}
	out, _, code = te.run(t, "capsule", "info", "notes", "--format", "json")
	var v struct {
		Name     string
		Verified *bool
		Tools    []string
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Verified == nil || !*v.Verified || len(v.Tools) != 3 {
		t.Errorf("info: %d %s %v", code, out, err)
	}

	// A tampered module: info says so and exits 1.
	wasm := filepath.Join(te.vars["ASTRID_HOME"], "capsules", "notes", "notes.wasm")
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 0xff
	os.WriteFile(wasm, b, 0o600)
	out, errOut, code = te.run(t, "capsule", "info", "notes")
	if code != 1 || !strings.Contains(out, "MISMATCH") || !strings.Contains(errOut, "does not match the manifest") {
		t.Errorf("info of a tampered module: %d %s %s", code, out, errOut)
	}

	out, _, code = te.run(t, "capsule", "remove", "notes")
	if code != 0 || out != "removed notes\n" {
		t.Errorf("remove: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(te.vars["ASTRID_HOME"], "capsules", "notes")); !os.IsNotExist(err) {
		t.Errorf("files left: %v", err)
	}
	if _, errOut, code := te.run(t, "capsule", "info", "notes"); code != 1 || !strings.Contains(errOut, "not installed") {
		t.Errorf("info after remove: %d %s", code, errOut)
	}
}

func TestCapsuleInstallEnv(t *testing.T) {
	te := newTestEnv(t)
	te.write(t, "static/Capsule.toml", `[package]
name = "guide"
version = "1.0.0"

[env.TOKEN]
type = "secret"
request = "API token"

[env.REGION]
type = "string"
default = "eu"

[[context_file]]
path = "GUIDE.md"
`)
	te.write(t, "static/GUIDE.md", "Be kind.\n")
	src := filepath.Join(te.tmp, "static")
	// No value for the secret and nobody to ask: refused.
	if _, errOut, code := te.run(t, "capsule", "install", "--yes", src); code != 1 || !strings.Contains(errOut, "needs a value for TOKEN") {
		t.Fatalf("install without the secret: %d %s", code, errOut)
	}
	if _, errOut, code := te.run(t, "capsule", "install", "--yes", "--env", "NOPE=1", "--env", "TOKEN=x", src); code != 1 || !strings.Contains(errOut, "declares no [env.NOPE]") {
		t.Fatalf("unknown env: %d %s", code, errOut)
	}
	// Asked on stdin: grant; the region (asked first) takes its default;
	// then the token.
	if _, errOut, code := te.runIn(t, "y\n\ns3cret\n", "capsule", "install", src); code != 0 || !strings.Contains(errOut, "API token (TOKEN): ") {
		t.Fatalf("install: %d %s", code, errOut)
	}
	grant := filepath.Join(te.vars["ASTRID_HOME"], "capsules", "guide.grant.json")
	fi, err := os.Stat(grant)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("grant file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(grant)
	// The secret is sealed at rest: not in the grant in clear, nor
	// anywhere else under $ASTRID_HOME.
	if !strings.Contains(string(b), `"TOKEN": "v1:`) || !strings.Contains(string(b), `"REGION": "eu"`) {
		t.Errorf("grant: %s", b)
	}
	err = filepath.WalkDir(te.vars["ASTRID_HOME"], func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil && bytes.Contains(data, []byte("s3cret")) {
			t.Errorf("%s holds the secret in clear", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _, code := te.run(t, "capsule", "info", "guide")
	if code != 0 || strings.Contains(out, "s3cret") {
		t.Errorf("info shows the secret or failed: %d %s", code, out)
	}
	out, _, _ = te.run(t, "capsule", "info", "guide", "--format", "json")
	if !strings.Contains(out, `"TOKEN": "(secret)"`) || !strings.Contains(out, `"REGION": "eu"`) {
		t.Errorf("info json: %s", out)
	}
}

func TestCapsuleInstallWorkspace(t *testing.T) {
	te := newTestEnv(t)
	for _, name := range []string{"guide", "local"} {
		te.write(t, name+"/Capsule.toml", "[package]\nname = \""+name+"\"\nversion = \"1.0.0\"\n\n[[context_file]]\npath = \"GUIDE.md\"\n")
		te.write(t, name+"/GUIDE.md", "Be kind.\n")
	}
	if _, errOut, code := te.run(t, "capsule", "install", "--yes", filepath.Join(te.tmp, "guide")); code != 0 {
		t.Fatalf("user install: %s", errOut)
	}
	out, errOut, code := te.run(t, "capsule", "install", "--yes", "--workspace", filepath.Join(te.tmp, "local"))
	if code != 0 || !strings.Contains(out, "workspace layer") {
		t.Fatalf("workspace install: %d %s %s", code, out, errOut)
	}
	// The files are in the workspace; the grant is not (the repository
	// cannot forge one).
	repo := filepath.Join(te.tmp, "repo")
	if _, err := os.Stat(filepath.Join(repo, ".astrid", "capsules", "local", "GUIDE.md")); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".grant.json") {
			t.Errorf("grant inside the workspace: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _, code = te.run(t, "capsule", "list")
	if code != 0 || !regexpMatch(`guide\s+user`, out) || !regexpMatch(`local\s+workspace`, out) {
		t.Errorf("list: %s", out)
	}
	out, _, code = te.run(t, "capsule", "info", "local", "--format", "json")
	if code != 0 || !strings.Contains(out, `"layer": "workspace"`) || !strings.Contains(out, `"id": "local.ws-`) {
		t.Errorf("info: %d %s", code, out)
	}
	// A workspace capsule may not name file roots outside the workspace.
	te.write(t, "wide/Capsule.toml", "[package]\nname = \"wide\"\nversion = \"1.0.0\"\n\n[capabilities]\nfs_read = [\"/etc\"]\n")
	if _, errOut, code := te.run(t, "capsule", "install", "--yes", "--workspace", filepath.Join(te.tmp, "wide")); code != 1 || !strings.Contains(errOut, "only name file roots inside its workspace") {
		t.Errorf("wide workspace capsule: %d %s", code, errOut)
	}
	if _, errOut, code := te.run(t, "capsule", "remove", "local"); code != 0 {
		t.Fatalf("remove: %s", errOut)
	}
	if _, err := os.Stat(filepath.Join(repo, ".astrid", "capsules", "local")); !os.IsNotExist(err) {
		t.Errorf("workspace capsule left behind: %v", err)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
