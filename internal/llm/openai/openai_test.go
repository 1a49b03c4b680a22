package openai

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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

type setup struct {
	name, model, key, path string
	sleeps                 *sleeps
}

func newProvider(t *testing.T, srv *ssetest.Server, s setup) *Provider {
	t.Helper()
	if s.model == "" {
		s.model = "gpt-4.1"
	}
	if s.path == "" {
		s.path = "/v1"
	}
	if s.sleeps == nil {
		s.sleeps = &sleeps{}
	}
	p, err := New(llm.Config{
		Name:        s.name,
		Model:       s.model,
		APIKey:      s.key,
		BaseURL:     srv.URL + s.path,
		MaxTokens:   2048,
		Temperature: 0.2,
		Pricing:     llm.LookupPricing(nil, s.model, false),
		Retry:       llm.RetryPolicy{MaxAttempts: 3, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, Sleep: s.sleeps.sleep},
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

var hi = &llm.Request{Messages: []llm.Message{userText("hi")}}

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

func llmError(t *testing.T, err error, provider string) *llm.Error {
	t.Helper()
	e, ok := errors.AsType[*llm.Error](err)
	if !ok {
		t.Fatalf("error %v (%T) is not an *llm.Error", err, err)
	}
	if e.Provider != provider {
		t.Errorf("error names provider %q, want %q", e.Provider, provider)
	}
	return e
}

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

func TestText(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
	evs, err := collect(t, newProvider(t, srv, setup{key: "sk-test"}), hi)
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Event{
		{Kind: llm.EventText, Text: "Hello"},
		{Kind: llm.EventText, Text: ", world!"},
		// prompt_tokens includes the 1024 cached ones: 195×$2 + 1024×$0.5 + 10×$8.
		{Kind: llm.EventUsage, Usage: llm.Usage{InputTokens: 195, CacheReadTokens: 1024, OutputTokens: 10, Cost: 982}},
		{Kind: llm.EventStop, StopReason: llm.StopEndTurn},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestRequestShape(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
	req := &llm.Request{
		System:  "You are Astrid.",
		Summary: "Earlier: the build was fixed.",
		Tools: []llm.Tool{
			{Name: "read_file", Description: "Read a file.", InputSchema: json.RawMessage(`{"type":"object","properties":{"file_path":{"type":"string"}},"required":["file_path"]}`)},
			{Name: "list_directory"},
		},
		Messages: []llm.Message{
			{Role: llm.RoleUser, Parts: []llm.Part{
				{Kind: llm.PartText, Text: "What is this?"},
				{Kind: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}}},
			}},
			{Role: llm.RoleAssistant, Parts: []llm.Part{
				{Kind: llm.PartReasoning, Text: "not sent"},
				{Kind: llm.PartText, Text: "Checking."},
				{Kind: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "call_1", Name: "read_file", Arguments: json.RawMessage(`{"file_path":"a.go"}`)}},
				{Kind: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "call_2", Name: "list_directory"}},
			}},
			{Role: llm.RoleUser, Parts: []llm.Part{
				{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "call_1", Content: "package a"}},
				{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "call_2", Content: "permission denied", IsError: true}},
				{Kind: llm.PartText, Text: "Go on."},
			}},
		},
	}
	if _, err := collect(t, newProvider(t, srv, setup{key: "sk-test"}), req); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer sk-test" {
		t.Errorf("request %s with Authorization %q", r.Path, r.Header.Get("Authorization"))
	}
	want := map[string]any{
		"model":          "gpt-4.1",
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
		"max_tokens":     float64(2048),
		"temperature":    0.2,
		"tools": []any{
			map[string]any{"type": "function", "function": map[string]any{"name": "read_file", "description": "Read a file.",
				"parameters": map[string]any{"type": "object", "properties": map[string]any{"file_path": map[string]any{"type": "string"}}, "required": []any{"file_path"}}}},
			map[string]any{"type": "function", "function": map[string]any{"name": "list_directory",
				"parameters": map[string]any{"type": "object", "properties": map[string]any{}}}},
		},
		"messages": []any{
			map[string]any{"role": "system", "content": "You are Astrid."},
			map[string]any{"role": "system", "content": "Earlier: the build was fixed."},
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "text", "text": "What is this?"},
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64,iVBORw=="}},
			}},
			map[string]any{"role": "assistant", "content": "Checking.", "tool_calls": []any{
				map[string]any{"id": "call_1", "type": "function", "function": map[string]any{"name": "read_file", "arguments": `{"file_path":"a.go"}`}},
				map[string]any{"id": "call_2", "type": "function", "function": map[string]any{"name": "list_directory", "arguments": "{}"}},
			}},
			map[string]any{"role": "tool", "tool_call_id": "call_1", "content": "package a"},
			map[string]any{"role": "tool", "tool_call_id": "call_2", "content": "Error: permission denied"},
			map[string]any{"role": "user", "content": "Go on."},
		},
	}
	if diff := cmp.Diff(want, r.JSON(t)); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
}

