// Package ssetest is a fake model server for provider tests: an
// httptest.Server on 127.0.0.1 that records every request and answers each
// with the next scripted Response, streaming server-sent events exactly as
// given (recorded exchanges live in the providers' testdata directories).
//
// A script can flush the stream in pieces of any size (to split a UTF-8
// character or a JSON value across TCP writes), wait on a channel between
// pieces (to prove the client does not buffer), cut the connection (to test
// a stream broken mid-way), or block until the client goes away (to prove
// cancellation closes the connection).
package ssetest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

// Chunk is one piece of a streamed response body.
type Chunk struct {
	// Data is written and flushed.
	Data string
	// Wait, if not nil, is received from before Data is written.
	Wait <-chan struct{}
	// Cut aborts the connection instead of writing (no terminating chunk:
	// the client sees an unexpected EOF).
	Cut bool
	// Block waits until the client closes the connection, then closes the
	// server's Disconnected channel.
	Block bool
}

// Response is one scripted answer.
type Response struct {
	// Status defaults to 200.
	Status int
	// Header is added to the response; Content-Type defaults to
	// text/event-stream when Chunks are given, else application/json.
	Header map[string]string
	// Body is written at once when there are no Chunks.
	Body string
	// Chunks stream the body in pieces.
	Chunks []Chunk
}

// Recorded is one request the server received.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// JSON decodes the request body.
func (r Recorded) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, r.Body)
	}
	return m
}

// Server is the fake server. Its fields are safe to read after the client
// call returns.
type Server struct {
	*httptest.Server
	// Disconnected is closed when a Block chunk saw the client go away.
	Disconnected chan struct{}

	t         testing.TB
	mu        sync.Mutex
	responses []Response // guarded by mu
	requests  []Recorded // guarded by mu
}

// New starts a server that answers with responses in order; a request
// beyond the script fails the test. The server is closed at the end of the
// test.
func New(t testing.TB, responses ...Response) *Server {
	s := &Server{t: t, responses: responses, Disconnected: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Requests returns what the server received so far.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	if len(s.responses) == 0 {
		s.mu.Unlock()
		s.t.Errorf("ssetest: unexpected request %d: %s %s", len(s.requests), r.Method, r.URL.Path)
		http.Error(w, `{"error":{"message":"no scripted response"}}`, http.StatusTeapot)
		return
	}
	resp := s.responses[0]
	s.responses = s.responses[1:]
	s.mu.Unlock()

	ct := "application/json"
	if resp.Chunks != nil {
		ct = "text/event-stream"
	}
	w.Header().Set("Content-Type", ct)
	for k, v := range resp.Header {
		w.Header().Set(k, v)
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if resp.Chunks == nil {
		io.WriteString(w, resp.Body)
		return
	}
	rc := http.NewResponseController(w)
	rc.Flush()
	for _, c := range resp.Chunks {
		if c.Wait != nil {
			select {
			case <-c.Wait:
			case <-r.Context().Done():
				return
			}
		}
		if c.Block {
			<-r.Context().Done()
			close(s.Disconnected)
			return
		}
		if c.Cut {
			panic(http.ErrAbortHandler)
		}
		if _, err := io.WriteString(w, c.Data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// Events splits an SSE body into one chunk per event (at blank lines).
func Events(body string) []Chunk {
	var out []Chunk
	for _, ev := range strings.SplitAfter(body, "\n\n") {
		if ev != "" {
			out = append(out, Chunk{Data: ev})
		}
	}
	return out
}

// Pieces splits body into chunks of n bytes, ignoring UTF-8 and event
// boundaries.
func Pieces(body string, n int) []Chunk {
	var out []Chunk
	for len(body) > n {
		out = append(out, Chunk{Data: body[:n]})
		body = body[n:]
	}
	if body != "" {
		out = append(out, Chunk{Data: body})
	}
	return out
}

// File reads a recorded exchange from testdata. Lines starting with "#"
// are comments and are dropped; the rest is the body as sent.
func File(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for line := range bytes.Lines(b) {
		if !bytes.HasPrefix(line, []byte("#")) {
			out.Write(line)
		}
	}
	return out.String()
}

// SSE formats one event the way the Anthropic API sends it.
func SSE(event string, data any) string {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return "event: " + event + "\ndata: " + string(b) + "\n\n"
}

// Data formats one event the way OpenAI-compatible servers send it.
func Data(data any) string {
	if s, ok := data.(string); ok {
		return "data: " + s + "\n\n"
	}
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return "data: " + string(b) + "\n\n"
}
