package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{http.Header{"Retry-After": {"7"}}, 7 * time.Second, true},
		{http.Header{"Retry-After": {"0.5"}}, 500 * time.Millisecond, true},
		{http.Header{"Retry-After": {"Sun, 22 Nov 2026 10:00:30 GMT"}}, 30 * time.Second, true},
		{http.Header{"Retry-After": {"Sun, 22 Nov 2026 09:00:00 GMT"}}, 0, true},
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, 250 * time.Millisecond, true},
		{http.Header{"Retry-After": {"soon"}}, 0, false},
		{http.Header{"Retry-After": {"-3"}}, 0, false},
		{http.Header{"Retry-After": {"1e300"}}, 0, false},
		{http.Header{}, 0, false},
		{nil, 0, false},
	} {
		got, ok := ParseRetryAfter(tc.h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%v) = %v, %v; want %v, %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for attempt, base := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d, ok := p.Backoff(attempt, 0)
			if !ok || d < base/2 || d > base {
				t.Fatalf("Backoff(%d) = %v, %v; want within [%v, %v]", attempt, d, ok, base/2, base)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Backoff(%d) has no jitter", attempt)
		}
	}
	if d, ok := p.Backoff(1, 700*time.Millisecond); d != 700*time.Millisecond || !ok {
		t.Errorf("retry-after not honoured: %v %v", d, ok)
	}
	if _, ok := p.Backoff(1, 2*time.Second); ok {
		t.Error("a retry-after beyond max_backoff is retried")
	}
	if d, ok := (RetryPolicy{}).Backoff(3, 0); d != 0 || !ok {
		t.Errorf("zero policy: %v %v", d, ok)
	}
	got := NewRetryPolicy(config.Retry{MaxAttempts: 0, InitialBackoffMS: 500, MaxBackoffMS: 30000})
	if got.MaxAttempts != 1 || got.InitialBackoff != 500*time.Millisecond || got.MaxBackoff != 30*time.Second {
		t.Errorf("NewRetryPolicy = %+v", got)
	}
}

// script returns an attempt function that plays one outcome per call.
func script(outcomes ...[]any) (func(context.Context) iter.Seq2[Event, error], *int) {
	calls := 0
	return func(context.Context) iter.Seq2[Event, error] {
		out := outcomes[calls]
		calls++
		return func(yield func(Event, error) bool) {
			for _, o := range out {
				switch o := o.(type) {
				case error:
					yield(Event{}, o)
					return
				case Event:
					if !yield(o, nil) {
						return
					}
				}
			}
		}
	}, &calls
}

func TestRetryStream(t *testing.T) {
	overloaded := &Error{Provider: "p", Kind: KindOverloaded, Retryable: true}
	auth := &Error{Provider: "p", Kind: KindAuth}
	text := Event{Kind: EventText, Text: "a"}
	stop := Event{Kind: EventStop}
	var waits []time.Duration
	p := RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Second,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	for _, tc := range []struct {
		name     string
		outcomes [][]any
		calls    int
		events   int
		err      error
	}{
		{"success", [][]any{{text, stop}}, 1, 2, nil},
		{"retried until success", [][]any{{overloaded}, {overloaded}, {text, stop}}, 3, 2, nil},
		{"attempts exhausted", [][]any{{overloaded}, {overloaded}, {overloaded}}, 3, 0, overloaded},
		{"not retryable", [][]any{{auth}}, 1, 0, auth},
		{"no retry after an event", [][]any{{text, overloaded}}, 1, 1, overloaded},
		{"a plain error is mapped", [][]any{{io.ErrUnexpectedEOF}, {text, stop}}, 2, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attempt, calls := script(tc.outcomes...)
			events := 0
			var err error
			for _, e := range p.Stream(t.Context(), "p", attempt) {
				if e != nil {
					err = e
					break
				}
				events++
			}
			if *calls != tc.calls || events != tc.events || err != tc.err {
				t.Errorf("%d calls, %d events, error %v; want %d, %d, %v", *calls, events, err, tc.calls, tc.events, tc.err)
			}
		})
	}
	t.Run("cancelled during the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		p := RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Hour, MaxBackoff: time.Hour}
		attempt, calls := script([]any{overloaded}, []any{stop})
		go func() { time.Sleep(10 * time.Millisecond); cancel() }()
		start := time.Now()
		var err error
		for _, e := range p.Stream(ctx, "p", attempt) {
			err = e
		}
		if !errors.Is(err, context.Canceled) || *calls != 1 || time.Since(start) > 5*time.Second {
			t.Errorf("error %v after %d calls", err, *calls)
		}
	})
}

