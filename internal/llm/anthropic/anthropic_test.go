package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/llm/internal/ssetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const model = "claude-sonnet-4-5"

// sleeps records the backoff waits instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newProvider(t *testing.T, srv *ssetest.Server, s *sleeps) *Provider {
	t.Helper()
	if s == nil {
		s = &sleeps{}
	}
	p, err := New(llm.Config{
		Model:       model,
		APIKey:      "sk-ant-test",
		BaseURL:     srv.URL,
		MaxTokens:   1024,
		Temperature: 0.5,
		Pricing:     llm.LookupPricing(nil, model, false),
		Retry:       llm.RetryPolicy{MaxAttempts: 3, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, Sleep: s.sleep},
		HTTPClient:  srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func userText(s string) llm.Message {
	return llm.Message{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: s}}}
}

// collect ranges over the whole stream.
func collect(t *testing.T, p *Provider, req *llm.Request) ([]llm.Event, error) {
	t.Helper()
	var evs []llm.Event
	for ev, err := range p.Stream(t.Context(), req) {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

func llmError(t *testing.T, err error) *llm.Error {
	t.Helper()
	e, ok := errors.AsType[*llm.Error](err)
	if !ok {
		t.Fatalf("error %v (%T) is not an *llm.Error", err, err)
	}
	if e.Provider != "anthropic" {
		t.Errorf("error names provider %q", e.Provider)
	}
	return e
}

func TestText(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
	evs, err := collect(t, newProvider(t, srv, nil), &llm.Request{Messages: []llm.Message{userText("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Event{
		{Kind: llm.EventText, Text: "Hello"},
		{Kind: llm.EventText, Text: ", world!"},
		// 25 input tokens at $3/MTok + 15 output at $15/MTok = 300 µ$.
		{Kind: llm.EventUsage, Usage: llm.Usage{InputTokens: 25, OutputTokens: 15, Cost: 300}},
		{Kind: llm.EventStop, StopReason: llm.StopEndTurn},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestRequestShape(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
	p := newProvider(t, srv, nil)
	req := &llm.Request{
		System:  "You are Astrid.",
		Summary: "Earlier: the user asked to fix the build.",
		Tools: []llm.Tool{
			{Name: "read_file", Description: "Read a file.", InputSchema: json.RawMessage(`{"type":"object","properties":{"file_path":{"type":"string"}},"required":["file_path"],"additionalProperties":false}`)},
			{Name: "list_directory", Description: "List a directory."},
		},
		Messages: []llm.Message{
			{Role: llm.RoleUser, Parts: []llm.Part{
				{Kind: llm.PartText, Text: "What is in main.go?"},
				{Kind: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}}},
			}},
			{Role: llm.RoleAssistant, Parts: []llm.Part{
				{Kind: llm.PartReasoning, Text: "unsigned, dropped"},
				{Kind: llm.PartText, Text: "Reading it."},
				{Kind: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "toolu_1", Name: "read_file", Arguments: json.RawMessage(`{"file_path":"main.go"}`)}},
				{Kind: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "toolu_2", Name: "list_directory"}},
			}},
			{Role: llm.RoleUser, Parts: []llm.Part{
				{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "toolu_1", Content: "package main"}},
				{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "toolu_2", Content: "permission denied", IsError: true}},
			}},
		},
	}
	if _, err := collect(t, p, req); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/v1/messages" || r.Method != "POST" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	if got := r.Header.Get("X-Api-Key"); got != "sk-ant-test" {
		t.Errorf("x-api-key = %q", got)
	}
	if got := r.Header.Get("Anthropic-Version"); got != "2023-06-01" {
		t.Errorf("anthropic-version = %q", got)
	}
	var got map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	// The whole body, as the API receives it.
	want := map[string]any{
		"model":       model,
		"max_tokens":  float64(1024),
		"temperature": 0.5,
		"stream":      true,
		"system": []any{
			map[string]any{"type": "text", "text": "You are Astrid."},
			map[string]any{"type": "text", "text": "Earlier: the user asked to fix the build.", "cache_control": map[string]any{"type": "ephemeral"}},
		},
		"tools": []any{
			map[string]any{"name": "read_file", "description": "Read a file.", "input_schema": map[string]any{
				"type": "object", "properties": map[string]any{"file_path": map[string]any{"type": "string"}},
				"required": []any{"file_path"}, "additionalProperties": false}},
			map[string]any{"name": "list_directory", "description": "List a directory.",
				"input_schema":  map[string]any{"type": "object", "properties": map[string]any{}},
				"cache_control": map[string]any{"type": "ephemeral"}},
		},
		"messages": []any{
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "text", "text": "What is in main.go?"},
				map[string]any{"type": "image", "source": map[string]any{"type": "base64", "media_type": "image/png", "data": "iVBORw=="}},
			}},
			map[string]any{"role": "assistant", "content": []any{
				map[string]any{"type": "text", "text": "Reading it."},
				map[string]any{"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": map[string]any{"file_path": "main.go"}},
				map[string]any{"type": "tool_use", "id": "toolu_2", "name": "list_directory", "input": map[string]any{}},
			}},
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "tool_result", "tool_use_id": "toolu_1", "content": []any{map[string]any{"type": "text", "text": "package main"}}},
				map[string]any{"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true, "content": []any{map[string]any{"type": "text", "text": "permission denied"}}},
			}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
}

