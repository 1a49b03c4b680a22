package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/events"
)

// TestStreamFromTheBus: what frontends receive is what travels on the bus
// as stream events: numbered per session, routed by session (daemon-wide
// events to everyone), and an event put on the bus by anyone reaches the
// subscribers.
func TestStreamFromTheBus(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	ctx := tctx(t)
	ca, cb, call := dial(t, h), dial(t, h), dial(t, h)
	if _, err := ca.Subscribe(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Subscribe(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Subscribe(ctx, api.AllSessions); err != nil {
		t.Fatal(err)
	}
	onBus := r.d.Bus().Subscribe(100, func(e events.Event) bool { return e.Kind == events.StreamEvent })
	defer onBus.Close()
	pub := func(session string, typ api.EventType) {
		e, _ := api.NewEvent(session, typ, api.TextDelta{Turn: "t", Text: "x"})
		r.d.Publish(e)
	}
	pub("a", api.EventTextDelta)
	pub("b", api.EventTextDelta)
	pub("a", api.EventTurnComplete)
	pub("", api.EventCapsuleLoaded)
	// Published on the bus directly, not through Daemon.Publish.
	raw, _ := api.NewEvent("b", api.EventTurnComplete, api.TurnComplete{Turn: "t"})
	raw.Seq, raw.Time = 99, time.Now().UTC()
	r.d.Bus().Publish(events.StreamEvent, "b", raw)

	got := func(n int, c interface{ Events() <-chan api.Event }) string {
		var out []string
		for range n {
			select {
			case e := <-c.Events():
				out = append(out, fmt.Sprintf("%s/%d/%s", e.Session, e.Seq, e.Type))
			case <-time.After(5 * time.Second):
				t.Fatalf("only %v", out)
			}
		}
		return strings.Join(out, " ")
	}
	if g, w := got(3, ca), "a/1/text_delta a/2/turn_complete /1/capsule_loaded"; g != w {
		t.Errorf("a: %s, want %s", g, w)
	}
	if g, w := got(3, cb), "b/1/text_delta /1/capsule_loaded b/99/turn_complete"; g != w {
		t.Errorf("b: %s, want %s", g, w)
	}
	if g, w := got(5, call), "a/1/text_delta b/1/text_delta a/2/turn_complete /1/capsule_loaded b/99/turn_complete"; g != w {
		t.Errorf("*: %s, want %s", g, w)
	}
	// Every event the frontends got was on the bus, in the wire format.
	var seen []string
	for range 5 {
		e := <-onBus.C
		ae := e.Data.(api.Event)
		seen = append(seen, fmt.Sprintf("%s/%d", ae.Session, ae.Seq))
	}
	if g := strings.Join(seen, " "); g != "a/1 b/1 a/2 /1 b/99" {
		t.Errorf("on the bus: %s", g)
	}
	if st, err := call.Status(ctx); err != nil || st.Subscribers != 3 {
		t.Errorf("status subscribers %d, %v", st.Subscribers, err)
	}
}

// TestStreamWriterLags: a subscriber whose connection is slow loses the
// events that do not fit its buffer, is told how many where the hole is,
// and then receives normally; the publisher never waits.
func TestStreamWriterLags(t *testing.T) {
	d := &Daemon{bus: events.New(nil)}
	s := &subscription{session: "s", bus: d.bus.Subscribe(3, streamFilter("s"))}
	release := make(chan struct{})
	var (
		mu  sync.Mutex
		out []string
	)
	first := true
	notify := func(e api.Event) error {
		if first {
			first = false
			<-release // the connection is stuck on the first event
		}
		mu.Lock()
		defer mu.Unlock()
		if e.Type == api.EventLagged {
			var l api.Lagged
			e.Decode(&l)
			out = append(out, fmt.Sprintf("lagged:%d", l.Dropped))
		} else {
			out = append(out, fmt.Sprint(e.Seq))
		}
		return nil
	}
	var m metrics
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.write(notify, &m)
	}()
	pub := func() {
		e, _ := api.NewEvent("s", api.EventTextDelta, api.TextDelta{})
		d.Publish(e)
	}
	pub()
	if !waitFor(func() bool { return len(s.bus.C) == 0 }) { // the writer holds it
		t.Fatal("the writer did not take the first event")
	}
	for range 9 {
		pub() // 3 fit, 6 are dropped
	}
	d.Publish(api.Event{Session: "other", Type: api.EventTextDelta}) // not ours
	close(release)
	if !waitFor(func() bool { mu.Lock(); defer mu.Unlock(); return len(out) == 5 }) {
		t.Fatalf("got %v", out)
	}
	pub()
	if !waitFor(func() bool { mu.Lock(); defer mu.Unlock(); return len(out) == 6 }) {
		t.Fatalf("got %v", out)
	}
	s.bus.Close()
	<-done
	if g := strings.Join(out, " "); g != "1 2 3 4 lagged:6 11" {
		t.Errorf("delivered %s", g)
	}
	if m.streamLost.Load() != 6 || m.streamed.Load() != 6 {
		t.Errorf("metrics: lost %d, sent %d", m.streamLost.Load(), m.streamed.Load())
	}

	// A failing connection ends the writer.
	s = &subscription{session: "s", bus: d.bus.Subscribe(3, streamFilter("s"))}
	done = make(chan struct{})
	go func() {
		defer close(done)
		s.write(func(api.Event) error { return errors.New("closed") }, &m)
	}()
	pub()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer kept going on a failed connection")
	}
	s.bus.Close()
}

