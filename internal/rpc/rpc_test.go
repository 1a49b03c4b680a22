package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		kind   Kind
		code   int
		id     string // the id echoed on error
		method string
	}{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1}}`, KindRequest, 0, "", "m"},
		{"string id", `{"jsonrpc":"2.0","id":"x","method":"m"}`, KindRequest, 0, "", "m"},
		{"notification", `{"jsonrpc":"2.0","method":"m"}`, KindNotification, 0, "", "m"},
		{"null params", `{"jsonrpc":"2.0","id":2,"method":"m","params":null}`, KindRequest, 0, "", "m"},
		{"result", `{"jsonrpc":"2.0","id":1,"result":{}}`, KindResponse, 0, "", ""},
		{"null result", `{"jsonrpc":"2.0","id":1,"result":null}`, KindResponse, 0, "", ""},
		{"error", `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}`, KindResponse, 0, "", ""},
		{"error with null id", `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`, KindResponse, 0, "", ""},
		{"not json", `{"jsonrpc":`, 0, CodeParseError, "", ""},
		{"empty", ``, 0, CodeParseError, "", ""},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"m"}]`, 0, CodeInvalidRequest, "", ""},
		{"scalar", `42`, 0, CodeInvalidRequest, "", ""},
		{"no version", `{"id":3,"method":"m"}`, 0, CodeInvalidRequest, "3", ""},
		{"old version", `{"jsonrpc":"1.0","id":3,"method":"m"}`, 0, CodeInvalidRequest, "3", ""},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"m"}`, 0, CodeInvalidRequest, "", ""},
		{"float id", `{"jsonrpc":"2.0","id":1.5,"method":"m"}`, 0, CodeInvalidRequest, "", ""},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"m"}`, 0, CodeInvalidRequest, "", ""},
		{"long id", `{"jsonrpc":"2.0","id":"` + strings.Repeat("a", 200) + `","method":"m"}`, 0, CodeInvalidRequest, "", ""},
		{"unknown member", `{"jsonrpc":"2.0","id":4,"method":"m","extra":1}`, 0, CodeInvalidRequest, "4", ""},
		{"method not string", `{"jsonrpc":"2.0","id":4,"method":5}`, 0, CodeInvalidRequest, "4", ""},
		{"array params", `{"jsonrpc":"2.0","id":5,"method":"m","params":[1]}`, 0, CodeInvalidParams, "5", ""},
		{"both", `{"jsonrpc":"2.0","id":6,"method":"m","result":1}`, 0, CodeInvalidRequest, "6", ""},
		{"neither", `{"jsonrpc":"2.0","id":7}`, 0, CodeInvalidRequest, "7", ""},
		{"trailing", `{"jsonrpc":"2.0","id":8,"method":"m"} {}`, 0, CodeParseError, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, id, e := DecodeFrame([]byte(tt.in))
			if tt.code != 0 {
				if e == nil || e.Code != tt.code {
					t.Fatalf("got %+v, %v; want code %d", m, e, tt.code)
				}
				if string(id) != tt.id {
					t.Errorf("echoed id %q, want %q", id, tt.id)
				}
				return
			}
			if e != nil {
				t.Fatalf("unexpected error %v", e)
			}
			if m.Kind != tt.kind || m.Method != tt.method {
				t.Errorf("got kind %d method %q", m.Kind, m.Method)
			}
		})
	}
}

func TestDecodeParams(t *testing.T) {
	tests := []struct {
		in, want string // want: substring of the error, "" for success
	}{
		{`{"session":"s"}`, ""},
		{`{"session":"s","bogus":1}`, `unknown field "bogus"`},
		{`{"session":5}`, `field "session": want string, got number`},
		{`{}`, "session is required"},
		{``, "session is required"}, // absent params
		{`{"session":"s","limit":5000}`, "limit must be"},
		{`{"session":"s","since":"yesterday"}`, `want an RFC 3339 time, got "yesterday"`},
	}
	for _, tt := range tests {
		var p api.SessionAuditParams
		var raw json.RawMessage
		if tt.in != "" {
			raw = json.RawMessage(tt.in)
		}
		err := DecodeParams(raw, &p)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.in, err)
			}
			continue
		}
		if !errors.Is(err, api.ErrInvalidParams) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want invalid params containing %q", tt.in, err, tt.want)
		}
		if e, _ := ErrorFrom(err); e.Code != CodeInvalidParams {
			t.Errorf("%s: code %d", tt.in, e.Code)
		}
	}
}

