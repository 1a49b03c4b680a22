package replay

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/llm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func demo(t *testing.T) *Provider {
	t.Helper()
	s, err := Open("testdata/demo.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return New(llm.Config{Model: "claude-sonnet-4-5", Pricing: llm.LookupPricing(nil, "claude-sonnet-4-5", true)}, s)
}

func user(s string) llm.Message {
	return llm.Message{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: s}}}
}

func results(ids ...string) llm.Message {
	m := llm.Message{Role: llm.RoleUser}
	for _, id := range ids {
		m.Parts = append(m.Parts, llm.Part{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: id, Content: "ok"}})
	}
	return m
}

func TestConversation(t *testing.T) {
	p := demo(t)
	req := &llm.Request{Messages: []llm.Message{user("what is this project?")}}
	var evs []llm.Event
	for ev, err := range p.Stream(t.Context(), req) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	first, err := llm.Collect(p.Stream(t.Context(), req))
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := []llm.ToolCall{
		{ID: "call_1", Name: "read_file", Arguments: json.RawMessage(`{"file_path": "go.mod"}`)},
		{ID: "call_2", Name: "glob", Arguments: json.RawMessage(`{"pattern": "**/*.go"}`)},
	}
	if diff := cmp.Diff(wantCalls, first.ToolCalls); diff != "" {
		t.Errorf("tool calls (-want +got):\n%s", diff)
	}
	if first.Text != "Let me look at the module file." || first.Reasoning[0].Text != "I should look at go.mod first." || first.StopReason != llm.StopToolUse {
		t.Errorf("first turn %+v", first)
	}
	// 1200×$3 + 40×$15 + 1000 cache writes × $3.75.
	if want := (llm.Usage{InputTokens: 1200, OutputTokens: 40, CacheWriteTokens: 1000, Cost: 7950}); first.Usage != want {
		t.Errorf("usage %+v, want %+v", first.Usage, want)
	}
	// The event stream: reasoning, its end, text pieces, then each call's start, deltas, end.
	kinds := map[llm.EventKind]int{}
	for _, ev := range evs {
		kinds[ev.Kind]++
		if !utf8.ValidString(ev.Text) {
			t.Errorf("piece %q splits a character", ev.Text)
		}
	}
	if kinds[llm.EventToolCallStart] != 2 || kinds[llm.EventToolCallEnd] != 2 || kinds[llm.EventText] < 2 || kinds[llm.EventReasoningEnd] != 1 || evs[len(evs)-1].Kind != llm.EventStop {
		t.Errorf("event kinds %v", kinds)
	}

	req.Messages = append(req.Messages, first.Message(), results("call_2", "call_1"))
	second, err := llm.Collect(p.Stream(t.Context(), req))
	if err != nil {
		t.Fatal(err)
	}
	if second.Text != "This is the Go module github.com/astrid-runtime/astrid — ✓ 世界." || second.StopReason != llm.StopEndTurn {
		t.Errorf("second turn %+v", second)
	}
	// Past the end of the script.
	req.Messages = append(req.Messages, second.Message(), user("thanks"))
	_, err = llm.Collect(p.Stream(t.Context(), req))
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "only 2 turns") {
		t.Errorf("error %v", err)
	}
}

func TestDivergence(t *testing.T) {
	p := demo(t)
	first, err := llm.Collect(p.Stream(t.Context(), &llm.Request{Messages: []llm.Message{user("q")}}))
	if err != nil {
		t.Fatal(err)
	}
	other := llm.Message{Role: llm.RoleAssistant, Parts: []llm.Part{{Kind: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "call_9", Name: "bash"}}}}
	for name, tc := range map[string]struct {
		msgs []llm.Message
		msg  string
	}{
		"missing result":      {[]llm.Message{user("q"), first.Message(), results("call_1")}, `expected results for tool calls ["call_1" "call_2"], got ["call_1"]`},
		"wrong result id":     {[]llm.Message{user("q"), first.Message(), results("call_1", "call_3")}, "expected results for tool calls"},
		"different tool call": {[]llm.Message{user("q"), other, results("call_9")}, `the assistant message has tool calls ["call_9"]`},
		"ends with assistant": {[]llm.Message{user("q"), first.Message()}, "does not end with a user message"},
		"no messages":         {nil, "does not end with a user message"},
	} {
		_, err := llm.Collect(p.Stream(t.Context(), &llm.Request{Messages: tc.msgs}))
		e, ok := errors.AsType[*llm.Error](err)
		if !ok || !errors.Is(err, ErrDiverged) || e.Kind != llm.KindBadRequest || e.Provider != "replay" || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.msg)
		}
		if ok && !strings.Contains(e.Message, "testdata/demo.jsonl line") {
			t.Errorf("%s: error %q does not name the line", name, e.Message)
		}
	}
}

