package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/mcp"
	"github.com/astrid-runtime/astrid/internal/security"
)

// answerElicitations answers each elicitation the session's frontends are
// shown with the next of answers (action, content), recording what they
// were shown.
func (w *world) answerElicitations(ctx context.Context, session string, answers [][2]string) (shown chan api.ElicitationNeeded) {
	shown = make(chan api.ElicitationNeeded, len(answers)+1)
	go func() {
		seen := map[string]bool{}
		next := 0
		for next < len(answers) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Millisecond):
			}
			for _, ev := range w.ev.of(api.EventElicitationNeeded) {
				var e api.ElicitationNeeded
				if json.Unmarshal(ev.Data, &e) != nil || seen[e.Request] {
					continue
				}
				seen[e.Request] = true
				shown <- e
				a := answers[next]
				next++
				if err := w.rt.AnswerElicitation(session, e.Request, a[0], json.RawMessage(a[1])); err != nil {
					w.t.Errorf("answer: %v", err)
				}
			}
		}
	}()
	return shown
}

// TestSamplingAsksEveryTimeAndMayBeEdited: an MCP server's sampling request
// is refused without a session; otherwise the human is shown the prompt and
// the token limit in a form, every time (even in autonomous mode). Decline
// refuses it without calling the model; accept sends it as shown or as
// edited; an edit beyond what the server asked is a denial; no answer
// defers it. Each request is charged to the session and audited under its
// own resource, which no tool of the server can share.
func TestSamplingAsksEveryTimeAndMayBeEdited(t *testing.T) {
	w := newWorld(t, `{"text": "x"}`, "[workspace]\nmode = \"autonomous\"\n[security]\napproval_timeout_secs = 1\n")
	var got []*llm.Request
	w.useProvider(&funcProvider{f: func(req *llm.Request) llm.Response {
		got = append(got, req)
		return llm.Response{Text: fmt.Sprintf("answer %d to %s", len(got), req.Messages[len(req.Messages)-1].Parts[0].Text)}
	}})
	ctx := context.Background()
	req := mcp.SampleRequest{Server: "srv", Messages: []mcp.SampleMessage{{Role: "user", Text: "Summarise the weather"}}, MaxTokens: 100}
	if _, err := w.rt.Sample(ctx, req); err == nil {
		t.Fatal("a sampling request of no session was served")
	}
	req.Session = w.session("autonomous")
	actx, stop := context.WithCancel(ctx)
	defer stop()
	shown := w.answerElicitations(actx, req.Session, [][2]string{
		{"decline", ``},
		{"accept", `{"prompt": "Summarise the weather", "max_tokens": 100}`},
		{"accept", `{"prompt": "Summarise the weather in Oslo", "max_tokens": 20}`},
		{"accept", `{"prompt": "Summarise the weather", "max_tokens": 5000}`},
	})

	var de *security.DeniedError
	if _, err := w.rt.Sample(ctx, req); !errors.As(err, &de) {
		t.Fatalf("declined sample: %v, want a denial", err)
	}
	first := <-shown
	if first.Server != "srv" || first.Mode != "form" || !strings.Contains(first.Message, "up to 100 tokens") || !strings.Contains(string(first.Schema), "Summarise the weather") {
		t.Errorf("the form shown: %+v", first)
	}
	spentBefore := w.core.Budget.Session(req.Session).Spent
	if res, err := w.rt.Sample(ctx, req); err != nil || res.Text != "answer 1 to Summarise the weather" {
		t.Fatalf("accepted sample = %+v, %v (the declined one must not have called the model)", res, err)
	}
	if res, err := w.rt.Sample(ctx, req); err != nil || res.Text != "answer 2 to Summarise the weather in Oslo" || got[1].MaxTokens != 20 {
		t.Fatalf("edited sample = %+v, %v; the model got max_tokens %d", res, err, got[len(got)-1].MaxTokens)
	}
	if _, err := w.rt.Sample(ctx, req); !errors.As(err, &de) || !strings.Contains(de.Error(), "max_tokens") {
		t.Fatalf("an edit raising max_tokens: %v, want a denial naming it", err)
	}
	stop()
	// Nobody answers: deferred, never run.
	var fe *security.DeferredError
	if _, err := w.rt.Sample(ctx, req); !errors.As(err, &fe) {
		t.Fatalf("unanswered sample: %v, want it deferred", err)
	}
	if len(got) != 2 {
		t.Fatalf("the model was called %d times, want 2", len(got))
	}
	if spent := w.core.Budget.Session(req.Session).Spent; spent <= spentBefore {
		t.Errorf("spent %v before and %v after: not charged to the session", spentBefore, spent)
	}
	var decisions []audit.Decision
	for _, e := range w.decisions() {
		if e.Action.Resource == "mcp://srv/sampling:create" {
			decisions = append(decisions, e.Decision)
		}
	}
	want := []audit.Decision{audit.Denied, audit.Allowed, audit.Allowed, audit.Denied, audit.Deferred}
	if fmt.Sprint(decisions) != fmt.Sprint(want) {
		t.Fatalf("sampling decisions %v, want %v", decisions, want)
	}
}
