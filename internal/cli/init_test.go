package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInit(t *testing.T) {
	te := newTestEnv(t)
	path := filepath.Join(te.tmp, "repo", ".astrid", "config.toml")
	stdout, stderr, code := te.run(t, "init")
	if code != 0 || stdout != "created "+path+"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "can only TIGHTEN") || !strings.Contains(string(data), "# session_max_usd = 100.0") {
		t.Errorf("template:\n%s", data)
	}
	// The written file validates as the workspace layer.
	if stdout, stderr, code := te.run(t, "config", "validate"); code != 0 || stdout != "ok\n" {
		t.Errorf("validate after init: exit %d, %q %q", code, stdout, stderr)
	}

	// No overwrite without --force, even of an edited file.
	if err := os.WriteFile(path, []byte("[budget]\nsession_max_usd = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = te.run(t, "init")
	if code != 1 || !strings.Contains(stderr, "already exists (use --force") {
		t.Errorf("second init: exit %d, stderr %q", code, stderr)
	}
	if got, _ := os.ReadFile(path); string(got) != "[budget]\nsession_max_usd = 1\n" {
		t.Errorf("file overwritten: %q", got)
	}
	if _, _, code = te.run(t, "init", "--force"); code != 0 {
		t.Errorf("init --force: exit %d", code)
	}
	if got, _ := os.ReadFile(path); string(got) != string(data) {
		t.Error("init --force did not rewrite the template")
	}
}

func TestInitDirAndSymlink(t *testing.T) {
	te := newTestEnv(t)
	// A relative DIR is relative to the working directory.
	stdout, stderr, code := te.run(t, "init", "sub/project", "--format", "json")
	want := filepath.Join(te.tmp, "repo", "sub", "project", ".astrid", "config.toml")
	if code != 0 || !strings.Contains(stdout, `"path": "`+want+`"`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A planted symlink is refused without --force and replaced, not
	// written through, with it.
	victim := filepath.Join(te.tmp, "bashrc")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(te.tmp, "repo", ".astrid", "config.toml")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if _, _, code := te.run(t, "init"); code == 0 {
		t.Error("init wrote over a symlink")
	}
	if _, stderr, code := te.run(t, "init", "--force"); code != 0 {
		t.Fatalf("init --force: %s", stderr)
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep me" {
		t.Errorf("symlink target overwritten: %q", got)
	}
	if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("config is not a regular file: %v %v", fi, err)
	}
}
