package audit

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
	"golang.org/x/mod/sumdb/tlog"

	"github.com/astrid-runtime/astrid/internal/keys"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newKey(t testing.TB) *keys.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keys.Key{Name: keys.Runtime, Private: priv, Created: time.Now()}
}

func trustedOf(ks ...*keys.Key) keys.Trusted {
	t := keys.Trusted{}
	for _, k := range ks {
		t[k.ID()] = k.Public()
	}
	return t
}

func openLog(t testing.TB, s Store, k *keys.Key) *Log {
	t.Helper()
	l, err := Open(context.Background(), s, k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func decision(session string, d Decision) Entry {
	return Entry{Type: TypeDecision, Session: session, Principal: "user:test", Frontend: "cli",
		Action: Action{Kind: "bash", Resource: "exec://ls", ArgsHash: HashBytes([]byte("ls"))}, Decision: d, Proof: Proof{Rule: "r1"}}
}

func outcome(session string, ref Receipt) Entry {
	return Entry{Type: TypeOutcome, Session: session, Frontend: "cli", Ref: Ref{Seq: ref.Seq, Hash: ref.Hash},
		Status: Success, OutputHash: HashBytes([]byte("out")), Text: "done"}
}

func mustVerify(t *testing.T, r Reader, trusted keys.Trusted, kept []byte) *Report {
	t.Helper()
	rep, err := Verify(context.Background(), r, trusted, kept)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestAppendDecisionAndOutcomeVerify(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	s := &memStore{}
	l := openLog(t, s, k)
	r1, err := l.Append(ctx, decision("s1", Allowed))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Append(ctx, outcome("s1", r1))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Seq != 0 || r2.Seq != 1 || r2.TreeSize != 2 {
		t.Errorf("receipts %+v %+v", r1, r2)
	}
	rows, _ := s.ReadEntries(ctx, 0, 10)
	e, err := Decode(rows[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	if e.Prev != r1.Hash || e.Ref.Hash != r1.Hash || e.Time.IsZero() {
		t.Errorf("outcome entry %+v not linked to %v", e, r1.Hash)
	}
	rep := mustVerify(t, s, trustedOf(k), nil)
	if rep.Tree.N != 2 || rep.Checkpoints != 2 || rep.Latest.Tree != rep.Tree {
		t.Errorf("report %+v", rep)
	}
	// The receipt's hash is the entry's leaf, provable in the checkpoint.
	p, err := tlog.ProveRecord(2, 1, HashReader(ctx, s))
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(p, 2, rep.Latest.Tree.Hash, 1, r2.Hash); err != nil {
		t.Errorf("inclusion proof: %v", err)
	}
}

func TestOutcomeRefsAreChecked(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, &memStore{}, newKey(t))
	allowed, _ := l.Append(ctx, decision("s", Allowed))
	denied, _ := l.Append(ctx, decision("s", Denied))
	for name, ref := range map[string]Receipt{
		"denied decision": denied,
		"future seq":      {Seq: 99, Hash: allowed.Hash},
		"wrong hash":      {Seq: allowed.Seq, Hash: denied.Hash},
	} {
		if _, err := l.Append(ctx, outcome("s", ref)); !errors.Is(err, ErrBadRef) {
			t.Errorf("%s: Append = %v, want ErrBadRef", name, err)
		}
	}
	o, err := l.Append(ctx, outcome("s", allowed))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, outcome("s", o)); !errors.Is(err, ErrBadRef) {
		t.Errorf("outcome of an outcome: %v, want ErrBadRef", err)
	}
}

func TestAppendRefusesInvalidEntries(t *testing.T) {
	s := &memStore{}
	l := openLog(t, s, newKey(t))
	e := decision("s", Allowed)
	e.Action.Kind = ""
	if _, err := l.Append(context.Background(), e); !errors.Is(err, ErrInvalidEntry) {
		t.Errorf("Append = %v, want ErrInvalidEntry", err)
	}
	if s.commits != 0 {
		t.Error("invalid entry reached the store")
	}
}

func TestConcurrentAppendsGroupCommit(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	s := &memStore{}
	l := openLog(t, s, k)
	const writers, each = 16, 50
	var wg sync.WaitGroup
	seqs := make(chan int64, writers*each)
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				sess := fmt.Sprintf("s%d", w)
				r, err := l.Append(ctx, decision(sess, Allowed))
				if err != nil {
					errs <- err
					return
				}
				seqs <- r.Seq
				if _, err := l.Append(ctx, outcome(sess, r)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(seqs)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d returned twice", s)
		}
		seen[s] = true
	}
	rep := mustVerify(t, s, trustedOf(k), nil)
	if rep.Tree.N != 2*writers*each {
		t.Errorf("tree size %d", rep.Tree.N)
	}
	if s.commits >= int(rep.Tree.N) {
		t.Logf("no batching happened (%d commits for %d entries)", s.commits, rep.Tree.N)
	}
}

func TestAppendFailsClosed(t *testing.T) {
	ctx := context.Background()
	s := &memStore{}
	l := openLog(t, s, newKey(t))
	if _, err := l.Append(ctx, decision("s", Allowed)); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	s.mu.Lock()
	s.failCommit = boom
	s.mu.Unlock()
	if _, err := l.Append(ctx, decision("s", Allowed)); !errors.Is(err, boom) {
		t.Fatalf("Append = %v, want the store's error", err)
	}
	s.mu.Lock()
	s.failCommit = nil
	s.mu.Unlock()
	// The failed batch left no trace: the next entry takes seq 1.
	r, err := l.Append(ctx, decision("s", Allowed))
	if err != nil || r.Seq != 1 {
		t.Fatalf("Append after recovery = %+v, %v", r, err)
	}
}

func TestCloseStopsWriter(t *testing.T) {
	l, err := Open(context.Background(), &memStore{}, newKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), decision("s", Allowed)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestAppendHonoursContext(t *testing.T) {
	l := openLog(t, &memStore{}, newKey(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, decision("s", Allowed)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append = %v", err)
	}
}

func TestTwoWritersOnOneStore(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	s := &memStore{}
	a := openLog(t, s, k)
	b := openLog(t, s, k)
	for i := range 10 {
		l := a
		if i%3 == 0 {
			l = b
		}
		if _, err := l.Append(ctx, decision("s", Allowed)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if rep := mustVerify(t, s, trustedOf(k), nil); rep.Tree.N != 10 {
		t.Errorf("size %d", rep.Tree.N)
	}
}

func TestOpenRefusesBadTail(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	s := &memStore{}
	l := openLog(t, s, k)
	for range 3 {
		if _, err := l.Append(ctx, decision("s", Allowed)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if _, err := Open(ctx, s, newKey(t), Options{}); err == nil {
		t.Error("Open with another key accepted the log's checkpoint")
	}
	s.entries[2].Hashes[0] ^= 1
	if _, err := Open(ctx, s, k, Options{}); err == nil {
		t.Error("Open accepted a tree that does not match its checkpoint")
	}
	s.entries[2].Hashes[0] ^= 1
	s.cps = s.cps[:2]
	if _, err := Open(ctx, s, k, Options{}); err == nil {
		t.Error("Open accepted an entry after the last checkpoint")
	}
}

// TestFrontierMatchesTlog checks the writer's and verifier's O(log n)
// state against tlog's own computation over all stored hashes.
func TestFrontierMatchesTlog(t *testing.T) {
	var f frontier
	var all []tlog.Hash
	r := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ix))
		for i, x := range ix {
			out[i] = all[x]
		}
		return out, nil
	})
	for n := int64(0); n < 300; n++ {
		leaf := tlog.RecordHash([]byte{byte(n), byte(n >> 8)})
		want, err := tlog.StoredHashes(n, []byte{byte(n), byte(n >> 8)}, r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.add(leaf)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("record %d: stored hashes differ", n)
		}
		all = append(all, want...)
		wantRoot, _ := tlog.TreeHash(n+1, r)
		if root, _ := f.root(); root != wantRoot {
			t.Fatalf("size %d: root differs", n+1)
		}
	}
}
