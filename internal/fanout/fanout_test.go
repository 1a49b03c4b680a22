package fanout

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ev(session string, typ api.EventType) api.Event {
	return api.Event{Session: session, Type: typ}
}

func drain(t *testing.T, q *Queue) []api.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	got, err := q.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestOrderAndRouting(t *testing.T) {
	h := NewHub(nil)
	a := h.Subscribe("a", 0)
	b := h.Subscribe("b", 0)
	all := h.Subscribe(api.AllSessions, 0)
	h.Publish(ev("a", api.EventTextDelta))
	h.Publish(ev("b", api.EventTextDelta))
	h.Publish(ev("a", api.EventTurnComplete))
	h.Publish(ev("", api.EventCapsuleLoaded))

	got := drain(t, a.Queue)
	if len(got) != 3 || got[0].Seq != 1 || got[1].Seq != 2 || got[1].Type != api.EventTurnComplete || got[2].Type != api.EventCapsuleLoaded {
		t.Errorf("a got %+v", got)
	}
	if got[0].Time.IsZero() {
		t.Error("no time stamp")
	}
	if got := drain(t, b.Queue); len(got) != 2 || got[0].Seq != 1 || got[0].Session != "b" {
		t.Errorf("b got %+v", got)
	}
	if got := drain(t, all.Queue); len(got) != 4 {
		t.Errorf("* got %d events", len(got))
	}
	h.Unsubscribe(a)
	h.Unsubscribe(a) // idempotent
	if s := h.Stats(); s.Subscribers != 2 || s.Queued != 9 {
		t.Errorf("stats %+v", s)
	}
	h.Publish(ev("a", api.EventTextDelta))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := a.Queue.Next(ctx); err != ErrClosed {
		t.Errorf("after unsubscribe: %v", err)
	}
}

// TestSlowSubscriberLags: a full queue drops, reports lagged after what it
// kept, and the other subscriber misses nothing.
func TestSlowSubscriberLags(t *testing.T) {
	h := NewHub(nil)
	slow := h.Subscribe("s", 3)
	fast := h.Subscribe("s", 100)
	for range 10 {
		h.Publish(ev("s", api.EventTextDelta))
	}
	got := drain(t, slow.Queue)
	if len(got) != 4 || got[2].Seq != 3 || got[3].Type != api.EventLagged {
		t.Fatalf("slow got %+v", got)
	}
	var l api.Lagged
	if err := got[3].Decode(&l); err != nil || l.Dropped != 7 {
		t.Errorf("lagged %+v %v", l, err)
	}
	if got := drain(t, fast.Queue); len(got) != 10 {
		t.Errorf("fast got %d", len(got))
	}
	// After catching up the slow one gets new events normally.
	h.Publish(ev("s", api.EventTurnComplete))
	if got := drain(t, slow.Queue); len(got) != 1 || got[0].Seq != 11 {
		t.Errorf("slow after lag: %+v", got)
	}
	if s := h.Stats(); s.Dropped != 7 {
		t.Errorf("stats %+v", s)
	}
}

func TestConcurrentPublishKeepsOrder(t *testing.T) {
	h := NewHub(nil)
	sub := h.Subscribe("s", 10000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				h.Publish(ev("s", api.EventTextDelta))
			}
		})
	}
	wg.Wait()
	got := drain(t, sub.Queue)
	if len(got) != 2000 {
		t.Fatalf("got %d", len(got))
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}

// BenchmarkFanout10 measures one event published to 10 subscribers until
// each reader goroutine has it.
func BenchmarkFanout10(b *testing.B) {
	h := NewHub(nil)
	var wg sync.WaitGroup
	got := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	for range 10 {
		s := h.Subscribe("s", 0)
		wg.Go(func() {
			for {
				evs, err := s.Queue.Next(ctx)
				if err != nil {
					return
				}
				for range evs {
					got <- struct{}{}
				}
			}
		})
	}
	e := api.Event{Session: "s", Type: api.EventTextDelta, Data: []byte(`{"turn":"t","text":"hello"}`)}
	for b.Loop() {
		h.Publish(e)
		for range 10 {
			<-got
		}
	}
	cancel()
	wg.Wait()
}