func TestOpenAIItselfGetsMaxCompletionTokens(t *testing.T) {
	// Only the request is of interest; the fake server stands in for api.openai.com.
	p, err := New(llm.Config{Model: "gpt-5", APIKey: "k", BaseURL: "https://api.openai.com/v1"})
	if err != nil {
		t.Fatal(err)
	}
	params, _, err := p.params(hi)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(params)
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["max_completion_tokens"] != float64(llm.DefaultMaxTokens) || m["max_tokens"] != nil || m["temperature"] != nil {
		t.Errorf("params %s", b)
	}
}

func TestAPIKeyAndLoopback(t *testing.T) {
	if _, err := New(llm.Config{Model: "gpt-4.1", BaseURL: "https://api.openai.com/v1"}); err == nil {
		t.Error("remote URL without key accepted")
	} else if e := llmError(t, err, "openai"); e.Kind != llm.KindAuth {
		t.Errorf("error %v", e)
	}
	if _, err := New(llm.Config{Name: "zai", Model: "glm-4.6"}); err == nil || !strings.Contains(err.Error(), "ZAI_API_KEY") {
		t.Errorf("zai without key: %v", err)
	}
	t.Run("loopback without key sends none", func(t *testing.T) {
		srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
		if _, err := collect(t, newProvider(t, srv, setup{model: "llama3.2"}), hi); err != nil {
			t.Fatal(err)
		}
		if v, ok := srv.Requests()[0].Header["Authorization"]; ok {
			t.Errorf("Authorization %q sent to a loopback server without a configured key", v)
		}
	})
	t.Run("loopback with key sends it", func(t *testing.T) {
		srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
		if _, err := collect(t, newProvider(t, srv, setup{model: "llama3.2", key: "lm-studio"}), hi); err != nil {
			t.Fatal(err)
		}
		if v := srv.Requests()[0].Header.Get("Authorization"); v != "Bearer lm-studio" {
			t.Errorf("Authorization %q", v)
		}
	})
	t.Run("environment is not read", func(t *testing.T) {
		t.Setenv("OPENAI_API_KEY", "sk-from-env")
		t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
		srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
		if _, err := collect(t, newProvider(t, srv, setup{model: "llama3.2"}), hi); err != nil {
			t.Fatal(err)
		}
		if v := srv.Requests()[0].Header.Get("Authorization"); v != "" {
			t.Errorf("Authorization %q taken from the environment", v)
		}
	})
}

func TestLocalModelIsFree(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))})
	p, err := New(llm.Config{Model: "qwen3:8b", BaseURL: srv.URL + "/v1", HTTPClient: srv.Client(),
		Pricing: llm.LookupPricing(nil, "qwen3:8b", llm.IsLoopbackURL(srv.URL))})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := llm.Collect(p.Stream(t.Context(), hi))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.Cost != 0 || resp.Usage.InputTokens != 195 {
		t.Errorf("usage %+v", resp.Usage)
	}
	if p.EstimateCost(hi) != 0 {
		t.Errorf("estimate %d for a local model", p.EstimateCost(hi))
	}
}