func TestErrorFromResponse(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		kind   ErrorKind
		retry  bool
		msg    string
	}{
		{529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, KindOverloaded, true, "Overloaded"},
		{500, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, KindServer, true, "Internal server error"},
		{503, `<html>Service Unavailable</html>`, KindOverloaded, true, "<html>Service Unavailable</html>"},
		{502, ``, KindServer, true, "Bad Gateway"},
		{429, `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`, KindRateLimit, true, "slow down"},
		{401, `{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}`, KindAuth, false, "bad key"},
		{403, `{"type":"error","error":{"type":"permission_error","message":"no access"}}`, KindAuth, false, "no access"},
		{404, `{"error":"model \"x\" not found"}`, KindNotFound, false, `model "x" not found`},
		{413, `{"type":"error","error":{"type":"request_too_large","message":"too big"}}`, KindBadRequest, false, "too big"},
		{422, `{"message":"unprocessable"}`, KindBadRequest, false, "unprocessable"},
		{400, "line one\n\tline two", KindBadRequest, false, "line one line two"},
		{408, ``, KindServer, true, "Request Timeout"},
	} {
		e := ErrorFromResponse("p", tc.status, nil, []byte(tc.body), time.Now())
		if e.Kind != tc.kind || e.Retryable != tc.retry || e.Message != tc.msg || e.Status != tc.status || e.Provider != "p" {
			t.Errorf("%d %s: %+v", tc.status, tc.body, e)
		}
	}
	e := ErrorFromResponse("p", 400, nil, []byte(strings.Repeat("é", 2000)), time.Now())
	if len(e.Message) > maxMessage+len("…") || !strings.HasSuffix(e.Message, "…") || !strings.HasPrefix(e.Error(), "p: bad_request (HTTP 400): éé") {
		t.Errorf("long body: %d bytes, %q…", len(e.Message), e.Error()[:40])
	}
	e = ErrorFromResponse("p", 429, http.Header{"Retry-After": {"3"}}, nil, time.Now())
	if e.RetryAfter != 3*time.Second {
		t.Errorf("RetryAfter %v", e.RetryAfter)
	}
	if s := StreamError("p", []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)); s.Kind != KindOverloaded || !s.Retryable || s.Status != 0 {
		t.Errorf("stream error %+v", s)
	}
	if s := StreamError("p", []byte(`{"error":{"message":"boom"}}`)); s.Kind != KindServer || s.Message != "boom" {
		t.Errorf("stream error %+v", s)
	}
}

func TestErrorFromGo(t *testing.T) {
	ctx := t.Context()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		ctx   context.Context
		err   error
		kind  ErrorKind
		retry bool
	}{
		{cancelled, errors.New("read on closed body"), KindCanceled, false},
		{ctx, fmt.Errorf("get: %w", context.DeadlineExceeded), KindCanceled, false},
		{ctx, io.ErrUnexpectedEOF, KindNetwork, true},
		{ctx, &net.OpError{Op: "read", Err: syscall.ECONNRESET}, KindNetwork, true},
		{ctx, errors.New("invalid character 'x' looking for beginning of value"), KindProtocol, false},
	} {
		e := ErrorFromGo(tc.ctx, "p", tc.err)
		if e.Kind != tc.kind || e.Retryable != tc.retry {
			t.Errorf("ErrorFromGo(%v) = %+v", tc.err, e)
		}
	}
	orig := &Error{Provider: "x", Kind: KindAuth}
	if ErrorFromGo(cancelled, "p", fmt.Errorf("w: %w", orig)) != orig {
		t.Error("an *Error is not passed through")
	}
	if e := ErrorFromGo(cancelled, "p", errors.New("x")); !errors.Is(e, context.Canceled) {
		t.Error("a cancelled error does not unwrap to context.Canceled")
	}
}

