package openai

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/llm"
)

const benchDeltas = 1000

var benchReq = &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: "hi"}}}}}

// BenchmarkStreamPerDelta is the whole client-side cost of one streamed
// content delta (HTTP read, SSE framing, the SDK's JSON decoding, this
// package's decoder), against a local server sending 1000 deltas at once.
func BenchmarkStreamPerDelta(b *testing.B) {
	var body strings.Builder
	for i := range benchDeltas {
		fmt.Fprintf(&body, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token %d \"},\"finish_reason\":null}]}\n\n", i)
	}
	body.WriteString("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
	body.WriteString("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2000,\"total_tokens\":2005}}\n\ndata: [DONE]\n\n")
	all := body.String()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, all)
	}))
	defer srv.Close()
	p, err := New(llm.Config{Model: "m", BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for ev, err := range p.Stream(b.Context(), benchReq) {
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

// BenchmarkFirstByteToEvent measures the time from the server flushing one
// chunk to the caller receiving its event.
func BenchmarkFirstByteToEvent(b *testing.B) {
	var sent atomic.Int64
	ack := make(chan struct{})
	var total time.Duration
	events := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for range 100 {
			sent.Store(time.Now().UnixNano())
			io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\n")
			rc.Flush()
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	p, err := New(llm.Config{Model: "m", BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for ev, err := range p.Stream(b.Context(), benchReq) {
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