func TestToolCallSplitArguments(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "tool_call.sse"))})
	evs, err := collect(t, newProvider(t, srv, setup{key: "k"}), hi)
	if err != nil {
		t.Fatal(err)
	}
	start := llm.ToolCall{ID: "call_DdmO9pD3xa9XTPNJ32zg2hcA", Name: "read_file"}
	end := start
	end.Arguments = json.RawMessage(`{"file_path":"src/main.go"}`)
	want := []llm.Event{
		{Kind: llm.EventToolCallStart, ToolCall: start},
		{Kind: llm.EventToolCallDelta, Text: `{"`},
		{Kind: llm.EventToolCallDelta, Text: `file_path`},
		{Kind: llm.EventToolCallDelta, Text: `":"`},
		{Kind: llm.EventToolCallDelta, Text: `src/main`},
		{Kind: llm.EventToolCallDelta, Text: `.go"}`},
		{Kind: llm.EventToolCallEnd, ToolCall: end},
		{Kind: llm.EventUsage, Usage: llm.Usage{InputTokens: 310, OutputTokens: 18, Cost: 310*2 + 18*8}},
		{Kind: llm.EventStop, StopReason: llm.StopToolUse},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestParallelToolCalls(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "parallel_tools.sse"))})
	evs, err := collect(t, newProvider(t, srv, setup{key: "k", model: "gpt-4o"}), hi)
	if err != nil {
		t.Fatal(err)
	}
	var ends []llm.Event
	for _, ev := range evs {
		if ev.Kind == llm.EventToolCallEnd {
			ends = append(ends, ev)
		}
	}
	want := []llm.Event{
		{Kind: llm.EventToolCallEnd, Index: 0, ToolCall: llm.ToolCall{ID: "call_A", Name: "glob", Arguments: json.RawMessage(`{"pattern": "**/*.go"}`)}},
		{Kind: llm.EventToolCallEnd, Index: 1, ToolCall: llm.ToolCall{ID: "call_B", Name: "list_directory", Arguments: json.RawMessage(`{"path": "."}`)}},
	}
	if diff := cmp.Diff(want, ends); diff != "" {
		t.Errorf("tool call ends (-want +got):\n%s", diff)
	}
	// gpt-4o: 400×$2.5 + 40×$10.
	if u := evs[len(evs)-2].Usage; u.Cost != 1400 {
		t.Errorf("usage %+v", u)
	}
}

func TestOllamaWholeToolCall(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "ollama_tool.sse"))})
	resp, err := llm.Collect(newProvider(t, srv, setup{model: "qwen3:8b"}).Stream(t.Context(), hi))
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.ToolCall{{ID: "call_wq2nbq4g", Name: "read_file", Arguments: json.RawMessage(`{"file_path":"go.mod"}`)}}
	if diff := cmp.Diff(want, resp.ToolCalls); diff != "" {
		t.Errorf("tool calls (-want +got):\n%s", diff)
	}
	if resp.StopReason != llm.StopToolUse {
		t.Errorf("stop reason %q", resp.StopReason)
	}
	if resp.Usage.InputTokens != 180 || resp.Usage.OutputTokens != 22 || resp.Usage.Estimated {
		t.Errorf("usage %+v", resp.Usage)
	}
}

func TestZAIReasoning(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "zai_reasoning.sse"))})
	p := newProvider(t, srv, setup{name: "zai", model: "glm-4.6", key: "zai-key", path: "/api/paas/v4"})
	evs, err := collect(t, p, &llm.Request{Messages: []llm.Message{userText("你好")}, ThinkingBudget: 1024})
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Event{
		{Kind: llm.EventReasoning, Text: "The user"},
		{Kind: llm.EventReasoning, Text: " greets me."},
		{Kind: llm.EventReasoningEnd},
		{Kind: llm.EventText, Text: "你好"},
		{Kind: llm.EventText, Text: "！"},
		// 800×$0.6 + 200 cached×$0.11 + 50×$2.2.
		{Kind: llm.EventUsage, Usage: llm.Usage{InputTokens: 800, CacheReadTokens: 200, OutputTokens: 50, Cost: 612}},
		{Kind: llm.EventStop, StopReason: llm.StopEndTurn},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	r := srv.Requests()[0]
	if r.Path != "/api/paas/v4/chat/completions" {
		t.Errorf("path %q", r.Path)
	}
	body := r.JSON(t)
	if diff := cmp.Diff(map[string]any{"type": "enabled"}, body["thinking"]); diff != "" {
		t.Errorf("thinking (-want +got):\n%s", diff)
	}
	if _, ok := body["stream_options"]; ok {
		t.Error("stream_options sent to Z.AI")
	}
	if r.Header.Get("Authorization") != "Bearer zai-key" {
		t.Errorf("Authorization %q", r.Header.Get("Authorization"))
	}
}

func TestUnicodeSplitAcrossChunks(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Pieces(ssetest.File(t, "zai_reasoning.sse"), 2)})
	resp, err := llm.Collect(newProvider(t, srv, setup{name: "zai", model: "glm-4.6", key: "k"}).Stream(t.Context(), hi))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "你好！" || resp.Reasoning[0].Text != "The user greets me." {
		t.Errorf("text %q, reasoning %+v", resp.Text, resp.Reasoning)
	}
}