func TestExpect(t *testing.T) {
	s, err := Parse(strings.NewReader(`{"text": "hello"}
{"expect": {"user_contains": "please"}, "text": "ok"}
{"expect": {"tool_results": 0}, "text": "done"}`))
	if err != nil {
		t.Fatal(err)
	}
	p := New(llm.Config{}, s)
	a := llm.Message{Role: llm.RoleAssistant, Parts: []llm.Part{{Kind: llm.PartText, Text: "hello"}}}
	if _, err := llm.Collect(p.Stream(t.Context(), &llm.Request{Messages: []llm.Message{user("hi"), a, user("now")}})); !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), `does not contain "please"`) {
		t.Errorf("error %v", err)
	}
	if _, err := llm.Collect(p.Stream(t.Context(), &llm.Request{Messages: []llm.Message{user("hi"), a, user("please")}})); err != nil {
		t.Error(err)
	}
	msgs := []llm.Message{user("hi"), a, user("please"), a, results()}
	msgs[4].Parts = []llm.Part{{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "x"}}}
	if _, err := llm.Collect(p.Stream(t.Context(), &llm.Request{Messages: msgs})); !errors.Is(err, ErrDiverged) {
		t.Errorf("error %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{``, "no turns"},
		{"# only a comment\n\n", "no turns"},
		{`{"txt": "typo"}`, `line 1: json: unknown field "txt"`},
		{`{"text": "a"} {"text": "b"}`, "more than one JSON value"},
		{"{\"text\": \"a\"}\n{\"tool_calls\": [{\"id\": \"c\", \"name\": \"t\", \"arguments\": [1]}]}", "line 2: replay: protocol: tool call c (t): arguments are not a valid JSON object"},
		{`{"tool_calls": [{"id": "c", "arguments": {}}]}`, "needs an id and a name"},
		{"{\"tool_calls\": [{\"id\": \"c\", \"name\": \"t\"}]}\n{\"tool_calls\": [{\"id\": \"c\", \"name\": \"t\"}]}", `line 2: tool call id "c" already used on line 1`},
		{`{"text": 5}`, "line 1"},
	} {
		_, err := Parse(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.in, err, tc.msg)
		}
	}
	if _, err := Open("testdata/missing.jsonl"); err == nil {
		t.Error("missing file opened")
	}
}

func TestNoArgumentsBecomeEmptyObject(t *testing.T) {
	s, err := Parse(strings.NewReader(`{"tool_calls": [{"id": "c", "name": "list_directory"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := llm.Collect(New(llm.Config{}, s).Stream(t.Context(), &llm.Request{Messages: []llm.Message{user("x")}}))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.ToolCalls[0].Arguments) != "{}" || !r.Usage.Estimated {
		t.Errorf("response %+v", r)
	}
}

func TestCancel(t *testing.T) {
	p := demo(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var err error
	n := 0
	for _, e := range p.Stream(ctx, &llm.Request{Messages: []llm.Message{user("q")}}) {
		if e != nil {
			err = e
			break
		}
		n++
		cancel()
	}
	if n != 1 || !errors.Is(err, context.Canceled) {
		t.Errorf("%d events, error %v", n, err)
	}
}

func TestConcurrentSessions(t *testing.T) {
	p := demo(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r, err := llm.Collect(p.Stream(t.Context(), &llm.Request{Messages: []llm.Message{user("q")}}))
			if err != nil || len(r.ToolCalls) != 2 {
				t.Errorf("%v %+v", err, r)
			}
		})
	}
	wg.Wait()
}
