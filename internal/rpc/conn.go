package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// ErrClosed is returned by calls on a closed connection.
var ErrClosed = errors.New("connection closed")

// Request is a call or notification received by a Conn.
type Request struct {
	Method string
	// Params is nil or a JSON object; decode it with DecodeParams.
	Params json.RawMessage
	// Notification says no reply is expected (the frame had no id).
	Notification bool
}

// Handler answers requests. For a call, its result (or error, mapped with
// ErrorFrom) is sent back; for a notification both are dropped. Calls run
// concurrently, each on its own goroutine, with a context cancelled when the
// connection closes; notifications run one at a time on the read loop, in
// the order they arrived, so they must not block.
type Handler func(ctx context.Context, req *Request) (result any, err error)

// Options configure a Conn. The zero value is usable except for Handler,
// which a Conn that receives calls needs.
type Options struct {
	Handler Handler
	// MaxFrame bounds a frame; 0 means DefaultMaxFrame. A larger frame is
	// answered with -32600 and skipped; one over 4×MaxFrame closes the
	// connection (WebSocket status 1009).
	MaxFrame int64
	// MaxInflight bounds the calls handled at once; 0 means 64. Reading
	// pauses while it is reached.
	MaxInflight int
	// WriteTimeout bounds one frame's write; 0 means 10 s. A peer that
	// does not read for that long is disconnected.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// Conn is one JSON-RPC 2.0 peer over a WebSocket: it serves calls from the
// other side through its Handler and makes calls of its own. Its methods
// are safe for concurrent use.
type Conn struct {
	ws   *websocket.Conn
	opts Options
	log  *slog.Logger
	sem  chan struct{} // one slot per call being handled

	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc

	closing atomic.Bool // Drain started: new calls are refused
	nextID  atomic.Uint64

	mu      sync.Mutex
	pending map[string]chan *Message // guarded by mu; by raw id
	closed  bool                     // guarded by mu
}

// NewConn wraps an open WebSocket. Call Run to start reading.
func NewConn(ws *websocket.Conn, opts Options) *Conn {
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = DefaultMaxFrame
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 64
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ws.SetReadLimit(4 * opts.MaxFrame)
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{ws: ws, opts: opts, log: lg, sem: make(chan struct{}, opts.MaxInflight),
		ctx: ctx, cancel: cancel, pending: map[string]chan *Message{}}
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.ctx.Done() }

// Run reads frames until the connection ends or ctx is done, then fails
// the pending calls, waits for the handlers it started and returns. It is
// called once.
func (c *Conn) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { c.ws.CloseNow() })
	defer stop()
	err := c.readLoop()
	c.shut()
	for range cap(c.sem) { // wait for the handlers
		c.sem <- struct{}{}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (c *Conn) readLoop() error {
	for {
		typ, r, err := c.ws.Reader(c.ctx)
		if err != nil {
			return err
		}
		b, over, err := readBounded(r, c.opts.MaxFrame)
		if err != nil {
			return err
		}
		switch {
		case over > 0:
			c.replyError(nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("frame of more than %d bytes refused (limit %d)", over, c.opts.MaxFrame)})
			continue
		case typ != websocket.MessageText:
			c.replyError(nil, invalid("binary frames are not supported; send JSON text frames"))
			continue
		}
		m, id, rerr := DecodeFrame(b)
		if rerr != nil {
			if m.Kind == KindResponse {
				c.log.Debug("malformed response dropped", "err", rerr.Message)
			} else {
				c.replyError(id, rerr)
			}
			continue
		}
		switch m.Kind {
		case KindResponse:
			c.deliver(&m)
		case KindNotification:
			if c.opts.Handler != nil {
				if _, err := c.opts.Handler(c.ctx, &Request{Method: m.Method, Params: m.Params, Notification: true}); err != nil {
					c.log.Debug("notification failed", "method", m.Method, "err", err)
				}
			}
		case KindRequest:
			if c.opts.Handler == nil || c.closing.Load() {
				c.replyError(m.ID, &Error{Code: CodeUnavailable, Message: "this peer takes no calls now"})
				continue
			}
			select {
			case c.sem <- struct{}{}:
			case <-c.ctx.Done():
				return ErrClosed
			}
			go c.serve(m)
		}
	}
}