func TestToolUseSplitArguments(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "tool_use.sse"))})
	evs, err := collect(t, newProvider(t, srv, nil), &llm.Request{Messages: []llm.Message{userText("read main.go")}})
	if err != nil {
		t.Fatal(err)
	}
	call := llm.ToolCall{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Name: "read_file"}
	done := call
	done.Arguments = json.RawMessage(`{"file_path": "src/main.go", "offset": 10}`)
	want := []llm.Event{
		{Kind: llm.EventText, Text: "Let me read that file."},
		{Kind: llm.EventToolCallStart, ToolCall: call},
		{Kind: llm.EventToolCallDelta, Text: `{"file_pa`},
		{Kind: llm.EventToolCallDelta, Text: `th": "src/ma`},
		{Kind: llm.EventToolCallDelta, Text: `in.go", "off`},
		{Kind: llm.EventToolCallDelta, Text: `set": 1`},
		{Kind: llm.EventToolCallDelta, Text: `0}`},
		{Kind: llm.EventToolCallEnd, ToolCall: done},
		// 472×3 + 89×15 + 2048 cache reads × 0.3 = 3365.4, rounded up.
		{Kind: llm.EventUsage, Usage: llm.Usage{InputTokens: 472, OutputTokens: 89, CacheReadTokens: 2048, Cost: 3366}},
		{Kind: llm.EventStop, StopReason: llm.StopToolUse},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestParallelToolCalls(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "parallel_tools.sse"))})
	resp, err := llm.Collect(newProvider(t, srv, nil).Stream(t.Context(), &llm.Request{Messages: []llm.Message{userText("look around")}}))
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.ToolCall{
		{ID: "toolu_01A", Name: "glob", Arguments: json.RawMessage(`{"pattern": "**/*.go"}`)},
		{ID: "toolu_01B", Name: "list_directory", Arguments: json.RawMessage(`{"path": "."}`)},
	}
	if diff := cmp.Diff(want, resp.ToolCalls); diff != "" {
		t.Errorf("tool calls (-want +got):\n%s", diff)
	}
	// 120×3 + 64×15 + 1500 cache writes × 3.75 = 6945.
	if want := (llm.Usage{InputTokens: 120, OutputTokens: 64, CacheWriteTokens: 1500, Cost: 6945}); resp.Usage != want {
		t.Errorf("usage %+v, want %+v", resp.Usage, want)
	}
	if resp.StopReason != llm.StopToolUse {
		t.Errorf("stop reason %q", resp.StopReason)
	}
}