func TestErrorCodesRoundTrip(t *testing.T) {
	for _, c := range codes {
		err := fmt.Errorf("%w: detail", c.err)
		e, internal := ErrorFrom(err)
		if c.err == ErrInternal {
			if !internal || e.Code != CodeInternal || e.Message != "internal error: detail" {
				t.Errorf("internal: %+v %v", e, internal)
			}
			continue
		}
		if internal || e.Code != c.code || e.Message != err.Error() {
			t.Errorf("%v: got %+v", c.err, e)
		}
		// Through the wire, the sentinel survives.
		b, _ := json.Marshal(e)
		var back Error
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(&back, c.err) {
			t.Errorf("code %d does not unwrap to %v", c.code, c.err)
		}
	}
	e, internal := ErrorFrom(errors.New("disk on fire at /secret/path"))
	if !internal || strings.Contains(e.Message, "secret") {
		t.Errorf("internal detail leaked: %+v", e)
	}
}

// pair starts a server Conn with h and returns a raw client WebSocket.
func pair(t *testing.T, h Handler, opts Options) *websocket.Conn {
	t.Helper()
	opts.Handler = h
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c := NewConn(ws, opts)
		c.Run(context.Background())
		close(done)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() {
		ws.CloseNow()
		<-done
		srv.Close()
	})
	return ws
}

func echo(ctx context.Context, req *Request) (any, error) {
	switch req.Method {
	case "echo":
		var p struct {
			S string `json:"s"`
		}
		if err := DecodeParams(req.Params, &p); err != nil {
			return nil, err
		}
		return p, nil
	case "panic":
		panic("boom")
	case "fail":
		return nil, errors.New("secret detail")
	case "missing":
		return nil, fmt.Errorf("%w: session x", api.ErrNotFound)
	}
	return nil, fmt.Errorf("%w: %s", ErrMethodNotFound, req.Method)
}

func roundTrip(t *testing.T, ws *websocket.Conn, frame string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBadInputConnectionSurvives sends bad frames one after the other on
// one connection; each gets its code and the next call still works.
func TestBadInputConnectionSurvives(t *testing.T) {
	ws := pair(t, echo, Options{MaxFrame: 1024})
	tests := []struct {
		frame string
		code  float64
		id    any
	}{
		{`{not json`, CodeParseError, nil},
		{`{"jsonrpc":"2.0","id":1,"method":"nope"}`, CodeMethodNotFound, 1.0},
		{`{"jsonrpc":"2.0","id":2,"method":"echo","params":{"s":1}}`, CodeInvalidParams, 2.0},
		{`{"jsonrpc":"2.0","id":3,"method":"echo","params":{"t":"x"}}`, CodeInvalidParams, 3.0},
		{`{"jsonrpc":"2.0","id":"p","method":"panic"}`, CodeInternal, "p"},
		{`{"jsonrpc":"2.0","id":4,"method":"fail"}`, CodeInternal, 4.0},
		{`{"jsonrpc":"2.0","id":5,"method":"missing"}`, CodeNotFound, 5.0},
		{`{"jsonrpc":"2.0","id":6,"method":"echo","params":{"s":"` + strings.Repeat("x", 2000) + `"}}`, CodeInvalidRequest, nil},
		{`[]`, CodeInvalidRequest, nil},
	}
	for _, tt := range tests {
		m := roundTrip(t, ws, tt.frame)
		e, _ := m["error"].(map[string]any)
		if e == nil || e["code"] != tt.code || !cmp.Equal(m["id"], tt.id) {
			t.Errorf("%.60s: got %v, want code %v id %v", tt.frame, m, tt.code, tt.id)
		}
		if strings.Contains(fmt.Sprint(e["message"]), "secret") {
			t.Errorf("internal detail leaked: %v", e)
		}
	}
	m := roundTrip(t, ws, `{"jsonrpc":"2.0","id":9,"method":"echo","params":{"s":"still here"}}`)
	if diff := cmp.Diff(map[string]any{"jsonrpc": "2.0", "id": 9.0, "result": map[string]any{"s": "still here"}}, m); diff != "" {
		t.Error(diff)
	}
	// Binary frames are refused, and the connection goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageBinary, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || !strings.Contains(string(b), "binary") {
		t.Errorf("binary frame: %s %v", b, err)
	}
}

