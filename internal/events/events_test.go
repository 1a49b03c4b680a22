package events

import (
	"sync"
	"testing"
	"time"
)

func TestPublishSubscribe(t *testing.T) {
	b := New(nil)
	all := b.Subscribe(16, nil)
	tools := b.Subscribe(16, func(e Event) bool { return e.Kind == ToolCallStarted })
	b.Publish(SessionCreated, "s-1", Session{Workspace: "/w"})
	b.Publish(ToolCallStarted, "s-1", Tool{Tool: "bash"})
	e1, e2 := <-all.C, <-all.C
	if e1.Kind != SessionCreated || e1.Seq != 1 || e1.Session != "s-1" || e1.Data.(Session).Workspace != "/w" || e1.Time.IsZero() {
		t.Errorf("first %+v", e1)
	}
	if e2.Kind != ToolCallStarted || e2.Seq != 2 {
		t.Errorf("second %+v", e2)
	}
	if e := <-tools.C; e.Kind != ToolCallStarted || e.Data.(Tool).Tool != "bash" {
		t.Errorf("filtered %+v", e)
	}
	select {
	case e := <-tools.C:
		t.Errorf("the filter let %+v through", e)
	default:
	}
	all.Close()
	all.Close()
	if _, ok := <-all.C; ok {
		t.Error("C is open after Close")
	}
	b.Publish(Error, "", ErrorData{Message: "after close"}) // must not panic
}

func TestSlowSubscriberLagsAndNeverBlocks(t *testing.T) {
	b := New(nil)
	slow := b.Subscribe(2, nil)
	fast := b.Subscribe(100, nil)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10; i++ {
			b.Publish(MessageReceived, "s", Message{Turn: "t"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	if slow.Lagged() != 8 || fast.Lagged() != 0 {
		t.Errorf("lagged: slow %d, fast %d", slow.Lagged(), fast.Lagged())
	}
	<-slow.C
	<-slow.C
	// The next event it receives says how many it missed.
	b.Publish(MessageProcessed, "s", Message{Turn: "t"})
	e := <-slow.C
	if e.Kind != MessageProcessed || e.Missed != 8 || e.Seq != 11 {
		t.Errorf("after lagging: %+v", e)
	}
	b.Publish(MessageProcessed, "s", Message{Turn: "t"})
	if e := <-slow.C; e.Missed != 0 {
		t.Errorf("missed not reset: %+v", e)
	}
	for i := 0; i < 10; i++ {
		if e := <-fast.C; e.Missed != 0 || e.Seq != uint64(i+1) {
			t.Errorf("fast subscriber got %+v", e)
		}
	}
}

func TestConcurrentPublishAndClose(t *testing.T) {
	b := New(nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				b.Publish(ToolCallCompleted, "s", Tool{})
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				s := b.Subscribe(4, nil)
				s.Close()
			}
		}()
	}
	wg.Wait()
	if b.seq.Load() != 1600 {
		t.Errorf("seq %d", b.seq.Load())
	}
}

func TestNilBus(t *testing.T) {
	var b *Bus
	if e := b.Publish(Error, "s", nil); e.Kind != Error {
		t.Error(e)
	}
}

func TestTakeMissed(t *testing.T) {
	b := New(nil)
	s := b.Subscribe(1, nil)
	b.Publish(Error, "", nil)
	b.Publish(Error, "", nil) // dropped
	b.Publish(Error, "", nil) // dropped
	<-s.C
	if n := s.TakeMissed(); n != 2 {
		t.Errorf("TakeMissed %d, want 2", n)
	}
	if n := s.TakeMissed(); n != 0 {
		t.Errorf("TakeMissed again %d, want 0", n)
	}
	b.Publish(Error, "", nil)
	if e := <-s.C; e.Missed != 0 {
		t.Errorf("the next event counts the taken drops again: %+v", e)
	}
	if s.Lagged() != 2 {
		t.Errorf("lagged %d", s.Lagged())
	}
}