func TestThinking(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "thinking.sse"))})
	p := newProvider(t, srv, nil)
	req := &llm.Request{Messages: []llm.Message{userText("27 * 453?")}, ThinkingBudget: 512}
	evs, err := collect(t, p, req)
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Event{
		{Kind: llm.EventReasoning, Text: "The user wants 27 * 453. "},
		{Kind: llm.EventReasoning, Text: "27 * 453 = 12231."},
		{Kind: llm.EventReasoningEnd, Signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
		{Kind: llm.EventText, Text: "27 × 453 = 12,231"},
		{Kind: llm.EventUsage, Usage: llm.Usage{InputTokens: 85, OutputTokens: 120, Cost: 85*3 + 120*15}},
		{Kind: llm.EventStop, StopReason: llm.StopEndTurn},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	body := srv.Requests()[0].JSON(t)
	if diff := cmp.Diff(map[string]any{"type": "enabled", "budget_tokens": float64(512)}, body["thinking"]); diff != "" {
		t.Errorf("thinking (-want +got):\n%s", diff)
	}
	if _, ok := body["temperature"]; ok {
		t.Error("temperature sent with extended thinking")
	}
}

func TestSignedReasoningGoesBack(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
	req := &llm.Request{Messages: []llm.Message{
		userText("q"),
		{Role: llm.RoleAssistant, Parts: []llm.Part{
			{Kind: llm.PartReasoning, Text: "hmm", Signature: "sig"},
			{Kind: llm.PartReasoning, Redacted: "opaque"},
			{Kind: llm.PartText, Text: "a"},
		}},
		userText("q2"),
	}, ThinkingBudget: 100}
	if _, err := collect(t, newProvider(t, srv, nil), req); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Requests()[0].JSON(t)["messages"].([]any)
	want := []any{
		map[string]any{"type": "thinking", "thinking": "hmm", "signature": "sig"},
		map[string]any{"type": "redacted_thinking", "data": "opaque"},
		map[string]any{"type": "text", "text": "a"},
	}
	if diff := cmp.Diff(want, msgs[1].(map[string]any)["content"]); diff != "" {
		t.Errorf("assistant content (-want +got):\n%s", diff)
	}
}

func TestToolInputSentWhole(t *testing.T) {
	start := `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_W","name":"glob","input":{"pattern":"*.go"}}}`
	body := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: " + start + "\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(body)})
	resp, err := llm.Collect(newProvider(t, srv, nil).Stream(t.Context(), &llm.Request{Messages: []llm.Message{userText("x")}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ToolCalls) != 1 || string(resp.ToolCalls[0].Arguments) != `{"pattern":"*.go"}` {
		t.Errorf("tool calls %+v", resp.ToolCalls)
	}
}

func TestUnicodeSplitAcrossChunks(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Pieces(ssetest.File(t, "unicode.sse"), 3)})
	resp, err := llm.Collect(newProvider(t, srv, nil).Stream(t.Context(), &llm.Request{Messages: []llm.Message{userText("hi")}}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Grüße, 世界 🌍🚀 naïve café — été"; resp.Text != want {
		t.Errorf("text %q, want %q", resp.Text, want)
	}
}

// upTo returns the events of an SSE file up to and including the first
// event containing marker.
func upTo(t *testing.T, file, marker string) []ssetest.Chunk {
	t.Helper()
	var out []ssetest.Chunk
	for _, c := range ssetest.Events(ssetest.File(t, file)) {
		out = append(out, c)
		if strings.Contains(c.Data, marker) {
			return out
		}
	}
	t.Fatalf("%s has no %q", file, marker)
	return nil
}

