package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/keys"
)

func testKey(t testing.TB) *keys.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keys.Key{Name: keys.Runtime, Private: priv, Created: time.Now()}
}

func decisionEntry(session string, d audit.Decision) audit.Entry {
	return audit.Entry{Type: audit.TypeDecision, Session: session, Principal: "user:t", Frontend: "cli",
		Action: audit.Action{Kind: "bash", Resource: "exec://ls"}, Decision: d}
}

func TestAuditLogOverSQLite(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after every other cleanup
	ctx := context.Background()
	db, p := openTemp(t)
	k := testKey(t)
	l, err := audit.Open(ctx, db.Audit(), k, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Append(ctx, decisionEntry("s1", audit.Allowed))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, audit.Entry{Type: audit.TypeOutcome, Session: "s1", Ref: audit.Ref{Seq: r.Seq, Hash: r.Hash}, Status: audit.Success}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, decisionEntry("s2", audit.Denied)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	db.Close()

	// Reopen, append more, verify read-only.
	db, err = Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err = audit.Open(ctx, db.Audit(), k, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := l.Append(ctx, decisionEntry("s2", audit.Deferred)); err != nil || r.Seq != 3 {
		t.Fatalf("append after reopen: %+v %v", r, err)
	}
	l.Close()
	db.Close()
	ro, err := Open(ctx, p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := audit.Verify(ctx, ro.Audit(), keys.Trusted{k.ID(): k.Public()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tree.N != 4 || rep.Checkpoints != 4 {
		t.Errorf("report %+v", rep)
	}

	got, err := ro.Audit().List(ctx, AuditFilter{Session: "s2"})
	if err != nil || len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 {
		t.Errorf("List session s2 = %+v, %v", got, err)
	}
	got, err = ro.Audit().List(ctx, AuditFilter{Decision: "denied"})
	if err != nil || len(got) != 1 || got[0].Seq != 2 {
		t.Errorf("List denied = %+v, %v", got, err)
	}
	got, err = ro.Audit().List(ctx, AuditFilter{Limit: 2})
	if err != nil || len(got) != 2 || got[1].Seq != 3 {
		t.Errorf("List limit 2 = %+v, %v", got, err)
	}
	got, err = ro.Audit().List(ctx, AuditFilter{Since: time.Now().Add(time.Hour)})
	if err != nil || len(got) != 0 {
		t.Errorf("List since future = %+v, %v", got, err)
	}
	st, err := ro.Audit().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 4 || st.Checkpoints != 4 || len(st.BySession) != 2 || len(st.ByDecision) != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestAuditCommitConflictStoresNothing(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	a := db.Audit()
	err := a.Commit(ctx, audit.Batch{Size: 5, Entries: []audit.StoredEntry{{Seq: 5, Data: []byte("x"), Hashes: []byte("y")}}, Checkpoint: audit.StoredCheckpoint{Size: 6, Note: []byte("n")}})
	if !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("Commit = %v, want ErrConflict", err)
	}
	// A failing insert (duplicate checkpoint) rolls back the entries too.
	ok := audit.Batch{Size: 0, Entries: []audit.StoredEntry{{Seq: 0, Data: []byte("x"), Hashes: []byte("y")}}, Checkpoint: audit.StoredCheckpoint{Size: 1, Note: []byte("n")}}
	if err := a.Commit(ctx, ok); err != nil {
		t.Fatal(err)
	}
	dup := audit.Batch{Size: 1, Entries: []audit.StoredEntry{{Seq: 1, Data: []byte("x"), Hashes: []byte("y")}}, Checkpoint: audit.StoredCheckpoint{Size: 1, Note: []byte("n")}}
	if err := a.Commit(ctx, dup); err == nil {
		t.Fatal("duplicate checkpoint accepted")
	}
	if rows, _ := a.ReadEntries(ctx, 0, 10); len(rows) != 1 {
		t.Errorf("%d entries after a failed commit, want 1", len(rows))
	}
}

// TestAuditAppendFailsClosedOnUnwritableDB: when the database cannot be
// written, Append returns an error (the caller denies the action) and
// nothing is stored.
func TestAuditAppendFailsClosedOnUnwritableDB(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after every other cleanup
	ctx := context.Background()
	db, p := openTemp(t)
	k := testKey(t)
	l, err := audit.Open(ctx, db.Audit(), k, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, decisionEntry("s", audit.Allowed)); err != nil {
		t.Fatal(err)
	}
	l.Close()

	// The same file, now only readable by this process.
	ro, err := Open(ctx, p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	l, err = audit.Open(ctx, ro.Audit(), k, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, decisionEntry("s", audit.Allowed)); err == nil {
		t.Fatal("Append to a read-only database succeeded")
	}

	// A database closed under the log: also an error, never a hang.
	l2, err := audit.Open(ctx, db.Audit(), k, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	db.Close()
	if _, err := l2.Append(ctx, decisionEntry("s", audit.Allowed)); err == nil {
		t.Fatal("Append to a closed database succeeded")
	}
	rows, _ := ro.Audit().ReadEntries(ctx, 0, 10)
	if len(rows) != 1 {
		t.Errorf("%d entries stored, want 1", len(rows))
	}
}

func TestAuditConcurrentAppendsSQLite(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after every other cleanup
	ctx := context.Background()
	db, _ := openTemp(t)
	k := testKey(t)
	l, err := audit.Open(ctx, db.Audit(), k, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := l.Append(ctx, decisionEntry(fmt.Sprintf("s%d-%d", w, i), audit.Denied)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, db.Audit(), keys.Trusted{k.ID(): k.Public()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tree.N != 200 || rep.Checkpoints > 200 {
		t.Errorf("report %+v", rep)
	}
}
