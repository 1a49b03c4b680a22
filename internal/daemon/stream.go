package daemon

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/events"
)

// streamBuffer is how many events a subscription holds before it lags.
const streamBuffer = 1024

// stream numbers the wire-format events of each session; the events then
// travel on the bus (events.StreamEvent) to every subscription.
type stream struct {
	seq map[string]uint64 // guarded by Daemon.streamMu; by session ("" for daemon-wide)
}

// Publish numbers e within its session, stamps its time if unset and
// publishes it on the bus, from which every subscription of its session
// (or of all sessions) receives it. It never blocks on a subscriber, and
// events of a session reach each subscriber in Seq order. It returns the
// event as delivered. The backend gets the daemon as its Publisher.
func (d *Daemon) Publish(e api.Event) api.Event {
	d.streamMu.Lock()
	defer d.streamMu.Unlock()
	if d.stream.seq == nil {
		d.stream.seq = map[string]uint64{}
	}
	d.stream.seq[e.Session]++
	e.Seq = d.stream.seq[e.Session]
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	// NOTE: published under streamMu, so that the bus delivers a session's
	// events in the order of their Seq.
	d.bus.Publish(events.StreamEvent, e.Session, e)
	return e
}

// streamFilter accepts the wire-format events a subscription to session
// (api.AllSessions for all) receives: its session's and the daemon-wide
// ones.
func streamFilter(session string) func(events.Event) bool {
	return func(e events.Event) bool {
		return e.Kind == events.StreamEvent && (e.Session == "" || e.Session == session || session == api.AllSessions)
	}
}

// subscription is one subscribeEvents: a bus subscription and the
// goroutine that writes its events to the connection.
type subscription struct {
	id      string
	session string
	bus     *events.Subscription
}

// subscribe starts streaming a session's events to the client.
func (c *clientConn) subscribe(d *Daemon, session string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", false
	}
	s := &subscription{id: "sub-" + strconv.FormatUint(d.subSeq.Add(1), 10), session: session, bus: d.bus.Subscribe(streamBuffer, streamFilter(session))}
	c.subs[s.id] = s
	d.streams.Add(1)
	c.wg.Go(func() {
		defer d.streams.Add(-1)
		defer s.bus.Close()
		s.write(func(e api.Event) error { return c.rpc.Notify(api.NotifyEvent, e) }, &d.metrics)
	})
	return s.id, true
}

// write sends the subscription's events to the client until it is closed
// or the connection fails. Events lost to a full buffer are reported by
// one lagged event where the hole is: before the next event received, or
// as soon as the reader has caught up.
func (s *subscription) write(notify func(api.Event) error, m *metrics) {
	send := func(e api.Event) bool {
		if err := notify(e); err != nil {
			return false
		}
		m.streamed.Add(1)
		return true
	}
	lagged := func(n uint64) bool {
		m.streamLost.Add(n)
		data, _ := json.Marshal(api.Lagged{Dropped: n})
		return send(api.Event{Session: s.session, Type: api.EventLagged, Time: time.Now().UTC(), Data: data})
	}
	for {
		var (
			e  events.Event
			ok bool
		)
		select {
		case e, ok = <-s.bus.C:
		default:
			if n := s.bus.TakeMissed(); n > 0 {
				if !lagged(n) {
					return
				}
				continue
			}
			e, ok = <-s.bus.C
		}
		if !ok {
			return
		}
		if e.Missed > 0 && !lagged(e.Missed) {
			return
		}
		if ae, isAPI := e.Data.(api.Event); isAPI && !send(ae) {
			return
		}
	}
}

func (c *clientConn) unsubscribe(id string) bool {
	c.mu.Lock()
	s := c.subs[id]
	delete(c.subs, id)
	c.mu.Unlock()
	if s == nil {
		return false
	}
	s.bus.Close()
	return true
}

// closeSubs ends every subscription and waits for their writers.
func (c *clientConn) closeSubs() {
	c.mu.Lock()
	c.closed = true
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for _, s := range subs {
		s.bus.Close()
	}
	c.wg.Wait()
}
