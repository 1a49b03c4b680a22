package runtime

import (
	"context"
	"encoding/json"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/store"
)

// funcProvider answers each request with f(req): a scripted model that can
// tell a parent from a sub-agent and see what it is sent.
type funcProvider struct {
	mu   sync.Mutex
	reqs []*llm.Request
	f    func(req *llm.Request) llm.Response
}

func (p *funcProvider) Name() string                                { return "func" }
func (p *funcProvider) Model() string                               { return "claude-sonnet-4-5" }
func (p *funcProvider) EstimateCost(req *llm.Request) budget.Micros { return 1000 }
func (p *funcProvider) Stream(ctx context.Context, req *llm.Request) iter.Seq2[llm.Event, error] {
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	resp := p.f(req)
	return func(yield func(llm.Event, error) bool) {
		if resp.Text != "" && !yield(llm.Event{Kind: llm.EventText, Text: resp.Text}, nil) {
			return
		}
		for i, c := range resp.ToolCalls {
			if !yield(llm.Event{Kind: llm.EventToolCallEnd, Index: i, ToolCall: c}, nil) {
				return
			}
		}
		if !yield(llm.Event{Kind: llm.EventUsage, Usage: llm.Usage{InputTokens: 10, OutputTokens: 5, Cost: 500}}, nil) {
			return
		}
		stop := llm.StopEndTurn
		if len(resp.ToolCalls) > 0 {
			stop = llm.StopToolUse
		}
		yield(llm.Event{Kind: llm.EventStop, StopReason: stop}, nil)
	}
}

func tc(id, name string, args map[string]any) llm.ToolCall {
	b, _ := json.Marshal(args)
	return llm.ToolCall{ID: id, Name: name, Arguments: b}
}

// lastResult returns the tool results of the last user message, joined.
func lastResult(req *llm.Request) string {
	m := req.Messages[len(req.Messages)-1]
	var out []string
	for _, p := range m.Parts {
		if p.ToolResult != nil {
			out = append(out, p.ToolResult.Content)
		}
	}
	return strings.Join(out, "\n")
}

func (w *world) useProvider(p *funcProvider) {
	w.rt.o.Provider = p
}

func TestSubAgentHasNoMoreAuthority(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "[workspace]\nmode = \"autonomous\"\n")
	outside := filepath.Join(w.dir, "outside.txt")
	var childSaw string
	p := &funcProvider{f: func(req *llm.Request) llm.Response {
		child := strings.Contains(req.System, "sub-agent")
		n := 0
		for _, m := range req.Messages {
			if m.Role == llm.RoleAssistant {
				n++
			}
		}
		switch {
		case child && n == 0:
			return llm.Response{ToolCalls: []llm.ToolCall{
				tc("k1", "write_file", map[string]any{"file_path": outside, "content": "child"}),
				tc("k2", "read_file", map[string]any{"file_path": filepath.Join(w.home, "keys", "runtime.key")}),
				tc("k3", "write_file", map[string]any{"file_path": "from-child.txt", "content": "ok"}),
			}}
		case child:
			childSaw = lastResult(req)
			return llm.Response{Text: "child finished"}
		case n == 0:
			return llm.Response{ToolCalls: []llm.ToolCall{tc("p1", "task", map[string]any{"description": "helper", "prompt": "do it"})}}
		default:
			return llm.Response{Text: "parent got: " + lastResult(req)}
		}
	}}
	w.useProvider(p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The human allows the sub-agent to start and denies everything else
	// that reaches them.
	go func() {
		for ctx.Err() == nil {
			w.rt.mu.Lock()
			var reqs []string
			for id := range w.rt.pending {
				reqs = append(reqs, id)
			}
			w.rt.mu.Unlock()
			for _, id := range reqs {
				d := approval.Deny
				if n := len(w.ev.of(api.EventToolCallStart)); n == 1 {
					d = approval.AllowOnce // the task itself
				}
				w.rt.mu.Lock()
				sess := ""
				if pa, ok := w.rt.pending[id]; ok {
					sess = pa.session
				}
				w.rt.mu.Unlock()
				w.rt.Answer(sess, id, approval.Answer{Decision: d, By: "tester"})
			}
		}
	}()
	rec, err := w.rt.Create(context.Background(), CreateOptions{Workspace: w.ws})
	if err != nil {
		t.Fatal(err)
	}
	if stop := w.turn(rec.ID, "delegate"); stop != "end_turn" {
		t.Fatalf("stop %q: %v", stop, w.ev.of(api.EventError))
	}
	if _, err := os.Stat(outside); err == nil {
		t.Fatal("the sub-agent wrote outside the workspace")
	}
	if got, _ := os.ReadFile(filepath.Join(w.ws, "from-child.txt")); string(got) != "ok" {
		t.Errorf("the sub-agent could not do its allowed work: %q", got)
	}
	if !strings.Contains(childSaw, "from-child.txt") || !strings.Contains(childSaw, "astrid_home") || !strings.Contains(childSaw, "denied") {
		t.Errorf("child's last result: %q", childSaw)
	}
	// Its actions are audited under the parent's session, as a sub-agent.
	out, err := w.core.DB.Audit().List(context.Background(), store.AuditFilter{Session: rec.ID})
	if err != nil {
		t.Fatal(err)
	}
	sub := 0
	for _, s := range out {
		e, err := audit.Decode(s.Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Frontend == "subagent" {
			sub++
		}
	}
	if sub < 3 {
		t.Errorf("%d audit entries from the sub-agent under the parent session", sub)
	}
}

func TestSummaryReachesTheModel(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "[runtime]\nmax_context_tokens = 600\nkeep_recent_count = 2\n[model]\ncontext_window = 600\n")
	big := strings.Repeat("lorem ipsum ", 200)
	p := &funcProvider{f: func(req *llm.Request) llm.Response {
		if strings.HasPrefix(req.System, "Summarise") {
			return llm.Response{Text: "SUMMARY: the user said lorem ipsum twice"}
		}
		return llm.Response{Text: "ack"}
	}}
	w.useProvider(p)
	rec, err := w.rt.Create(context.Background(), CreateOptions{Workspace: w.ws})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if stop := w.turn(rec.ID, big); stop != "end_turn" {
			t.Fatalf("turn %d: %q %v", i, stop, w.ev.of(api.EventError))
		}
	}
	p.mu.Lock()
	last := p.reqs[len(p.reqs)-1]
	p.mu.Unlock()
	if !strings.Contains(last.Summary, "SUMMARY") {
		t.Fatalf("the last request carries no summary (%q)", last.Summary)
	}
	if len(last.Messages) > 3 {
		t.Errorf("%d messages sent after summarising", len(last.Messages))
	}
	if last.Messages[0].Role != llm.RoleUser {
		t.Errorf("kept messages start with %s", last.Messages[0].Role)
	}
}

func TestSplitPointKeepsToolPairs(t *testing.T) {
	u := func(s string) llm.Message {
		return llm.Message{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: s}}}
	}
	a := llm.Message{Role: llm.RoleAssistant, Parts: []llm.Part{{Kind: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "x"}}}}
	r := llm.Message{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "x"}}}}
	msgs := []llm.Message{u("1"), a, r, a, r, a, r}
	if got := splitPoint(msgs, 2); got != 0 {
		t.Errorf("cut inside a tool exchange: %d", got)
	}
	msgs = []llm.Message{u("1"), a, r, u("2"), a, r, u("3")}
	if got := splitPoint(msgs, 2); got != 3 {
		t.Errorf("cut = %d, want 3 (at the user turn before the last pair)", got)
	}
}
