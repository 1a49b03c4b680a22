package providers

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/llm/internal/ssetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var retry = config.Retry{MaxAttempts: 2, InitialBackoffMS: 1, MaxBackoffMS: 10}

func user(s string) *llm.Request {
	return &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: s}}}}}
}

const anthropicText = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":1000,\"output_tokens\":1}}}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":100}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

const openaiText = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}` + "\n\n" +
	`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
	`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}}` + "\n\n" +
	"data: [DONE]\n\n"

func TestProviders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		model    config.Model
		body     string
		provider string
		cost     int64
	}{
		// claude-haiku-4-5: 1000×$1 + 100×$5.
		{"claude alias", config.Model{Provider: "claude", Model: "claude-haiku-4-5", APIKey: "k"}, anthropicText, "anthropic", 1500},
		{"anthropic", config.Model{Provider: "Anthropic", Model: "claude-haiku-4-5", APIKey: "k"}, anthropicText, "anthropic", 1500},
		// gpt-4o-mini: 1000×$0.15 + 100×$0.6, even on a loopback URL (a known model).
		{"openai", config.Model{Provider: "openai", Model: "gpt-4o-mini"}, openaiText, "openai", 210},
		// A local model nobody priced is free.
		{"ollama", config.Model{Provider: "openai", Model: "qwen3:8b"}, openaiText, "openai", 0},
		// Configured prices win over the built-in table.
		{"configured price", config.Model{Provider: "openai", Model: "gpt-4o-mini", Pricing: map[string]config.Pricing{"gpt-4o-mini": {InputPerMTok: 1, OutputPerMTok: 2}}}, openaiText, "openai", 1200},
		// glm-4.6: 1000×$0.6 + 100×$2.2.
		{"zai", config.Model{Provider: "zai", Model: "glm-4.6", APIKey: "k"}, openaiText, "zai", 820},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := ssetest.New(t, ssetest.Response{Chunks: ssetest.Events(tc.body)})
			tc.model.APIURL = srv.URL
			if tc.provider != "anthropic" {
				tc.model.APIURL += "/v1"
			}
			p, err := New(tc.model, retry, WithHTTPClient(srv.Client()))
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != tc.provider || p.Model() != tc.model.Model {
				t.Errorf("provider %s/%s", p.Name(), p.Model())
			}
			r, err := llm.Collect(p.Stream(t.Context(), user("hi")))
			if err != nil {
				t.Fatal(err)
			}
			if r.Text != "hi" || int64(r.Usage.Cost) != tc.cost {
				t.Errorf("text %q, usage %+v, want cost %d", r.Text, r.Usage, tc.cost)
			}
		})
	}
}

func TestRetryConfigIsUsed(t *testing.T) {
	overloaded := ssetest.Response{Status: 529, Body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}
	srv := ssetest.New(t, overloaded, overloaded)
	p, err := New(config.Model{Provider: "anthropic", Model: "claude-haiku-4-5", APIKey: "k", APIURL: srv.URL}, retry, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = llm.Collect(p.Stream(t.Context(), user("hi")))
	if e, ok := errors.AsType[*llm.Error](err); !ok || e.Kind != llm.KindOverloaded {
		t.Errorf("error %v", err)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("%d requests, want max_attempts = 2", n)
	}
}

func TestReplay(t *testing.T) {
	abs, err := filepath.Abs("testdata/demo.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"testdata/demo.jsonl", "file://" + abs} {
		p, err := New(config.Model{Provider: "replay", Model: "claude-sonnet-4-5", APIURL: u}, retry)
		if err != nil {
			t.Fatal(err)
		}
		r, err := llm.Collect(p.Stream(t.Context(), user("q")))
		if err != nil || len(r.ToolCalls) != 2 || p.Name() != "replay" {
			t.Errorf("%s: %v %+v", u, err, r)
		}
	}
	for _, u := range []string{"", "testdata/missing.jsonl"} {
		if _, err := New(config.Model{Provider: "replay", APIURL: u}, retry); err == nil {
			t.Errorf("replay of %q accepted", u)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		model config.Model
		msg   string
		noKey bool
	}{
		{config.Model{Provider: "anthropic", Model: "claude-sonnet-4-5"}, "ANTHROPIC_API_KEY", true},
		{config.Model{Provider: "openai", Model: "gpt-4.1"}, "OPENAI_API_KEY", true},
		{config.Model{Provider: "zai", Model: "glm-4.6"}, "ZAI_API_KEY", true},
		{config.Model{Provider: "gemini", Model: "x"}, `unknown model provider "gemini"`, false},
		{config.Model{Model: "x"}, "no model provider configured", false},
		{config.Model{Provider: "openai", APIKey: "k"}, "no model configured", false},
		{config.Model{Provider: "openai", Model: "m", APIKey: "k", APIURL: "ftp://example.com"}, "invalid base URL", false},
		{config.Model{Provider: "anthropic", APIKey: "k"}, "no model configured", false},
		{config.Model{Provider: "anthropic", Model: "m", APIKey: "k", APIURL: "ftp://example.com"}, "invalid base URL", false},
		{config.Model{Provider: "anthropic", Model: "m", APIKey: "k", APIURL: "https:///v1"}, "invalid base URL", false},
		{config.Model{Provider: "anthropic", Model: "m", APIURL: "https://llm.example.com"}, "ANTHROPIC_API_KEY", true},
	} {
		_, err := New(tc.model, retry)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || errors.Is(err, llm.ErrNoAPIKey) != tc.noKey {
			t.Errorf("New(%+v) = %v, want an error containing %q (no key: %v)", tc.model, err, tc.msg, tc.noKey)
		}
	}
}

func TestFirstRunOffersOllama(t *testing.T) {
	ollama := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/tags":
			w.Write([]byte(`{"models":[{"name":"qwen3:8b","model":"qwen3:8b","size":5225388164}]}`))
		case "/v1/chat/completions":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte(openaiText))
		default:
			http.NotFound(w, r)
		}
	}))
	defer ollama.Close()
	m := config.Model{Provider: "anthropic", Model: "claude-sonnet-4-5"}
	_, err := New(m, retry)
	if !errors.Is(err, llm.ErrNoAPIKey) {
		t.Fatalf("error %v", err)
	}
	models, ok := llm.DetectOllama(t.Context(), ollama.URL)
	if !ok || len(models) != 1 {
		t.Fatalf("DetectOllama = %v, %v", models, ok)
	}
	m = Ollama(m, models[0])
	if m.APIURL != "http://127.0.0.1:11434/v1" || m.Provider != "openai" || m.Model != "qwen3:8b" {
		t.Errorf("Ollama config %+v", m)
	}
	m.APIURL = ollama.URL + "/v1" // the fake server stands in for 127.0.0.1:11434
	p, err := New(m, retry, WithHTTPClient(ollama.Client()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := llm.Collect(p.Stream(t.Context(), user("hi")))
	if err != nil || r.Text != "hi" || r.Usage.Cost != 0 {
		t.Errorf("%v %+v", err, r)
	}
	ollama.CloseClientConnections()
}
