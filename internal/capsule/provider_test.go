package capsule

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/sdk"
)

const brainManifest = `[package]
name = "brain"
version = "1.0.0"

[component]
entrypoint = "brain.wasm"
hash = "{{hash}}"

[capabilities]
fs_write = ["scratch"]

[[tool]]
name = "write"
description = "write pwned to a file"

[[llm_provider]]
name = "scripted"
models = ["any"]
`

// turn runs one model turn the way the runtime does: the provider
// proposes, each proposed tool call goes through the registry and the
// interceptor in the user's session, and the results go back to the
// model.
func turn(t *testing.T, e *env, p llm.Provider, user string) (first, second *llm.Response, results []string) {
	t.Helper()
	ctx := context.Background()
	msgs := []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: user}}}}
	first, err := llm.Collect(p.Stream(ctx, &llm.Request{System: "be careful", Messages: msgs}))
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, first.Message())
	var parts []llm.Part
	for _, tc := range first.ToolCalls {
		res := e.run(tc.Name, json.RawMessage(tc.Arguments))
		results = append(results, res.Text)
		parts = append(parts, llm.Part{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: tc.ID, Content: res.Text, IsError: res.IsError}})
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Parts: parts})
	second, err = llm.Collect(p.Stream(ctx, &llm.Request{Messages: msgs}))
	if err != nil {
		t.Fatal(err)
	}
	return first, second, results
}

func TestCapsuleModelProvider(t *testing.T) {
	e := newEnv(t, envOptions{})
	seq := e.lastSeq()
	e.install(e.capsuleDir("brain", brainManifest, hostileWasm), capsulepkg.InstallOptions{})
	p, err := ParseProvider("capsule:brain/scripted", "any")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := llm.Collect(p.Stream(context.Background(), &llm.Request{})); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("before Attach: %v", err)
	}
	p.Attach(e.m)
	if err := os.MkdirAll(filepath.Join(e.ws, "scratch"), 0o755); err != nil {
		t.Fatal(err)
	}

	// The model proposes a write the capsule's grant allows: it runs.
	first, second, results := turn(t, e, p, "scratch/out.txt")
	if len(first.ToolCalls) != 1 || first.ToolCalls[0].Name != "write" || first.StopReason != llm.StopToolUse || first.Text != "writing" {
		t.Fatalf("first turn: %+v", first)
	}
	if first.Usage.InputTokens != 5 || first.Usage.OutputTokens != 2 {
		t.Errorf("usage: %+v", first.Usage)
	}
	if b, err := os.ReadFile(filepath.Join(e.ws, "scratch", "out.txt")); err != nil || string(b) != "pwned" {
		t.Fatalf("the proposed write did not run: %q %v (results %v)", b, err, results)
	}
	if second.Text != `tool said "wrote" (error false)` || second.StopReason != llm.StopEndTurn {
		t.Errorf("second turn: %+v", second)
	}

	// The model proposes writing the runtime's keys: it is only a
	// proposal; the capsule runtime refuses it and the model is told.
	keys := filepath.Join(e.home, "keys", "pwned")
	_, second, results = turn(t, e, p, keys)
	if _, err := os.Stat(keys); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the model's proposal wrote %s", keys)
	}
	if !strings.Contains(second.Text, "(error true)") || !strings.Contains(results[0], "not under a root") {
		t.Errorf("refused proposal: %q %v", second.Text, results)
	}
	if e.denied(seq, keys, RuleGrant) == nil {
		t.Error("the refused write is not audited")
	}
	// Every completion is an audited capsule action.
	n := 0
	for _, en := range e.entries(seq) {
		if en.Type == audit.TypeDecision && en.Action.Resource == "capsule://brain/llm.scripted" && en.Decision == audit.Allowed {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d audited completions, want 4", n)
	}

	// A provider the capsule does not declare, and an unloaded capsule,
	// fail with clear errors.
	other, _ := ParseProvider("capsule:brain/other", "any")
	other.Attach(e.m)
	if _, err := llm.Collect(other.Stream(context.Background(), &llm.Request{})); err == nil || !strings.Contains(err.Error(), `declares no [[llm_provider]] "other"`) {
		t.Errorf("undeclared provider: %v", err)
	}
	if err := e.m.Unload(context.Background(), "brain"); err != nil {
		t.Fatal(err)
	}
	if _, err := llm.Collect(p.Stream(context.Background(), &llm.Request{})); err == nil || !strings.Contains(err.Error(), "capsule brain is not loaded") {
		t.Errorf("unloaded: %v", err)
	}
}

func TestParseProvider(t *testing.T) {
	for _, bad := range []string{"capsule:", "capsule:brain", "capsule:/x", "capsule:brain/", "anthropic", "capsule:a/b/c", "capsule:a*/b"} {
		if _, err := ParseProvider(bad, ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	p, err := ParseProvider("capsule:brain/scripted", "m")
	if err != nil || p.Name() != "capsule:brain/scripted" || p.Model() != "m" {
		t.Errorf("%v %v", p, err)
	}
}

func TestProviderChecksCompletions(t *testing.T) {
	p, _ := ParseProvider("capsule:brain/scripted", "m")
	obj := json.RawMessage(`{}`)
	for name, r := range map[string]sdk.CompletionResponse{
		"no name":       {ToolCalls: []sdk.CompletionToolCall{{Arguments: obj}}},
		"array args":    {ToolCalls: []sdk.CompletionToolCall{{Name: "x", Arguments: json.RawMessage(`[1]`)}}},
		"no args":       {ToolCalls: []sdk.CompletionToolCall{{Name: "x"}}},
		"duplicate ids": {ToolCalls: []sdk.CompletionToolCall{{ID: "a", Name: "x", Arguments: obj}, {ID: "a", Name: "y", Arguments: obj}}},
		"negative":      {InputTokens: -1},
		"stop reason":   {StopReason: "because"},
		"too many":      {ToolCalls: make([]sdk.CompletionToolCall, maxToolCalls+1)},
	} {
		var le *llm.Error
		if err := p.check(&r); !errors.As(err, &le) {
			t.Errorf("%s: %v", name, err)
		}
	}
	r := sdk.CompletionResponse{ToolCalls: []sdk.CompletionToolCall{{Name: "x", Arguments: obj}, {Name: "y", Arguments: obj}}}
	if err := p.check(&r); err != nil || r.ToolCalls[0].ID != "call_1" || r.ToolCalls[1].ID != "call_2" || r.StopReason != "tool_use" {
		t.Errorf("filled in: %+v %v", r, err)
	}
}