func TestStreamCut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []ssetest.Chunk
		kind   llm.ErrorKind
		msg    string
	}{
		{"connection reset mid tool call", append(upTo(t, "tool_use.sse", `"th\": \"src/ma"`), ssetest.Chunk{Cut: true}), llm.KindNetwork, ""},
		{"clean EOF mid tool call", upTo(t, "tool_use.sse", `"th\": \"src/ma"`), llm.KindProtocol, "middle of tool call toolu_01T1x1fJ34qAmk2tNTrN7Up6 (read_file)"},
		{"clean EOF before message_stop", upTo(t, "text.sse", "message_delta"), llm.KindProtocol, "before message_stop"},
		{"message_stop inside a tool call", append(upTo(t, "tool_use.sse", `"th\": \"src/ma"`), ssetest.Chunk{Data: ssetest.SSE("message_stop", map[string]any{"type": "message_stop"})}), llm.KindProtocol, "message_stop in the middle of tool call"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := ssetest.New(t, ssetest.Response{Chunks: tc.chunks})
			evs, err := collect(t, newProvider(t, srv, nil), &llm.Request{Messages: []llm.Message{userText("hi")}})
			if err == nil {
				t.Fatal("no error")
			}
			e := llmError(t, err)
			if e.Kind != tc.kind || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("error %v, want kind %s containing %q", e, tc.kind, tc.msg)
			}
			for _, ev := range evs {
				if ev.Kind == llm.EventToolCallEnd || ev.Kind == llm.EventStop {
					t.Errorf("got %v from a broken stream", ev.Kind)
				}
			}
			if len(evs) == 0 {
				t.Error("no events before the cut")
			}
			// Events had reached the caller: no retry.
			if n := len(srv.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestBadStreams(t *testing.T) {
	start := upTo(t, "tool_use.sse", `"name":"read_file"`)
	for _, tc := range []struct {
		name string
		tail string
		msg  string
	}{
		{"invalid tool JSON", ssetest.SSE("content_block_delta", map[string]any{"type": "content_block_delta", "index": 1, "delta": map[string]any{"type": "input_json_delta", "partial_json": `{"file_path": "a"]`}}) +
			ssetest.SSE("content_block_stop", map[string]any{"type": "content_block_stop", "index": 1}), "not a valid JSON object"},
		{"tool arguments not an object", ssetest.SSE("content_block_delta", map[string]any{"type": "content_block_delta", "index": 1, "delta": map[string]any{"type": "input_json_delta", "partial_json": `["a"]`}}) +
			ssetest.SSE("content_block_stop", map[string]any{"type": "content_block_stop", "index": 1}), "not a valid JSON object"},
		{"malformed event data", "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json\n\n", "malformed event stream"},
		{"delta for unknown block", ssetest.SSE("content_block_delta", map[string]any{"type": "content_block_delta", "index": 7, "delta": map[string]any{"type": "text_delta", "text": "x"}}), "not started"},
		{"text delta in a tool block", ssetest.SSE("content_block_delta", map[string]any{"type": "content_block_delta", "index": 1, "delta": map[string]any{"type": "text_delta", "text": "x"}}), "text_delta in a tool_use block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunks := append(append([]ssetest.Chunk(nil), start...), ssetest.Chunk{Data: tc.tail})
			srv := ssetest.New(t, ssetest.Response{Chunks: chunks})
			evs, err := collect(t, newProvider(t, srv, nil), &llm.Request{Messages: []llm.Message{userText("hi")}})
			if err == nil {
				t.Fatal("no error")
			}
			e := llmError(t, err)
			if e.Kind != llm.KindProtocol || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("error %v, want protocol error containing %q", e, tc.msg)
			}
			for _, ev := range evs {
				if ev.Kind == llm.EventToolCallEnd {
					t.Errorf("broken tool call delivered as complete: %+v", ev)
				}
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		file   string
		kind   llm.ErrorKind
		msg    string
	}{
		{400, "error_400.json", llm.KindBadRequest, "unexpected `tool_use_id`"},
		{401, "error_401.json", llm.KindAuth, "invalid x-api-key"},
		{403, "", llm.KindAuth, "Forbidden"},
		{404, "error_404.json", llm.KindNotFound, "model: claude-sonnet-9"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body := ""
			if tc.file != "" {
				body = ssetest.File(t, tc.file)
			}
			srv := ssetest.New(t, ssetest.Response{Status: tc.status, Body: body})
			_, err := collect(t, newProvider(t, srv, nil), &llm.Request{Messages: []llm.Message{userText("hi")}})
			e := llmError(t, err)
			if e.Status != tc.status || e.Kind != tc.kind || e.Retryable || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("error %+v, want status %d kind %s containing %q", e, tc.status, tc.kind, tc.msg)
			}
			if strings.Contains(e.Error(), "sk-ant-test") {
				t.Error("error text contains the API key")
			}
			if n := len(srv.Requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
		})
	}
}

func TestRateLimitThenSuccess(t *testing.T) {
	srv := ssetest.New(t,
		ssetest.Response{Status: 429, Header: map[string]string{"Retry-After": "2"}, Body: ssetest.File(t, "error_429.json")},
		ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))},
	)
	s := &sleeps{}
	resp, err := llm.Collect(newProvider(t, srv, s).Stream(t.Context(), &llm.Request{Messages: []llm.Message{userText("hi")}}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Hello, world!" {
		t.Errorf("text %q", resp.Text)
	}
	if diff := cmp.Diff([]time.Duration{2 * time.Second}, s.d); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestOverloaded(t *testing.T) {
	overloaded := ssetest.Response{Status: 529, Body: ssetest.File(t, "error_529.json")}
	t.Run("recovers", func(t *testing.T) {
		srv := ssetest.New(t, overloaded,
			ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "overloaded_event.sse"))},
			ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
		s := &sleeps{}
		resp, err := llm.Collect(newProvider(t, srv, s).Stream(t.Context(), &llm.Request{Messages: []llm.Message{userText("hi")}}))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != "Hello, world!" || len(srv.Requests()) != 3 {
			t.Errorf("text %q after %d requests", resp.Text, len(srv.Requests()))
		}
		// Backoff doubles from 100ms with equal jitter: [50,100]ms then [100,200]ms.
		if len(s.d) != 2 || s.d[0] < 50*time.Millisecond || s.d[0] > 100*time.Millisecond || s.d[1] < 100*time.Millisecond || s.d[1] > 200*time.Millisecond {
			t.Errorf("waits %v", s.d)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		srv := ssetest.New(t, overloaded, overloaded, overloaded)
		_, err := collect(t, newProvider(t, srv, nil), &llm.Request{Messages: []llm.Message{userText("hi")}})
		e := llmError(t, err)
		if e.Kind != llm.KindOverloaded || e.Status != 529 || !e.Retryable || e.Message != "Overloaded" {
			t.Errorf("error %+v", e)
		}
		if n := len(srv.Requests()); n != 3 {
			t.Errorf("%d requests, want 3 (max_attempts)", n)
		}
	})
	t.Run("in-stream error after text is not retried", func(t *testing.T) {
		chunks := append(upTo(t, "text.sse", `"text":"Hello"`), ssetest.Chunk{Data: "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"})
		srv := ssetest.New(t, ssetest.Response{Chunks: chunks})
		evs, err := collect(t, newProvider(t, srv, nil), &llm.Request{Messages: []llm.Message{userText("hi")}})
		e := llmError(t, err)
		if e.Kind != llm.KindOverloaded || len(evs) != 1 || len(srv.Requests()) != 1 {
			t.Errorf("error %v after %d events and %d requests", e, len(evs), len(srv.Requests()))
		}
	})
}