func TestLookupPricing(t *testing.T) {
	configured := map[string]config.Pricing{
		"claude-sonnet-4-5": {InputPerMTok: 3, OutputPerMTok: 15, CacheReadPerMTok: 0.3, CacheWritePerMTok: 3.75},
		"my-model":          {InputPerMTok: 2, OutputPerMTok: 4},
	}
	for _, tc := range []struct {
		model string
		local bool
		want  Pricing
	}{
		{"claude-sonnet-4-5", false, Pricing{3, 15, 0.3, 3.75, "config"}},
		{"my-model", false, Pricing{2, 4, 2, 2.5, "config"}},
		{"my-model", true, Pricing{2, 4, 2, 2.5, "config"}},
		{"claude-opus-4-1", false, Pricing{15, 75, 1.5, 18.75, "builtin"}},
		{"claude-haiku-4-5", false, Pricing{1, 5, 0.1, 1.25, "builtin"}},
		{"claude-sonnet-4-5-20250929", false, Pricing{3, 15, 0.3, 3.75, "builtin"}},
		{"claude-opus-4-1-20250805", false, Pricing{15, 75, 1.5, 18.75, "builtin"}},
		{"gpt-4o-mini-2024-07-18", false, Pricing{0.15, 0.6, 0.075, 0, "builtin"}},
		{"gpt-4o-2024-08-06", false, Pricing{2.5, 10, 1.25, 0, "builtin"}},
		{"gpt-4.1", true, Pricing{2, 8, 0.5, 0, "builtin"}},
		{"gpt-4.10", false, FallbackPricing},
		{"llama3.2:3b", true, Pricing{Source: "local"}},
		{"mystery-model", false, FallbackPricing},
	} {
		if got := LookupPricing(configured, tc.model, tc.local); got != tc.want {
			t.Errorf("LookupPricing(%q, local=%v) = %+v, want %+v", tc.model, tc.local, got, tc.want)
		}
	}
}

func TestCostAndEstimate(t *testing.T) {
	p := LookupPricing(nil, "claude-sonnet-4-5", false)
	// 1M input tokens at $3 is exactly 3,000,000 µ$.
	if c := p.Cost(Usage{InputTokens: 1_000_000}); c != 3_000_000 {
		t.Errorf("cost %d", c)
	}
	// A fraction of a micro-dollar rounds up: 1 cache read × $0.3.
	if c := p.Cost(Usage{CacheReadTokens: 1}); c != 1 {
		t.Errorf("cost %d", c)
	}
	req := &Request{
		System:  strings.Repeat("s", 400),
		Summary: strings.Repeat("m", 40),
		Tools:   []Tool{{Name: "read_file", Description: "Read.", InputSchema: json.RawMessage(`{"type":"object"}`)}},
		Messages: []Message{
			{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: strings.Repeat("u", 81)}, {Kind: PartImage, Image: &Image{MediaType: "image/png", Data: make([]byte, 1e6)}}}},
			{Role: RoleAssistant, Parts: []Part{{Kind: PartToolCall, ToolCall: &ToolCall{ID: "c1", Name: "read_file", Arguments: json.RawMessage(`{"file_path":"a"}`)}}}},
			{Role: RoleUser, Parts: []Part{{Kind: PartToolResult, ToolResult: &ToolResult{CallID: "c1", Content: "abcd"}}}},
		},
	}
	// 400+40 + (9+5+17) + 81 + (2+9+18) + (2+4) = 587 bytes → 147 tokens, plus one image.
	if n := EstimateTokens(req); n != 147+1600 {
		t.Errorf("EstimateTokens = %d", n)
	}
	// Input at the cache-write price, output at max tokens.
	if c := EstimateCost(req, p, 1000); c != budgetOf(1747*3.75+1000*15) {
		t.Errorf("EstimateCost = %d", c)
	}
	req.MaxTokens = 10
	if c := EstimateCost(req, p, 1000); c != budgetOf(1747*3.75+10*15) {
		t.Errorf("EstimateCost with MaxTokens = %d", c)
	}
	if c := EstimateCost(req, Pricing{Source: "local"}, 1000); c != 0 {
		t.Errorf("local EstimateCost = %d", c)
	}
}

func budgetOf(f float64) budget.Micros { return budget.Micros(math.Ceil(f)) }

