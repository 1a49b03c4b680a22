package anthropic

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"encoding/json"

	"github.com/astrid-runtime/astrid/internal/llm"
)

const benchDeltas = 1000

func benchStream(deltas int) string {
	var b strings.Builder
	b.WriteString(`event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":10,"output_tokens":1}}}` + "\n\n")
	b.WriteString(`event: content_block_start` + "\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n")
	for i := range deltas {
		fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"token %d \"}}\n\n", i)
	}
	b.WriteString(`event: content_block_stop` + "\n" + `data: {"type":"content_block_stop","index":0}` + "\n\n")
	b.WriteString(`event: message_delta` + "\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2000}}` + "\n\n")
	b.WriteString(`event: message_stop` + "\n" + `data: {"type":"message_stop"}` + "\n\n")
	return b.String()
}

// BenchmarkStreamPerDelta is the whole client-side cost of one streamed
// text delta: HTTP read, SSE framing, the SDK's JSON decoding and this
// package's decoder, against a local server that sends 1000 deltas at once.
func BenchmarkStreamPerDelta(b *testing.B) {
	body := benchStream(benchDeltas)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, body)
	}))
	defer srv.Close()
	p, err := New(llm.Config{Model: "claude-sonnet-4-5", APIKey: "k", BaseURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	req := &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: "hi"}}}}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for ev, err := range p.Stream(b.Context(), req) {
			if err != nil {
				b.Fatal(err)
			}
			if ev.Kind == llm.EventText {
				n++
			}
		}
		if n != benchDeltas {
			b.Fatalf("%d deltas", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchDeltas), "ns/delta")
}

// BenchmarkDecoderPerDelta is this package's own share: the decoder alone,
// on events already decoded from JSON.
func BenchmarkDecoderPerDelta(b *testing.B) {
	var ev wireEvent
	if err := json.Unmarshal([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"token "}}`), &ev); err != nil {
		b.Fatal(err)
	}
	d := &decoder{name: "anthropic", blocks: map[int64]*block{0: {typ: "text"}}}
	n := 0
	yield := func(llm.Event, error) bool { n++; return true }
	b.ReportAllocs()
	for b.Loop() {
		if err := d.event(&ev, yield); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirstByteToEvent measures the time from the server flushing one
// event to the caller receiving it: the server sends an event, waits for
// the caller's acknowledgement, and sends the next.
func BenchmarkFirstByteToEvent(b *testing.B) {
	var sent atomic.Int64 // UnixNano of the last flush
	ack := make(chan struct{})
	total := time.Duration(0)
	events := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
		for range 100 {
			sent.Store(time.Now().UnixNano())
			io.WriteString(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n")
			rc.Flush()
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	}))
	defer srv.Close()
	p, err := New(llm.Config{Model: "m", APIKey: "k", BaseURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	req := &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: "hi"}}}}}
	for b.Loop() {
		for ev, err := range p.Stream(b.Context(), req) {
			if err != nil {
				b.Fatal(err)
			}
			if ev.Kind == llm.EventText {
				total += time.Duration(time.Now().UnixNano() - sent.Load())
				events++
				ack <- struct{}{}
			}
		}
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(events), "ns/byte-to-event")
}
