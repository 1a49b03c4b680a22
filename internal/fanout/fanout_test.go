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

func ev(seq uint64) api.Event {
	return api.Event{Session: "s", Seq: seq, Type: api.EventTextDelta}
}

func next(t *testing.T, q *Queue) []api.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	got, err := q.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestQueueLags: a full queue drops, reports lagged after what it kept,
// and then delivers normally again.
func TestQueueLags(t *testing.T) {
	q := NewQueue(3, "s")
	for i := range 10 {
		if kept := q.Push(ev(uint64(i + 1))); kept != (i < 3) {
			t.Errorf("push %d kept=%v", i+1, kept)
		}
	}
	got := next(t, q)
	if len(got) != 4 || got[2].Seq != 3 || got[3].Type != api.EventLagged || got[3].Session != "s" || got[3].Seq != 0 {
		t.Fatalf("got %+v", got)
	}
	var l api.Lagged
	if err := got[3].Decode(&l); err != nil || l.Dropped != 7 {
		t.Errorf("lagged %+v %v", l, err)
	}
	q.Push(ev(11))
	if got := next(t, q); len(got) != 1 || got[0].Seq != 11 {
		t.Errorf("after lag: %+v", got)
	}
}

// TestQueueWaitsAndCloses: Next waits for a push, honours its context,
// and after Close returns what is left, then ErrClosed.
func TestQueueWaitsAndCloses(t *testing.T) {
	q := NewQueue(0, "")
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(10 * time.Millisecond)
		q.Push(ev(1))
	})
	if got := next(t, q); len(got) != 1 || got[0].Seq != 1 {
		t.Errorf("got %+v", got)
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := q.Next(ctx); err != context.DeadlineExceeded {
		t.Errorf("empty queue: %v", err)
	}
	q.Push(ev(2))
	q.Close()
	if q.Push(ev(3)) {
		t.Error("a closed queue took an event")
	}
	if got := next(t, q); len(got) != 1 || got[0].Seq != 2 {
		t.Errorf("after close: %+v", got)
	}
	if _, err := q.Next(context.Background()); err != ErrClosed {
		t.Errorf("closed and empty: %v", err)
	}
}