func TestCheckArguments(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{``, `{}`, true},
		{"  \n", `{}`, true},
		{` {"a": [1, "é"]} `, `{"a": [1, "é"]}`, true},
		{`{"a": 1`, ``, false},
		{`{"a": 1}}`, ``, false},
		{`[1]`, ``, false},
		{`"s"`, ``, false},
		{`null`, ``, false},
		{`{"a": 1} {"b": 2}`, ``, false},
		{"{\"a\": \"\xff\"}", "{\"a\": \"\xff\"}", true}, // json.Valid accepts invalid UTF-8 in strings
	} {
		got, err := CheckArguments("p", ToolCall{ID: "c", Name: "t", Arguments: json.RawMessage(tc.in)})
		if (err == nil) != tc.ok || string(got) != tc.want {
			t.Errorf("CheckArguments(%q) = %q, %v", tc.in, got, err)
		}
		if err != nil {
			if e, ok := errors.AsType[*Error](err); !ok || e.Kind != KindProtocol || !strings.Contains(e.Message, "tool call c (t)") {
				t.Errorf("CheckArguments(%q) error %v", tc.in, err)
			}
		}
	}
	big := `{"a":"` + strings.Repeat("x", MaxToolArguments) + `"}`
	if _, err := CheckArguments("p", ToolCall{Arguments: json.RawMessage(big)}); err == nil {
		t.Error("oversized arguments accepted")
	}
}

