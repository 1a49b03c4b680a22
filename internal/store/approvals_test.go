package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/approval"
)

func TestDeferredLifecycle(t *testing.T) {
	ctx := context.Background()
	db, p := openTemp(t)
	s := Deferred{DB: db}
	now := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	req := approval.Request{ID: "r1", SessionID: "s1", Kind: "file_write", Resource: "file:///ws/a", Risk: "medium", Reason: "safe mode", CreatedAt: now}
	if err := s.PutDeferred(ctx, approval.Deferred{ID: "d1", SessionID: "s1", Request: req, Action: []byte(`{"k":1}`), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDeferred(ctx, approval.Deferred{ID: "d1", SessionID: "s1", Request: req, CreatedAt: now}); err == nil {
		t.Error("duplicate id accepted")
	}
	if _, err := s.ClaimDeferred(ctx, "d1"); !errors.Is(err, approval.ErrAlreadyResolved) {
		t.Errorf("claim of a pending action: %v", err)
	}

	// Survives a restart.
	db.Close()
	db, err := Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s = Deferred{DB: db}
	pending, err := s.ListDeferred(ctx, approval.Pending)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending after reopen: %v %v", pending, err)
	}
	if diff := cmp.Diff(req, pending[0].Request); diff != "" {
		t.Errorf("request round trip (-want +got):\n%s", diff)
	}

	// Many frontends answer at once: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ResolveDeferred(ctx, "d1", approval.Answer{Decision: approval.AllowOnce, By: fmt.Sprint("user", i)}, now); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, approval.ErrAlreadyResolved) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d answers won", wins.Load())
	}
	// Many workers claim: exactly one executes.
	var claims atomic.Int32
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ClaimDeferred(ctx, "d1"); err == nil {
				claims.Add(1)
			}
		}()
	}
	wg.Wait()
	if claims.Load() != 1 {
		t.Fatalf("%d claims succeeded", claims.Load())
	}
	if err := s.FinishDeferred(ctx, "d1", "ok"); err != nil {
		t.Fatal(err)
	}
	d, _ := s.GetDeferred(ctx, "d1")
	if d.Status != approval.Done || d.Result != "ok" || d.Answer == nil || string(d.Action) != `{"k":1}` {
		t.Errorf("final record %+v", d)
	}
	if _, err := s.GetDeferred(ctx, "nope"); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("missing id: %v", err)
	}
	if _, err := s.ResolveDeferred(ctx, "d1", approval.Answer{Decision: "maybe"}, now); err == nil {
		t.Error("invalid decision accepted")
	}
}