// readBounded reads one message of at most max bytes. For a larger one it
// reads and discards the rest and returns how many bytes it had.
func readBounded(r io.Reader, max int64) ([]byte, int64, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(b)) <= max {
		return b, 0, nil
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, 0, err
	}
	return nil, int64(len(b)) + n - 1, nil
}

func (c *Conn) serve(m Message) {
	defer func() { <-c.sem }()
	res, err := c.dispatch(&Request{Method: m.Method, Params: m.Params})
	if err != nil {
		e, internal := ErrorFrom(err)
		if internal {
			c.log.Error("call failed", "method", m.Method, "err", err)
		}
		c.replyError(m.ID, e)
		return
	}
	b, err := json.Marshal(res)
	if err != nil {
		c.log.Error("cannot encode a result", "method", m.Method, "err", err)
		c.replyError(m.ID, &Error{Code: CodeInternal, Message: ErrInternal.Error()})
		return
	}
	c.write(&wire{ID: m.ID, Result: b})
}

// dispatch runs the handler, turning a panic into an internal error: a bug
// in one method must not take the daemon down.
func (c *Conn) dispatch(req *Request) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in %s: %v", req.Method, p)
		}
	}()
	return c.opts.Handler(c.ctx, req)
}

func (c *Conn) replyError(id json.RawMessage, e *Error) {
	if id == nil {
		id = json.RawMessage("null")
	}
	c.write(&wire{ID: id, Error: e})
}

// write sends one frame. A failed write ends the connection: the peer can
// no longer be kept consistent.
func (c *Conn) write(w *wire) error {
	v := "2.0"
	w.JSONRPC = &v
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.ws.CloseNow()
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return nil
}

// Notify sends a notification. Notifications from one goroutine arrive in
// the order they were sent.
func (c *Conn) Notify(method string, params any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	return c.write(&wire{Method: method, Params: p})
}

// Call calls method on the peer and decodes its result into result (which
// may be nil). An error reply is returned as an *Error.
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	id := json.RawMessage(strconv.FormatUint(c.nextID.Add(1), 10))
	ch := make(chan *Message, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.pending[string(id)] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, string(id))
		c.mu.Unlock()
	}()
	if err := c.write(&wire{ID: id, Method: method, Params: p}); err != nil {
		return err
	}
	select {
	case m, ok := <-ch:
		switch {
		case !ok:
			return ErrClosed
		case m.Error != nil:
			return m.Error
		case result == nil:
			return nil
		}
		if err := json.Unmarshal(m.Result, result); err != nil {
			return fmt.Errorf("%s: cannot decode the result: %w", method, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Conn) deliver(m *Message) {
	c.mu.Lock()
	ch := c.pending[string(m.ID)]
	delete(c.pending, string(m.ID))
	c.mu.Unlock()
	if ch == nil {
		if m.Error != nil {
			c.log.Debug("error reply without a call", "code", m.Error.Code, "message", m.Error.Message)
		}
		return
	}
	ch <- m
}

// shut marks the connection closed and fails pending calls.
func (c *Conn) shut() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		for id, ch := range c.pending {
			close(ch)
			delete(c.pending, id)
		}
	}
	c.mu.Unlock()
	c.cancel()
	c.ws.CloseNow()
}

// Drain ends the connection gracefully: new calls are answered with
// ErrUnavailable, the calls being handled finish (until ctx is done), and
// the WebSocket is closed with status 1001 (going away).
func (c *Conn) Drain(ctx context.Context, reason string) {
	c.closing.Store(true)
	n := 0
	defer func() {
		for range n {
			<-c.sem
		}
	}()
wait:
	for n < cap(c.sem) {
		select {
		case c.sem <- struct{}{}:
			n++
		case <-ctx.Done():
			break wait
		case <-c.ctx.Done():
			break wait
		}
	}
	c.ws.Close(websocket.StatusGoingAway, reason)
}

// Close closes the connection at once.
func (c *Conn) Close() error {
	c.shut()
	return nil
}
