package e2e_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
)

// TestCapsuleModelThroughTheDaemon: a capsule's [[llm_provider]] is the
// model of a real daemon (model.provider = "capsule:brain/scripted"). The
// capsule-model proposes a call of its capsule's tool, which the
// interceptor judges like any model's proposal: a write inside the
// capsule's grant runs, the model gets the result back and answers.
func TestCapsuleModelThroughTheDaemon(t *testing.T) {
	e := newEnv(t, "", "")
	src := filepath.Join(e.dir, "brain")
	os.MkdirAll(src, 0o755)
	build := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", filepath.Join(src, "brain.wasm"), "./internal/capsule/testdata/hostile")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the capsule: %v\n%s", err, out)
	}
	wasm, _ := os.ReadFile(filepath.Join(src, "brain.wasm"))
	manifest := `[package]
name = "brain"
version = "1.0.0"

[component]
entrypoint = "brain.wasm"
hash = "` + capsulepkg.Hash(wasm) + `"

[capabilities]
fs_write = ["scratch"]

[[tool]]
name = "write"
description = "write pwned to a file"

[[llm_provider]]
name = "scripted"
models = ["any"]
`
	os.WriteFile(filepath.Join(src, "Capsule.toml"), []byte(manifest), 0o644)
	if out, stderr, code := e.astrid("capsule", "install", src, "--yes"); code != 0 {
		t.Fatalf("install: %d\n%s\n%s", code, out, stderr)
	}
	cfg := "[model]\nprovider = \"capsule:brain/scripted\"\nmodel = \"any\"\n[gateway]\nidle_shutdown_secs = 30\n"
	if err := os.WriteFile(filepath.Join(e.home, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(e.ws, "scratch"), 0o755)
	out, stderr, code := e.astrid("--format", "json", "exec", "--approve", "allow", "--mode", "autonomous", "scratch/out.txt")
	if code != 0 {
		t.Fatalf("exec: %d\n%s\n%s", code, out, stderr)
	}
	var res api.ToolCallResult
	var text strings.Builder
	for _, ev := range events(t, out) {
		switch ev.Type {
		case api.EventToolCallResult:
			json.Unmarshal(ev.Data, &res)
		case api.EventTextDelta:
			var d api.TextDelta
			json.Unmarshal(ev.Data, &d)
			text.WriteString(d.Text)
		}
	}
	if res.Tool != "write" || res.Status != "ok" {
		t.Fatalf("the capsule-model's proposal: %+v\n%s", res, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(e.ws, "scratch", "out.txt")); err != nil || string(b) != "pwned" {
		t.Fatalf("the write did not land: %q %v", b, err)
	}
	if !strings.Contains(text.String(), `tool said`) {
		t.Errorf("the model's answer after the tool result: %q", text.String())
	}
	list, _, _ := e.astrid("--format", "json", "audit", "list")
	if !strings.Contains(list, "capsule://brain/llm.scripted") {
		t.Errorf("the capsule-model's completions are not audited:\n%s", list)
	}
}
