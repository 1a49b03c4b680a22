package budget

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestConcurrentReservationsNeverOverspend(t *testing.T) {
	const limit = 100 * 1_000_000 // $100
	tr := NewTracker()
	l := Limits{SessionMax: limit, WorkspaceMax: limit / 2}
	var wg sync.WaitGroup
	var granted atomic.Int64
	start := make(chan struct{})
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// $0.37 each; half of the goroutines also charge the workspace.
			ws := ""
			if i%2 == 0 {
				ws = "/ws"
			}
			r, _, err := tr.Reserve(l, "s1", ws, FromUSD(0.37))
			if err != nil {
				if !errors.Is(err, ErrExceeded) {
					t.Error(err)
				}
				return
			}
			granted.Add(int64(r.Amount()))
			if i%3 == 0 {
				r.Release()
				granted.Add(-int64(r.Amount()))
			} else {
				r.Commit(r.Amount())
			}
		}()
	}
	close(start)
	wg.Wait()
	s := tr.Session("s1")
	if s.Reserved != 0 {
		t.Errorf("reserved %v left after every reservation ended", s.Reserved)
	}
	if s.Spent > limit {
		t.Errorf("session spent %v > limit", s.Spent)
	}
	if w := tr.Workspace("/ws"); w.Spent > limit/2 {
		t.Errorf("workspace spent %v > limit", w.Spent)
	}
	if Micros(granted.Load()) != s.Spent {
		t.Errorf("granted %v != spent %v", Micros(granted.Load()), s.Spent)
	}
}

func TestLimits(t *testing.T) {
	tr := NewTracker()
	l := Limits{SessionMax: FromUSD(1), PerActionMax: FromUSD(0.5), WarnAtPercent: 80}
	var ee *ExceededError
	if _, _, err := tr.Reserve(l, "s", "", FromUSD(0.6)); !errors.As(err, &ee) || ee.Limit != "per_action" {
		t.Fatalf("per-action: %v", err)
	}
	r1, w, err := tr.Reserve(l, "s", "", FromUSD(0.5))
	if err != nil || len(w) != 0 {
		t.Fatal(err, w)
	}
	r2, w, err := tr.Reserve(l, "s", "", FromUSD(0.4))
	if err != nil || len(w) != 1 || w[0].Account != "session" {
		t.Fatalf("warning at 90%%: %v %v", w, err)
	}
	if _, _, err := tr.Reserve(l, "s", "", FromUSD(0.2)); !errors.As(err, &ee) || ee.Limit != "session" {
		t.Fatalf("session: %v", err)
	}
	r1.Commit(FromUSD(0.1)) // refund 0.4
	if _, _, err := tr.Reserve(l, "s", "", FromUSD(0.2)); err != nil {
		t.Fatalf("after refund: %v", err)
	}
	r2.Release()
	r2.Commit(FromUSD(5)) // no effect after Release
	if got := tr.Session("s"); got.Spent != FromUSD(0.1) || got.Reserved != FromUSD(0.2) {
		t.Fatalf("usage %+v", got)
	}
	if _, _, err := tr.Reserve(l, "other", "", FromUSD(0.5)); err != nil {
		t.Fatalf("another session has its own account: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	tr := NewTracker()
	l := Limits{SessionMax: FromUSD(1)}
	for _, v := range []float64{-1, 1e300} {
		if _, _, err := tr.Reserve(l, "s", "", FromUSD(v)); !errors.Is(err, ErrExceeded) {
			t.Errorf("Reserve(%v) = %v", v, err)
		}
	}
	if _, _, err := tr.Reserve(l, "", "", 1); err == nil {
		t.Error("reservation without session accepted")
	}
	if _, _, err := tr.Reserve(Limits{SessionMax: -1}, "s", "", 1); !errors.Is(err, ErrExceeded) {
		t.Error("negative limit accepted")
	}
	tr.SetSpent("s", FromUSD(0.9), "", 0)
	tr.SetSpent("s", FromUSD(0.1), "", 0) // never lowers
	if _, _, err := tr.Reserve(l, "s", "", FromUSD(0.2)); err == nil {
		t.Error("restored spending not enforced")
	}
}

func BenchmarkReserveCommit(b *testing.B) {
	tr := NewTracker()
	l := Limits{SessionMax: FromUSD(1e9)}
	for b.Loop() {
		r, _, _ := tr.Reserve(l, "s", "/ws", 10)
		r.Commit(5)
	}
}