// TestHugeFrameCloses: a frame over four times the limit ends the
// connection with 1009 instead of being buffered.
func TestHugeFrameCloses(t *testing.T) {
	ws := pair(t, echo, Options{MaxFrame: 1024})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws.Write(ctx, websocket.MessageText, []byte(strings.Repeat(" ", 5000)))
	_, _, err := ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("got %v, want close 1009", err)
	}
}

func TestCallAndNotifyBothWays(t *testing.T) {
	got := make(chan string, 10)
	srvConn := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c := NewConn(ws, Options{Handler: echo})
		srvConn <- c
		c.Run(context.Background())
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := NewConn(ws, Options{Handler: func(ctx context.Context, req *Request) (any, error) {
		if req.Notification {
			got <- req.Method + string(req.Params)
		}
		return nil, nil
	}})
	runDone := make(chan error, 1)
	go func() { runDone <- cl.Run(context.Background()) }()

	var out struct{ S string }
	if err := cl.Call(ctx, "echo", map[string]string{"s": "hi"}, &out); err != nil || out.S != "hi" {
		t.Fatalf("call: %v %+v", err, out)
	}
	err = cl.Call(ctx, "missing", nil, nil)
	if !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("got %v, want not found", err)
	}
	s := <-srvConn
	for i := range 3 {
		if err := s.Notify("ev", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if g := <-got; g != fmt.Sprintf(`ev{"n":%d}`, i) {
			t.Errorf("notification %d: %s", i, g)
		}
	}
	// Drain: the server closes with 1001 and the client's calls fail.
	s.Drain(ctx, "bye")
	if err := <-runDone; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("client run ended with %v", err)
	}
	if err := cl.Call(ctx, "echo", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after close: %v", err)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"astrid.status"}`,
		`{"jsonrpc":"2.0","method":"astrid.event","params":{"type":"x"}}`,
		`{"jsonrpc":"2.0","id":"a","result":null}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","data":[1]}}`,
		`[{}]`, `{"id":-1e5}`, `"\ud800"`, `{"jsonrpc":"2.0","id":1,"method":"m","params":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, id, e := DecodeFrame(b)
		if e != nil {
			if e.Code >= 0 || e.Message == "" {
				t.Fatalf("bad error object %+v", e)
			}
			if id != nil && checkID(id) != nil {
				t.Fatalf("echoed a bad id %q", id)
			}
			if _, err := json.Marshal(&wire{ID: id, Error: e}); err != nil {
				t.Fatalf("cannot encode the reply: %v", err)
			}
			return
		}
		switch m.Kind {
		case KindRequest:
			if m.ID == nil || m.Method == "" {
				t.Fatalf("request without id or method: %+v", m)
			}
		case KindNotification:
			if m.ID != nil || m.Method == "" {
				t.Fatalf("bad notification: %+v", m)
			}
		case KindResponse:
			if (m.Result == nil) == (m.Error == nil) {
				t.Fatalf("bad response: %+v", m)
			}
		default:
			t.Fatalf("no kind: %+v", m)
		}
		if m.Params != nil && m.Params[0] != '{' {
			t.Fatalf("params not an object: %s", m.Params)
		}
		if checkID(m.ID) != nil {
			t.Fatalf("accepted a bad id %q", m.ID)
		}
	})
}