func TestRetryAfterBeyondMaxBackoff(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Status: 429, Header: map[string]string{"Retry-After": "60"}, Body: ssetest.File(t, "error_429.json")})
	_, err := collect(t, newProvider(t, srv, nil), &llm.Request{Messages: []llm.Message{userText("hi")}})
	e := llmError(t, err)
	if e.Kind != llm.KindRateLimit || e.RetryAfter != time.Minute || len(srv.Requests()) != 1 {
		t.Errorf("error %+v after %d requests", e, len(srv.Requests()))
	}
}

func TestStreamingDoesNotBuffer(t *testing.T) {
	gate := make(chan struct{})
	chunks := upTo(t, "text.sse", `"text":"Hello"`)
	rest := ssetest.Events(ssetest.File(t, "text.sse"))[len(chunks):]
	rest[0].Wait = gate
	srv := ssetest.New(t, ssetest.Response{Chunks: append(chunks, rest...)})
	var got []llm.Event
	for ev, err := range newProvider(t, srv, nil).Stream(t.Context(), &llm.Request{Messages: []llm.Message{userText("hi")}}) {
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			if ev.Kind != llm.EventText || ev.Text != "Hello" {
				t.Fatalf("first event %+v", ev)
			}
			close(gate) // only now may the server send the rest
		}
		got = append(got, ev)
	}
	if len(got) != 4 {
		t.Errorf("%d events", len(got))
	}
}

func TestCancelClosesConnection(t *testing.T) {
	chunks := append(upTo(t, "text.sse", `"text":"Hello"`), ssetest.Chunk{Block: true})
	srv := ssetest.New(t, ssetest.Response{Chunks: chunks})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var err error
	start := time.Now()
	for ev, e := range newProvider(t, srv, nil).Stream(ctx, &llm.Request{Messages: []llm.Message{userText("hi")}}) {
		if e != nil {
			err = e
			break
		}
		if ev.Kind == llm.EventText {
			go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		}
	}
	if e := llmError(t, err); e.Kind != llm.KindCanceled || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v", d)
	}
	select {
	case <-srv.Disconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("server never saw the connection close")
	}
}

func TestBreakClosesConnection(t *testing.T) {
	chunks := append(upTo(t, "text.sse", `"text":"Hello"`), ssetest.Chunk{Block: true})
	srv := ssetest.New(t, ssetest.Response{Chunks: chunks})
	for range newProvider(t, srv, nil).Stream(t.Context(), &llm.Request{Messages: []llm.Message{userText("hi")}}) {
		break
	}
	select {
	case <-srv.Disconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("server never saw the connection close")
	}
}