func TestStreamCut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []ssetest.Chunk
		kind   llm.ErrorKind
		msg    string
	}{
		{"connection reset mid tool call", append(upTo(t, "tool_call.sse", `"file_path"`), ssetest.Chunk{Cut: true}), llm.KindNetwork, ""},
		{"clean EOF mid tool call", upTo(t, "tool_call.sse", `"file_path"`), llm.KindProtocol, "middle of tool call call_DdmO9pD3xa9XTPNJ32zg2hcA (read_file)"},
		{"clean EOF before finish", upTo(t, "text.sse", `"Hello"`), llm.KindProtocol, "before a finish_reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := ssetest.New(t, ssetest.Response{Chunks: tc.chunks})
			evs, err := collect(t, newProvider(t, srv, setup{key: "k"}), hi)
			e := llmError(t, err, "openai")
			if e.Kind != tc.kind || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("error %v, want kind %s containing %q", e, tc.kind, tc.msg)
			}
			if len(evs) == 0 {
				t.Error("no events before the cut")
			}
			for _, ev := range evs {
				if ev.Kind == llm.EventToolCallEnd || ev.Kind == llm.EventStop {
					t.Errorf("got %v from a broken stream", ev.Kind)
				}
			}
			if n := len(srv.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestBadStreams(t *testing.T) {
	start := upTo(t, "tool_call.sse", `"name":"read_file"`)
	chunk := func(delta string, finish string) string {
		f := "null"
		if finish != "" {
			f = `"` + finish + `"`
		}
		return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + f + "}]}\n\n"
	}
	for _, tc := range []struct {
		name string
		tail string
		kind llm.ErrorKind
		msg  string
	}{
		{"invalid tool JSON", chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"file_path\": \"a\""}}]}`, "") + chunk(`{}`, "tool_calls"), llm.KindProtocol, "not a valid JSON object"},
		{"malformed chunk", "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\n\n", llm.KindProtocol, "malformed event stream"},
		{"tool call without name", chunk(`{"tool_calls":[{"index":3,"id":"call_x","function":{"arguments":"{}"}}]}`, ""), llm.KindProtocol, "without a function name"},
		{"error chunk", `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error"}}` + "\n\n", llm.KindServer, "server had an error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunks := append(append([]ssetest.Chunk(nil), start...), ssetest.Chunk{Data: tc.tail})
			srv := ssetest.New(t, ssetest.Response{Chunks: chunks})
			evs, err := collect(t, newProvider(t, srv, setup{key: "k"}), hi)
			e := llmError(t, err, "openai")
			if e.Kind != tc.kind || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("error %v, want %s containing %q", e, tc.kind, tc.msg)
			}
			for _, ev := range evs {
				if ev.Kind == llm.EventToolCallEnd {
					t.Errorf("broken tool call delivered as complete: %+v", ev)
				}
			}
		})
	}
}

func TestNotAnEventStream(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Body: `{"id":"x","object":"chat.completion","choices":[]}`})
	_, err := collect(t, newProvider(t, srv, setup{key: "k"}), hi)
	if e := llmError(t, err, "openai"); e.Kind != llm.KindProtocol || !strings.Contains(e.Message, "application/json") {
		t.Errorf("error %v", e)
	}
}

func TestHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		name, provider, file string
		status               int
		kind                 llm.ErrorKind
		msg                  string
	}{
		{"openai", "openai", "error_400.json", 400, llm.KindBadRequest, "must be a response to a preceeding message"},
		{"openai", "openai", "error_401.json", 401, llm.KindAuth, "Incorrect API key provided"},
		{"openai", "openai", "", 403, llm.KindAuth, "Forbidden"},
		{"openai", "openai", "error_404.json", 404, llm.KindNotFound, "The model `gpt-9` does not exist"},
		{"openai", "openai", "ollama_404.json", 404, llm.KindNotFound, `model "llama9" not found, try pulling it first`},
		{"zai", "zai", "zai_unknown_model.json", 400, llm.KindNotFound, "Unknown Model"},
	} {
		t.Run(tc.provider+"/"+tc.file, func(t *testing.T) {
			body := ""
			if tc.file != "" {
				body = ssetest.File(t, tc.file)
			}
			srv := ssetest.New(t, ssetest.Response{Status: tc.status, Body: body})
			_, err := collect(t, newProvider(t, srv, setup{name: tc.name, key: "sk-secret"}), hi)
			e := llmError(t, err, tc.provider)
			if e.Status != tc.status || e.Kind != tc.kind || e.Retryable || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("error %+v, want %d %s containing %q", e, tc.status, tc.kind, tc.msg)
			}
			if strings.Contains(e.Error(), "sk-secret") {
				t.Error("error text contains the API key")
			}
			if n := len(srv.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	ok := ssetest.Response{Chunks: ssetest.Events(ssetest.File(t, "text.sse"))}
	t.Run("429 with an HTTP-date retry-after", func(t *testing.T) {
		date := time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)
		srv := ssetest.New(t, ssetest.Response{Status: 429, Header: map[string]string{"Retry-After": date}, Body: ssetest.File(t, "error_429.json")}, ok)
		s := &sleeps{}
		resp, err := llm.Collect(newProvider(t, srv, setup{key: "k", sleeps: s}).Stream(t.Context(), hi))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != "Hello, world!" || len(s.d) != 1 || s.d[0] < time.Second || s.d[0] > 3*time.Second {
			t.Errorf("text %q after waits %v", resp.Text, s.d)
		}
	})
	t.Run("retry-after-ms", func(t *testing.T) {
		srv := ssetest.New(t, ssetest.Response{Status: 429, Header: map[string]string{"Retry-After-Ms": "1500", "Retry-After": "2"}, Body: ssetest.File(t, "error_429.json")}, ok)
		s := &sleeps{}
		if _, err := llm.Collect(newProvider(t, srv, setup{key: "k", sleeps: s}).Stream(t.Context(), hi)); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]time.Duration{1500 * time.Millisecond}, s.d); diff != "" {
			t.Errorf("waits (-want +got):\n%s", diff)
		}
	})
	t.Run("5xx then success", func(t *testing.T) {
		srv := ssetest.New(t, ssetest.Response{Status: 500, Body: `{"error":{"message":"oops","type":"server_error"}}`},
			ssetest.Response{Status: 503, Body: "upstream unavailable"}, ok)
		if _, err := llm.Collect(newProvider(t, srv, setup{key: "k"}).Stream(t.Context(), hi)); err != nil {
			t.Fatal(err)
		}
		if n := len(srv.Requests()); n != 3 {
			t.Errorf("%d requests", n)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := ssetest.New(t)
		p := newProvider(t, srv, setup{key: "k"})
		srv.Close()
		_, err := collect(t, p, hi)
		if e := llmError(t, err, "openai"); e.Kind != llm.KindNetwork || !e.Retryable {
			t.Errorf("error %v", e)
		}
	})
}

func TestMissingUsageIsEstimated(t *testing.T) {
	var chunks []ssetest.Chunk
	for _, c := range ssetest.Events(ssetest.File(t, "text.sse")) {
		if !strings.Contains(c.Data, `"usage":{`) {
			chunks = append(chunks, c)
		}
	}
	srv := ssetest.New(t, ssetest.Response{Chunks: chunks})
	resp, err := llm.Collect(newProvider(t, srv, setup{key: "k"}).Stream(t.Context(), hi))
	if err != nil {
		t.Fatal(err)
	}
	// "hi" is one token, "Hello, world!" four.
	if want := (llm.Usage{InputTokens: 1, OutputTokens: 4, Cost: 2 + 32, Estimated: true}); resp.Usage != want {
		t.Errorf("usage %+v, want %+v", resp.Usage, want)
	}
}

func TestStreamingDoesNotBuffer(t *testing.T) {
	gate := make(chan struct{})
	all := ssetest.Events(ssetest.File(t, "text.sse"))
	first := upTo(t, "text.sse", `"Hello"`)
	rest := append([]ssetest.Chunk(nil), all[len(first):]...)
	rest[0].Wait = gate
	srv := ssetest.New(t, ssetest.Response{Chunks: append(first, rest...)})
	n := 0
	for ev, err := range newProvider(t, srv, setup{key: "k"}).Stream(t.Context(), hi) {
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if ev.Text != "Hello" {
				t.Fatalf("first event %+v", ev)
			}
			close(gate)
		}
		n++
	}
	if n != 4 {
		t.Errorf("%d events", n)
	}
}

func TestCancelClosesConnection(t *testing.T) {
	srv := ssetest.New(t, ssetest.Response{Chunks: append(upTo(t, "text.sse", `"Hello"`), ssetest.Chunk{Block: true})})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	start := time.Now()
	var err error
	for ev, e := range newProvider(t, srv, setup{key: "k"}).Stream(ctx, hi) {
		if e != nil {
			err = e
			break
		}
		if ev.Kind == llm.EventText {
			go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		}
	}
	if e := llmError(t, err, "openai"); e.Kind != llm.KindCanceled || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
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
