package runtime

import (
	"context"
	"fmt"
	"testing"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/mcp"
)

// TestSamplingAsksEveryTimeAndIsBudgeted: an MCP server's sampling request
// is refused without a session, asks the human every time (even after an
// "allow for the session", and even in autonomous mode), runs the model
// only when allowed, is charged to the session's budget, and is audited
// under its own resource, which no tool of the server can share.
func TestSamplingAsksEveryTimeAndIsBudgeted(t *testing.T) {
	w := newWorld(t, `{"text": "x"}`, "[workspace]\nmode = \"autonomous\"\n")
	calls := 0
	w.useProvider(&funcProvider{f: func(req *llm.Request) llm.Response {
		calls++
		return llm.Response{Text: fmt.Sprintf("answer %d to %s", calls, req.Messages[0].Parts[0].Text)}
	}})
	ctx := context.Background()
	req := mcp.SampleRequest{Server: "srv", Messages: []mcp.SampleMessage{{Role: "user", Text: "Summarise the weather"}}, MaxTokens: 100}
	if _, err := w.rt.Sample(ctx, req); err == nil {
		t.Fatal("a sampling request of no session was served")
	}
	req.Session = w.session("autonomous")

	deny, stop := context.WithCancel(ctx)
	denied := w.answerApprovals(deny, approval.Decision("deny"))
	if _, err := w.rt.Sample(ctx, req); err == nil {
		t.Fatal("a denied sampling request was served")
	}
	stop()
	if denied.Load() != 1 {
		t.Fatalf("%d approvals answered for the denied request, want 1", denied.Load())
	}
	spentBefore := w.core.Budget.Session(req.Session).Spent

	allow, stop2 := context.WithCancel(ctx)
	defer stop2()
	allowed := w.answerApprovals(allow, approval.Decision("allow_session"))
	res, err := w.rt.Sample(ctx, req)
	if err != nil || res.Text != "answer 1 to Summarise the weather" {
		t.Fatalf("sample = %+v, %v; want the model's first answer (the denied request must not have called it)", res, err)
	}
	if res2, err := w.rt.Sample(ctx, req); err != nil || res2.Text != "answer 2 to Summarise the weather" {
		t.Fatalf("second sample = %+v, %v", res2, err)
	}
	if allowed.Load() != 2 {
		t.Errorf("%d approvals for two allowed requests, want 2: sampling always asks", allowed.Load())
	}
	if spent := w.core.Budget.Session(req.Session).Spent; spent <= spentBefore {
		t.Errorf("spent %v before and %v after two samples: not charged to the session", spentBefore, spent)
	}
	var sampling []*audit.Entry
	for _, e := range w.decisions() {
		if e.Action.Resource == "mcp://srv/sampling:create" {
			sampling = append(sampling, e)
		}
	}
	if len(sampling) != 3 || sampling[0].Decision != audit.Denied || sampling[1].Decision != audit.Allowed {
		t.Fatalf("sampling decisions %d (first %v); want 3: denied, allowed, allowed", len(sampling), sampling)
	}
}
