package runtime

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/security"
)

// threeCalls is a zero-latency model: three read_file calls, then an answer.
func threeCalls(req *llm.Request) llm.Response {
	if req.Messages[len(req.Messages)-1].Parts[0].Kind == llm.PartToolResult {
		return llm.Response{Text: "done"}
	}
	return llm.Response{ToolCalls: []llm.ToolCall{
		tc("a", "read_file", map[string]any{"file_path": "a.txt"}),
		tc("b", "read_file", map[string]any{"file_path": "a.txt"}),
		tc("c", "read_file", map[string]any{"file_path": "a.txt"}),
	}}
}

// BenchmarkTurnThreeToolCalls is a whole turn: two model calls and three
// read_file calls, each through the interceptor with its audit entries
// (durable commits, as in production).
func BenchmarkTurnThreeToolCalls(b *testing.B) {
	w := newWorld(b, `{"text":"x"}`, "[workspace]\nmode = \"guided\"\n")
	w.write("a.txt", "hello\n")
	w.useProvider(&funcProvider{f: threeCalls})
	ctx := context.Background()
	for b.Loop() {
		rec, err := w.rt.Create(ctx, CreateOptions{Workspace: w.ws, Mode: security.Guided})
		if err != nil {
			b.Fatal(err)
		}
		l, _ := w.rt.load(ctx, rec.ID)
		if stop := w.rt.runTurn(ctx, l, "t", "go"); stop != "end_turn" {
			b.Fatalf("stop %q", stop)
		}
	}
}

// BenchmarkToolCallOverhead is the runtime's cost per tool call on top of
// the tool: the same read_file run through the registry and interceptor
// minus nothing (compare with tools' own executor benchmark).
func BenchmarkToolCallOverhead(b *testing.B) {
	w := newWorld(b, `{"text":"x"}`, "[workspace]\nmode = \"guided\"\n")
	w.write("a.txt", "hello\n")
	ctx := context.Background()
	rec, err := w.rt.Create(ctx, CreateOptions{Workspace: w.ws, Mode: security.Guided})
	if err != nil {
		b.Fatal(err)
	}
	l, _ := w.rt.load(ctx, rec.ID)
	reg, _ := w.rt.registry(w.ws)
	call := tc("a", "read_file", map[string]any{"file_path": "a.txt"})
	for b.Loop() {
		if p := w.rt.runTool(ctx, l, reg, "t", call); p.ToolResult.IsError {
			b.Fatal(p.ToolResult.Content)
		}
	}
}

// TestIdleSessionMemory reports the heap held per idle loaded session.
func TestIdleSessionMemory(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "")
	ctx := context.Background()
	const n = 200
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		if _, err := w.rt.Create(ctx, CreateOptions{Workspace: w.ws, Title: fmt.Sprint("s", i)}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("heap per idle session: %d bytes", per)
	if per > 100<<10 {
		t.Errorf("an idle session holds %d bytes; the goal is under 100 KB", per)
	}
}