// TestConcurrentPublishKeepsOrder: events of a session published from
// many goroutines reach a subscriber in Seq order, without gaps.
func TestConcurrentPublishKeepsOrder(t *testing.T) {
	d := &Daemon{bus: events.New(nil)}
	sub := d.bus.Subscribe(10000, streamFilter("s"))
	defer sub.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				d.Publish(api.Event{Session: "s", Type: api.EventTextDelta})
			}
		})
	}
	wg.Wait()
	for i := range 2000 {
		if e := (<-sub.C).Data.(api.Event); e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}

// TestMetricsFromTheBus: the counters of what the runtime does come from
// the events on the bus.
func TestMetricsFromTheBus(t *testing.T) {
	port := freePort(t)
	h := newHome(t, fmt.Sprintf("[gateway]\nmetrics_addr = \"127.0.0.1:%d\"\n", port))
	r := start(t, h, h.options())
	b := r.d.Bus()
	b.Publish(events.SessionCreated, "s1", events.Session{})
	b.Publish(events.LLMUsage, "s1", events.LLM{InputTokens: 100, OutputTokens: 20, CostUSD: 0.25})
	b.Publish(events.LLMUsage, "s1", events.LLM{InputTokens: 1, OutputTokens: 2, CostUSD: 0.5})
	b.Publish(events.ToolCallCompleted, "s1", events.Tool{Status: "ok"})
	b.Publish(events.ToolCallFailed, "s1", events.Tool{Status: "denied"})
	b.Publish(events.ToolCallFailed, "s1", events.Tool{Status: "denied"})
	want := []string{
		`astrid_bus_events_total{kind="session.created"} 1`,
		`astrid_bus_events_total{kind="llm.usage"} 2`,
		`astrid_tool_calls_total{status="ok"} 1`,
		`astrid_tool_calls_total{status="denied"} 2`,
		"astrid_llm_input_tokens_total 101",
		"astrid_llm_output_tokens_total 22",
		"astrid_llm_cost_usd_total 0.75",
		"astrid_metrics_missed_total 0",
	}
	var body string
	ok := waitFor(func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			t.Fatal(err)
		}
		body = readAll(resp)
		resp.Body.Close()
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Errorf("metrics lack some of %q:\n%s", want, body)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
