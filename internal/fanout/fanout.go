// Package fanout is a bounded event queue that never blocks its writer:
// the Go client uses a Queue between its read loop and the channel it
// hands to the application.
//
// A Queue is bounded: when it is full, new events are dropped and counted,
// and the reader gets one event of type "lagged" (api.Lagged) after the
// events it did receive, so it knows its view has a hole. Push never
// blocks on a reader. (The daemon's side of the stream is the event bus,
// package events.)
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
)

// ErrClosed is returned by Next once the queue is closed and empty.
var ErrClosed = errors.New("event queue closed")

// DefaultQueueSize is the capacity subscriptions get unless told otherwise.
const DefaultQueueSize = 1024

// Queue is a bounded FIFO of events with loss accounting. Push and Close
// may be called from any goroutine; Next from one reader at a time.
type Queue struct {
	max     int
	session string        // put in the lagged events
	ready   chan struct{} // capacity 1: "there may be something to read"

	mu      sync.Mutex
	buf     []api.Event // guarded by mu
	dropped uint64      // guarded by mu; dropped since the last Next
	closed  bool        // guarded by mu
}

// NewQueue returns a queue holding at most max events (DefaultQueueSize
// if max <= 0). session is the Session of the lagged events it reports.
func NewQueue(max int, session string) *Queue {
	if max <= 0 {
		max = DefaultQueueSize
	}
	return &Queue{max: max, session: session, ready: make(chan struct{}, 1)}
}

// Push adds e unless the queue is full or closed; it never blocks. It
// reports whether e was kept.
func (q *Queue) Push(e api.Event) bool {
	q.mu.Lock()
	ok := !q.closed && len(q.buf) < q.max
	if ok {
		q.buf = append(q.buf, e)
	} else if !q.closed {
		q.dropped++
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return ok
}

// Next waits until there are events and returns all of them, oldest first,
// followed by a lagged event if some were dropped since the previous call
// (they were all published after the returned ones and before the next
// call's). After Close it returns what is left, then ErrClosed.
func (q *Queue) Next(ctx context.Context) ([]api.Event, error) {
	for {
		q.mu.Lock()
		buf, dropped, closed := q.buf, q.dropped, q.closed
		q.buf, q.dropped = nil, 0
		q.mu.Unlock()
		if dropped > 0 {
			data, _ := json.Marshal(api.Lagged{Dropped: dropped})
			buf = append(buf, api.Event{Session: q.session, Type: api.EventLagged, Time: time.Now().UTC(), Data: data})
		}
		if len(buf) > 0 {
			return buf, nil
		}
		if closed {
			return nil, ErrClosed
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close stops the queue: later pushes are ignored and Next returns
// ErrClosed once the queue is empty.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
