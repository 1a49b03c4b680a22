package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// ViolationError says a server broke the protocol in a way that makes it
// untrustworthy (a message over the size limit, bytes that are not JSON,
// a flood of requests). The manager stops such a server and does not
// restart it.
type ViolationError struct {
	Server string
	Reason string
}

func (e *ViolationError) Error() string {
	return fmt.Sprintf("mcp server %s misbehaved: %s", e.Server, e.Reason)
}

// lineReader frames a stdio server's stdout: it hands the SDK's reader one
// complete line at a time, after checking the line is at most max bytes
// and is valid JSON. Anything else is a violation: Read returns an error
// (the SDK then closes the transport) and onViolation is called once.
type lineReader struct {
	br          *bufio.Reader
	max         int
	pending     []byte
	onViolation func(reason string)
	line        []byte
	dead        <-chan struct{} // once closed, nothing more is passed on
}

func newLineReader(r io.Reader, max int, onViolation func(string), dead <-chan struct{}) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max, onViolation: onViolation, dead: dead}
}

func (l *lineReader) Read(p []byte) (int, error) {
	select {
	case <-l.dead:
		return 0, io.EOF
	default:
	}
	for len(l.pending) == 0 {
		if err := l.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

// next reads one line into pending, bounded.
func (l *lineReader) next() error {
	l.line = l.line[:0]
	for {
		chunk, err := l.br.ReadSlice('\n')
		if len(l.line)+len(chunk) > l.max+1 {
			reason := fmt.Sprintf("a message longer than %d bytes", l.max)
			l.onViolation(reason)
			return errors.New(reason)
		}
		l.line = append(l.line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(bytes.TrimSpace(l.line)) > 0 && err == io.EOF {
				break // a last line without newline
			}
			return err
		}
		break
	}
	body := bytes.TrimSpace(l.line)
	if len(body) == 0 {
		return nil // blank lines are tolerated
	}
	if !json.Valid(body) {
		reason := "a line on stdout that is not JSON"
		l.onViolation(reason)
		return errors.New(reason)
	}
	l.pending = append(append(l.pending[:0], body...), '\n')
	return nil
}

// limitTransport bounds what an HTTP server may send: a JSON response
// body at most max bytes, and each event of an SSE stream at most max
// bytes. A response over the limit fails with a violation.
type limitTransport struct {
	base        http.RoundTripper
	max         int64
	onViolation func(reason string)
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	resp.Body = &limitBody{rc: resp.Body, max: t.max, sse: mt == "text/event-stream", onViolation: t.onViolation}
	return resp, nil
}

// limitBody counts bytes: in total for a plain body, since the last blank
// line (the end of an event) for an event stream.
type limitBody struct {
	rc          io.ReadCloser
	max         int64
	sse         bool
	n           int64
	last        byte
	onViolation func(string)
	violated    bool
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.violated {
		return 0, errors.New("mcp: response over the size limit")
	}
	n, err := b.rc.Read(p)
	for _, c := range p[:n] {
		if b.sse && c == '\n' && b.last == '\n' {
			b.n = 0
		} else if c != '\r' {
			b.n++
		}
		if c != '\r' {
			b.last = c
		}
		if b.n > b.max {
			b.violated = true
			b.onViolation(fmt.Sprintf("a message longer than %d bytes", b.max))
			return 0, errors.New("mcp: response over the size limit")
		}
	}
	return n, err
}

func (b *limitBody) Close() error { return b.rc.Close() }

// tap wraps the SDK's transport to see every request: it gives
// task-augmented calls their own request ids, and over HTTP sends
// notifications/cancelled for a request whose context ended (the SDK does
// that only over stdio).
type tap struct {
	inner  transport.Interface
	isHTTP bool
	ids    atomic.Int64
	// tasks, when set before the client starts, serves the server's
	// task requests in front of the SDK's handler.
	tasks *clientTasks
}

func (t *tap) Start(ctx context.Context) error { return t.inner.Start(ctx) }

func (t *tap) SendRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	resp, err := t.inner.SendRequest(ctx, req)
	if err != nil && ctx.Err() != nil && t.isHTTP && req.Method != string(mcpgo.MethodInitialize) {
		t.cancelled(req.ID, ctx.Err().Error())
	}
	return resp, err
}

// cancelled tells the server to stop working on request id (best effort).
func (t *tap) cancelled(id mcpgo.RequestId, reason string) {
	n := mcpgo.JSONRPCNotification{JSONRPC: mcpgo.JSONRPC_VERSION, Notification: mcpgo.Notification{
		Method: string(mcpgo.MethodNotificationCancelled),
		Params: mcpgo.NotificationParams{AdditionalFields: map[string]any{"requestId": id, "reason": reason}},
	}}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = t.inner.SendNotification(ctx, n)
	}()
}

// raw sends a request the SDK has no method for (a task-augmented
// tools/call) and returns its result.
func (t *tap) raw(ctx context.Context, method string, params any) (json.RawMessage, error) {
	id := mcpgo.NewRequestId(fmt.Sprintf("astrid-%d", t.ids.Add(1)))
	resp, err := t.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcpgo.JSONRPC_VERSION, ID: id, Method: method, Params: params})
	if err != nil {
		if ctx.Err() != nil && !t.isHTTP {
			t.cancelled(id, ctx.Err().Error())
		}
		return nil, err
	}
	if resp.Error != nil {
		return nil, resp.Error.AsError()
	}
	return resp.Result, nil
}

func (t *tap) SendNotification(ctx context.Context, n mcpgo.JSONRPCNotification) error {
	return t.inner.SendNotification(ctx, n)
}

func (t *tap) SetNotificationHandler(h func(mcpgo.JSONRPCNotification)) {
	t.inner.SetNotificationHandler(h)
}

func (t *tap) Close() error { return t.inner.Close() }

func (t *tap) GetSessionId() string { return t.inner.GetSessionId() }

func (t *tap) SetRequestHandler(h transport.RequestHandler) {
	if t.tasks != nil {
		h = t.tasks.handler(h)
	}
	if b, ok := t.inner.(transport.BidirectionalInterface); ok {
		b.SetRequestHandler(h)
	}
}

// httpTap is tap for HTTP transports: it passes the negotiated protocol
// version on (the SDK puts it in the MCP-Protocol-Version header).
type httpTap struct{ *tap }

func (t httpTap) SetProtocolVersion(v string) {
	if h, ok := t.inner.(transport.HTTPConnection); ok {
		h.SetProtocolVersion(v)
	}
}

// ring keeps the last bytes written to it (a server's stderr, for errors).
type ring struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if len(r.buf) > r.max {
		r.buf = append(r.buf[:0], r.buf[len(r.buf)-r.max:]...)
	}
	return len(p), nil
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(bytes.ToValidUTF8(r.buf, []byte("?")))
}
