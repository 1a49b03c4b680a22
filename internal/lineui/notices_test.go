package lineui_test

import (
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
	"github.com/astrid-runtime/astrid/internal/lineui"
)

func TestNotice(t *testing.T) {
	ev := func(typ api.EventType, data any) api.Event {
		e, err := api.NewEvent("s1", typ, data)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, tt := range []struct {
		e    api.Event
		want []string
	}{
		{ev(api.EventMCPProgress, api.MCPProgress{Server: "ev", Tool: "mcp__ev__long", Progress: 3, Total: 10, Message: "step\x1b[2J 3"}), []string{"[progress] mcp__ev__long: 3/10 step 3"}},
		{ev(api.EventMCPTask, api.MCPTask{Server: "ev", Tool: "mcp__ev__research", Task: "t-1", Status: "input_required", Message: "which topic?"}), []string{"[task] mcp__ev__research (t-1): input_required", "waits for an answer", "which topic?"}},
		{ev(api.EventElicitationCompleted, api.ElicitationCompleted{Server: "ev", ElicitationID: "e1"}), []string{"ev: the interaction in the browser is complete"}},
		{ev(api.EventMCPResourceUpdated, api.MCPResourceUpdated{Server: "ev", URI: "note://a"}), []string{"resource note://a changed"}},
		{ev(api.EventDeferredResult, api.DeferredResult{ID: "d1", Tool: "bash", Resource: "exec://make", Decision: "allow_once", By: "ada", Status: "ok", Output: "a\nb"}), []string{"[deferred] bash exec://make (approval d1, allow_once by ada): ok (2 lines of output)"}},
	} {
		got, ok := frontend.Notice(tt.e)
		if !ok {
			t.Errorf("%s: not described", tt.e.Type)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tt.e.Type, got, w)
			}
		}
		if strings.ContainsAny(got, "\x1b\n") {
			t.Errorf("%s: %q is not one clean line", tt.e.Type, got)
		}
	}
	if _, ok := frontend.Notice(ev(api.EventTextDelta, api.TextDelta{Text: "x"})); ok {
		t.Error("a text delta was described as a notice")
	}
	// The line printer shows them.
	var out strings.Builder
	p := &lineui.Printer{Text: &out, Notes: &out}
	p.Event(ev(api.EventMCPTask, api.MCPTask{Tool: "t", Task: "k", Status: "working"}))
	if !strings.Contains(out.String(), "[task] t (k): working\n") {
		t.Errorf("printer: %q", out.String())
	}
}
