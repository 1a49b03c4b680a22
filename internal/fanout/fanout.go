// Package fanout delivers api.Events from publishers to many subscribers
// without letting a slow subscriber hold anyone up.
//
// A Hub numbers each session's events (Seq) and copies each event into the
// Queue of every subscription that wants it. A Queue is bounded: when it is
// full, new events are dropped and counted, and the reader gets one event of
// type "lagged" (api.Lagged) after the events it did receive, so it knows
// its view has a hole. Publish never blocks on a reader.
//
// The daemon drains each subscription's Queue into that client's
// connection; the Go client uses a Queue the same way between its read loop
// and the channel it hands to the application.
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
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

// Subscription is one subscriber's view of a Hub.
type Subscription struct {
	// ID names the subscription to its client.
	ID string
	// Session is the session watched, or api.AllSessions.
	Session string
	// Queue holds the events to deliver.
	Queue *Queue
}

// Hub fans events out to subscriptions. It is safe for concurrent use.
type Hub struct {
	now func() time.Time

	mu     sync.Mutex
	nextID uint64                                // guarded by mu
	seq    map[string]uint64                     // guarded by mu; by session ("" for daemon-wide)
	subs   map[string]map[*Subscription]struct{} // guarded by mu; by watched session
	count  int                                   // guarded by mu
	sent   uint64                                // guarded by mu; events queued
	lost   uint64                                // guarded by mu; events dropped
}

// NewHub returns an empty hub; now (time.Now if nil) stamps events.
func NewHub(now func() time.Time) *Hub {
	if now == nil {
		now = time.Now
	}
	return &Hub{now: now, seq: map[string]uint64{}, subs: map[string]map[*Subscription]struct{}{}}
}

// Subscribe adds a subscription to session's events (api.AllSessions for
// all) with a queue of size events (DefaultQueueSize if size <= 0).
// Daemon-wide events (empty Session) reach every subscription.
func (h *Hub) Subscribe(session string, size int) *Subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	s := &Subscription{ID: "sub-" + strconv.FormatUint(h.nextID, 10), Session: session, Queue: NewQueue(size, session)}
	if h.subs[session] == nil {
		h.subs[session] = map[*Subscription]struct{}{}
	}
	h.subs[session][s] = struct{}{}
	h.count++
	return s
}

// Unsubscribe removes s and closes its queue. It is idempotent.
func (h *Hub) Unsubscribe(s *Subscription) {
	h.mu.Lock()
	if m := h.subs[s.Session]; m != nil {
		if _, ok := m[s]; ok {
			delete(m, s)
			h.count--
			if len(m) == 0 {
				delete(h.subs, s.Session)
			}
		}
	}
	h.mu.Unlock()
	s.Queue.Close()
}

// Publish numbers e within its session, stamps its time if unset, and
// queues it for every subscription that wants it. It never blocks on a
// subscriber, and events of a session reach each subscriber in Seq order.
// It returns the event as delivered.
func (h *Hub) Publish(e api.Event) api.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq[e.Session]++
	e.Seq = h.seq[e.Session]
	if e.Time.IsZero() {
		e.Time = h.now().UTC()
	}
	push := func(m map[*Subscription]struct{}) {
		for s := range m {
			if s.Queue.Push(e) {
				h.sent++
			} else {
				h.lost++
			}
		}
	}
	if e.Session == "" {
		for _, m := range h.subs {
			push(m)
		}
		return e
	}
	push(h.subs[e.Session])
	if e.Session != api.AllSessions {
		push(h.subs[api.AllSessions])
	}
	return e
}

// Stats are a hub's counters.
type Stats struct {
	Subscribers int
	Queued      uint64 // events put in a queue
	Dropped     uint64 // events a full queue refused
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Subscribers: h.count, Queued: h.sent, Dropped: h.lost}
}