func TestAPIKey(t *testing.T) {
	if _, err := New(llm.Config{Model: model, BaseURL: "https://api.anthropic.com"}); err == nil {
		t.Error("remote URL without a key accepted")
	} else if e := llmError(t, err); e.Kind != llm.KindAuth {
		t.Errorf("error %v", e)
	}
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
	p, err := New(llm.Config{Model: model, BaseURL: srv.URL + "/v1/", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := llm.Collect(p.Stream(t.Context(), &llm.Request{Messages: []llm.Message{userText("hi")}})); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Path != "/v1/messages" {
		t.Errorf("path %q", r.Path)
	}
	if v := r.Header.Get("X-Api-Key"); v != "" {
		t.Errorf("x-api-key %q sent without a configured key", v)
	}
}

func TestBadRequestsRefusedBeforeSending(t *testing.T) {
	srv := ssetest.New(t)
	p := newProvider(t, srv, nil)
	for name, req := range map[string]*llm.Request{
		"empty message":   {Messages: []llm.Message{{Role: llm.RoleUser}}},
		"unknown role":    {Messages: []llm.Message{{Role: "system", Parts: []llm.Part{{Kind: llm.PartText, Text: "x"}}}}},
		"bad schema":      {Tools: []llm.Tool{{Name: "t", InputSchema: json.RawMessage(`{"type":"array"}`)}}, Messages: []llm.Message{userText("x")}},
		"tool result nil": {Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartToolResult}}}}},
		"thinking budget": {Messages: []llm.Message{userText("x")}, ThinkingBudget: 1024, MaxTokens: 1024},
	} {
		_, err := collect(t, p, req)
		if e := llmError(t, err); e.Kind != llm.KindBadRequest {
			t.Errorf("%s: error %v", name, e)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestEstimateCost(t *testing.T) {
	p := newProvider(t, ssetest.New(t), nil)
	req := &llm.Request{System: strings.Repeat("x", 4000), Messages: []llm.Message{userText(strings.Repeat("y", 400))}, MaxTokens: 1000}
	// 1100 input tokens at the cache-write price $3.75 + 1000 output at $15.
	if got, want := p.EstimateCost(req), llm.EstimateCost(req, llm.LookupPricing(nil, model, false), 1000); got != want || got != 1100*3.75+1000*15 {
		t.Errorf("EstimateCost = %d, want %d", got, want)
	}
}

func TestStalledStream(t *testing.T) {
	stalled := func(t *testing.T, srv *ssetest.Server) *Provider {
		p, err := New(llm.Config{Model: model, APIKey: "k", BaseURL: srv.URL, HTTPClient: srv.Client(),
			StallTimeout: 100 * time.Millisecond, Retry: llm.RetryPolicy{MaxAttempts: 2, Sleep: (&sleeps{}).sleep}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("after an event: fails", func(t *testing.T) {
		srv := ssetest.New(t, ssetest.Response{Chunks: append(upTo(t, "text.sse", `"text":"Hello"`), ssetest.Chunk{Block: true})})
		evs, err := collect(t, stalled(t, srv), &llm.Request{Messages: []llm.Message{userText("hi")}})
		e := llmError(t, err)
		if _, ok := errors.AsType[*llm.StallError](err); !ok || e.Kind != llm.KindNetwork || len(evs) != 1 {
			t.Errorf("error %v after %d events", err, len(evs))
		}
		select {
		case <-srv.Disconnected:
		case <-time.After(5 * time.Second):
			t.Fatal("server never saw the connection close")
		}
	})
	t.Run("before any event: retried", func(t *testing.T) {
		srv := ssetest.New(t, ssetest.Response{Chunks: []ssetest.Chunk{{Data: ": waiting\n\n"}, {Block: true}}},
			ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
		resp, err := llm.Collect(stalled(t, srv).Stream(t.Context(), &llm.Request{Messages: []llm.Message{userText("hi")}}))
		if err != nil || resp.Text != "Hello, world!" || len(srv.Requests()) != 2 {
			t.Errorf("%v %+v after %d requests", err, resp, len(srv.Requests()))
		}
	})
}