func TestCollect(t *testing.T) {
	events := []Event{
		{Kind: EventReasoning, Text: "think "},
		{Kind: EventReasoning, Text: "hard"},
		{Kind: EventReasoningEnd, Signature: "sig"},
		{Kind: EventText, Text: "Hel"},
		{Kind: EventText, Text: "lo"},
		{Kind: EventToolCallStart, ToolCall: ToolCall{ID: "c", Name: "t"}},
		{Kind: EventToolCallDelta, Text: "{}"},
		{Kind: EventToolCallEnd, ToolCall: ToolCall{ID: "c", Name: "t", Arguments: json.RawMessage("{}")}},
		{Kind: EventUsage, Usage: Usage{InputTokens: 1, Cost: 3}},
		{Kind: EventStop, StopReason: StopToolUse},
	}
	seq := func(evs []Event, err error) iter.Seq2[Event, error] {
		return func(yield func(Event, error) bool) {
			for _, ev := range evs {
				if !yield(ev, nil) {
					return
				}
			}
			if err != nil {
				yield(Event{}, err)
			}
		}
	}
	r, err := Collect(seq(events, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &Response{
		Text:       "Hello",
		Reasoning:  []Part{{Kind: PartReasoning, Text: "think hard", Signature: "sig"}},
		ToolCalls:  []ToolCall{{ID: "c", Name: "t", Arguments: json.RawMessage("{}")}},
		Usage:      Usage{InputTokens: 1, Cost: 3},
		StopReason: StopToolUse,
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	msg := r.Message()
	if msg.Role != RoleAssistant || len(msg.Parts) != 3 || msg.Parts[0].Kind != PartReasoning || msg.Parts[1].Text != "Hello" || msg.Parts[2].ToolCall.ID != "c" {
		t.Errorf("message %+v", msg)
	}
	boom := &Error{Kind: KindNetwork}
	if r, err := Collect(seq(events[:4], boom)); err != boom || r.Text != "Hel" {
		t.Errorf("%v %+v", err, r)
	}
	if _, err := Collect(seq(events[:9], nil)); err == nil {
		t.Error("a stream without EventStop collected")
	}
}

func TestIsLoopbackURL(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:11434/v1": true,
		"http://127.1.2.3/":         true,
		"http://localhost:1234/v1":  true,
		"http://[::1]:8000/v1":      true,
		"https://api.openai.com/v1": false,
		"http://10.0.0.5:11434/v1":  false,
		"http://localhost.evil.com": false,
		"http://127.0.0.1.nip.io":   false,
		"::not a url":               false,
	} {
		if got := IsLoopbackURL(u); got != want {
			t.Errorf("IsLoopbackURL(%q) = %v", u, got)
		}
	}
}

func TestDetectOllama(t *testing.T) {
	tags := `{"models":[{"name":"qwen3:8b","model":"qwen3:8b","size":5225388164},{"name":"llama3.2:latest","model":"llama3.2:latest"}]}`
	var body = tags
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/tags" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	for _, base := range []string{srv.URL, srv.URL + "/", srv.URL + "/v1", srv.URL + "/v1/"} {
		models, ok := DetectOllama(t.Context(), base)
		if !ok || !cmp.Equal(models, []string{"qwen3:8b", "llama3.2:latest"}) {
			t.Errorf("DetectOllama(%q) = %v, %v", base, models, ok)
		}
	}
	for _, b := range []string{`{"models":[]}`, `not json`, `{"models":[{"name":""}]}`} {
		body = b
		if models, ok := DetectOllama(t.Context(), srv.URL); ok {
			t.Errorf("DetectOllama with %s = %v", b, models)
		}
	}
	if _, ok := DetectOllama(t.Context(), "http://192.0.2.1:11434"); ok {
		t.Error("a non-loopback URL was probed")
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	if _, ok := DetectOllama(t.Context(), dead.URL); ok {
		t.Error("a closed port answered")
	}
}

func TestResponseCheck(t *testing.T) {
	mw := ResponseCheck("p")
	respond := func(status int, ct, body string) func(*http.Request) (*http.Response, error) {
		return func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {ct}}, Body: io.NopCloser(strings.NewReader(body))}, nil
		}
	}
	req := httptest.NewRequest("POST", "/", nil)
	if resp, err := mw(req, respond(200, "text/event-stream; charset=utf-8", "data: x")); err != nil || resp == nil {
		t.Errorf("stream refused: %v", err)
	}
	_, err := mw(req, respond(200, "text/html", "<h1>captive portal</h1>"))
	if e, ok := errors.AsType[*Error](err); !ok || e.Kind != KindProtocol || !strings.Contains(e.Message, "captive portal") {
		t.Errorf("html accepted: %v", err)
	}
	_, err = mw(req, respond(401, "application/json", `{"error":{"message":"nope"}}`))
	if e, ok := errors.AsType[*Error](err); !ok || e.Kind != KindAuth || e.Message != "nope" {
		t.Errorf("401: %v", err)
	}
	netErr := errors.New("dial failed")
	if _, err := mw(req, func(*http.Request) (*http.Response, error) { return nil, netErr }); err != netErr {
		t.Errorf("transport error changed: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := &Config{MaxTokens: 100, Temperature: 0.7}
	temp := 0.1
	if c.MaxTokensFor(&Request{}) != 100 || c.MaxTokensFor(&Request{MaxTokens: 5}) != 5 || (&Config{}).MaxTokensFor(&Request{}) != DefaultMaxTokens {
		t.Error("MaxTokensFor")
	}
	if c.TemperatureFor(&Request{}) != 0.7 || c.TemperatureFor(&Request{Temperature: &temp}) != 0.1 {
		t.Error("TemperatureFor")
	}
	if EventToolCallEnd.String() != "tool_call_end" || EventKind(0).String() != "unknown" || EventKind(200).String() != "unknown" {
		t.Error("EventKind.String")
	}
}

func TestWatchStall(t *testing.T) {
	pr, pw := io.Pipe()
	body := WatchStall(pr, 50*time.Millisecond)
	go func() {
		for range 5 {
			pw.Write([]byte("x")) // one byte every 20ms keeps the stream alive
			time.Sleep(20 * time.Millisecond)
		}
	}()
	buf := make([]byte, 1)
	for range 5 {
		if _, err := body.Read(buf); err != nil {
			t.Fatalf("read while data flows: %v", err)
		}
	}
	start := time.Now()
	_, err := body.Read(buf)
	if se, ok := errors.AsType[*StallError](err); !ok || se.After != 50*time.Millisecond || time.Since(start) > 2*time.Second {
		t.Errorf("error %v after %v", err, time.Since(start))
	}
	if e := ErrorFromGo(t.Context(), "p", err); e.Kind != KindNetwork || !e.Retryable {
		t.Errorf("mapped to %+v", e)
	}
	body.Close()
	if b := WatchStall(pr, 0); b != io.ReadCloser(pr) {
		t.Error("a zero timeout wraps the body")
	}
}
