package audit

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/keys"
)

// buildLog appends n entries (decisions, each allowed one followed by its
// outcome) in batches of one and returns the store.
func buildLog(t *testing.T, k *keys.Key, n int) *memStore {
	t.Helper()
	ctx := context.Background()
	s := &memStore{}
	l, err := Open(ctx, s, k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < n; {
		r, err := l.Append(ctx, decision("s", Allowed))
		if err != nil {
			t.Fatal(err)
		}
		i++
		if i < n {
			if _, err := l.Append(ctx, outcome("s", r)); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
	return s
}

func wantBad(t *testing.T, name string, s Reader, trusted keys.Trusted, kept []byte, seq int64, reason string) {
	t.Helper()
	_, err := Verify(context.Background(), s, trusted, kept)
	var ve *Error
	if !errors.As(err, &ve) {
		t.Errorf("%s: Verify = %v, want *Error", name, err)
		return
	}
	if ve.Seq != seq || !strings.Contains(ve.Reason, reason) {
		t.Errorf("%s: Verify = %v; want seq %d and %q", name, ve, seq, reason)
	}
}

func TestVerifyCatchesTampering(t *testing.T) {
	k := newKey(t)
	tr := trustedOf(k)
	fresh := func() *memStore { return buildLog(t, k, 10) }

	s := fresh()
	rep := mustVerify(t, s, tr, nil)
	if rep.Tree.N != 10 || rep.Checkpoints != 10 {
		t.Fatalf("report %+v", rep)
	}
	kept := rep.Latest.Note

	s = fresh()
	s.entries[5].Data[len(s.entries[5].Data)-1] ^= 1 // outcome text "done"
	wantBad(t, "flipped text byte", s, tr, nil, 5, "stored tree hash 0")

	s = fresh()
	s.entries[4].Data[len(s.entries[4].Data)-1] ^= 1 // length of an empty text
	wantBad(t, "flipped length byte", s, tr, nil, 4, "do not decode")

	s = fresh()
	s.entries[4].Data[30] ^= 1 // time
	wantBad(t, "flipped time byte", s, tr, nil, 4, "index columns")

	s = fresh()
	s.entries[6].Hashes[len(s.entries[6].Hashes)-1] ^= 1
	wantBad(t, "stored hash", s, tr, nil, 6, "stored tree hash")

	s = fresh()
	s.entries = append(s.entries[:3], s.entries[4:]...)
	wantBad(t, "deleted entry", s, tr, nil, 3, "missing")

	s = fresh()
	s.entries[2].Data, s.entries[5].Data = s.entries[5].Data, s.entries[2].Data
	wantBad(t, "swapped", s, tr, nil, 2, "moved, swapped or reordered")

	s = fresh()
	s.entries[8].Index.Session = "other"
	wantBad(t, "index column", s, tr, nil, 8, "index columns")

	s = fresh()
	s.entries = s.entries[:7]
	wantBad(t, "truncated, checkpoints kept", s, tr, nil, 7, "were removed")

	s = fresh()
	s.entries, s.cps = s.entries[:7], s.cps[:7]
	mustVerify(t, s, tr, nil)                                                 // consistent on its own ...
	wantBad(t, "truncated with kept checkpoint", s, tr, kept, 7, "truncated") // ... but not with the kept one

	s = fresh()
	s.cps = s.cps[:9]
	wantBad(t, "unsigned tail", s, tr, nil, 9, "not covered")

	s = fresh()
	s.cps[3].Note[len(s.cps[3].Note)-5] ^= 1
	wantBad(t, "forged checkpoint signature", s, tr, nil, 3, "checkpoint of size 4")

	// A whole new log signed by another key.
	other := newKey(t)
	s = buildLog(t, other, 10)
	wantBad(t, "log of another key", s, tr, nil, 0, "not trusted")
	wantBad(t, "log of another key, kept", s, trustedOf(k, other), kept, 9, "does not extend the kept checkpoint")

	// A kept checkpoint that no trusted key signed.
	_, err := Verify(context.Background(), fresh(), tr, buildLogNote(t, other))
	var ve *Error
	if !errors.As(err, &ve) || ve.Seq != -1 {
		t.Errorf("untrusted kept checkpoint: %v", err)
	}
	// Not a note at all: Verify cannot run.
	if _, err := Verify(context.Background(), fresh(), tr, []byte("hello")); err == nil || errors.As(err, &ve) {
		t.Errorf("garbage kept checkpoint: %v, want a plain error", err)
	}
}

func buildLogNote(t *testing.T, k *keys.Key) []byte {
	s := buildLog(t, k, 2)
	return s.cps[len(s.cps)-1].Note
}

// TestVerifyCatchesRewriteWithStolenKey: someone with the runtime key
// rewrites an early entry and re-signs everything. Only the kept
// checkpoint (the consistency proof) can tell.
func TestVerifyCatchesRewriteWithStolenKey(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	orig := buildLog(t, k, 6)
	kept := orig.cps[3].Note // the user kept the checkpoint of size 4

	forged := &memStore{}
	l, err := Open(ctx, forged, k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		d := decision("s", Allowed)
		if i == 1 {
			d.Decision = Denied // history rewritten
		}
		if _, err := l.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	mustVerify(t, forged, trustedOf(k), nil)
	wantBad(t, "rewritten", forged, trustedOf(k), kept, 3, "does not extend the kept checkpoint")
	if rep := mustVerify(t, orig, trustedOf(k), kept); rep.Kept == nil || rep.Kept.Tree.N != 4 {
		t.Errorf("report %+v", rep)
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	rep := mustVerify(t, &memStore{}, trustedOf(newKey(t)), nil)
	if rep.Tree.N != 0 || rep.Latest != nil {
		t.Errorf("report %+v", rep)
	}
}

func TestVerifyFarRefs(t *testing.T) {
	// An outcome whose decision is older than the verifier's window is
	// checked through the store.
	ctx := context.Background()
	k := newKey(t)
	s := &memStore{}
	l := openLog(t, s, k)
	first, err := l.Append(ctx, decision("s", Allowed))
	if err != nil {
		t.Fatal(err)
	}
	var wg = make(chan error, 1)
	go func() {
		for range 10 {
			if _, err := l.Append(ctx, decision("s", Denied)); err != nil {
				wg <- err
				return
			}
		}
		wg <- nil
	}()
	if err := <-wg; err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, outcome("s", first)); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(ctx, s, trustedOf(k), nil, 4); err != nil {
		t.Fatal(err)
	}
}
