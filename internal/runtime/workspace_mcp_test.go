package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/mcp/mcptest"
)

// TestWorkspaceServerAlwaysAsks: an MCP server a workspace's own
// configuration adds is untrusted. It does not start by itself, and once
// the user starts it, each of its tool calls asks the human, in autonomous
// mode and after an "allow for the workspace" answer alike; a denied call
// does nothing. The same server configured by the user runs its calls
// without asking in that mode.
func TestWorkspaceServerAlwaysAsks(t *testing.T) {
	ne := mcptest.Find(t, "server-memory")
	node := ne.Node
	create := func(id, name string) string {
		return call(id, "mcp__mem__create_entities", map[string]any{"entities": []map[string]any{{"name": name, "entityType": "person", "observations": []string{"x"}}}})
	}
	script := strings.Join([]string{
		`{"tool_calls": [` + create("c1", "Ada") + `]}`,
		`{"expect": {"tool_results": 1}, "tool_calls": [` + create("c2", "Bob") + `]}`,
		`{"expect": {"tool_results": 1}, "tool_calls": [` + create("c3", "Cy") + `]}`,
		`{"expect": {"tool_results": 1}, "text": "Done."}`,
	}, "\n")
	w := newWorld(t, script, "[workspace]\nmode = \"autonomous\"\n")
	memFile := filepath.Join(w.ws, "memory.jsonl")
	index := ne.Script("server-memory")
	w.write(".astrid/config.toml", "[servers.mem]\ntransport = \"stdio\"\ncommand = \""+node+"\"\nargs = [\""+index+"\"]\ncwd = \""+w.ws+"\"\nenv = { MEMORY_FILE_PATH = \""+memFile+"\" }\n")
	b := backendWorld(t, w)
	ctx := context.Background()
	rec, err := w.rt.Create(ctx, CreateOptions{Workspace: w.ws, Principal: "tester", Frontend: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range b.MCP.List() {
		if s.Name == "mem" && s.State != "stopped" {
			t.Fatalf("the workspace's server started by itself: %+v", s)
		}
	}
	if _, err := b.StartServer(ctx, daemon.Caller{User: "tester"}, api.ServerParams{Name: "mem", Workspace: w.ws}); err != nil {
		t.Fatal(err)
	}

	// The first call is denied; the next two are allowed "for the
	// workspace", which must not spare the third its question.
	var asked atomic.Int32
	answers := []approval.Decision{"deny", "allow_workspace", "allow_workspace"}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			w.rt.mu.Lock()
			var id string
			for pid := range w.rt.pending {
				id = pid
			}
			w.rt.mu.Unlock()
			if n := int(asked.Load()); id != "" && n < len(answers) {
				if err := w.rt.Answer(rec.ID, id, approval.Answer{Decision: answers[n], By: "tester"}); err == nil {
					asked.Add(1)
				}
			}
		}
	}()
	if stop := w.turn(rec.ID, "remember three people"); stop != "end_turn" {
		t.Fatalf("turn stopped: %q", stop)
	}
	if asked.Load() != 3 {
		t.Fatalf("%d questions for three calls of a workspace server's tool, want 3", asked.Load())
	}
	results := w.results("mcp__mem__create_entities")
	if len(results) != 3 || results[0].Status == "ok" || results[1].Status != "ok" || results[2].Status != "ok" {
		t.Fatalf("results %+v: want the denied call refused and the two allowed ones run", results)
	}
	data, _ := os.ReadFile(memFile)
	if strings.Contains(string(data), "Ada") || !strings.Contains(string(data), "Bob") || !strings.Contains(string(data), "Cy") {
		t.Errorf("memory file %q: want Bob and Cy, not the denied Ada", data)
	}
}
