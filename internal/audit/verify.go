package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/astrid-runtime/astrid/internal/keys"
)

// Error reports the first problem Verify found: the log was altered.
type Error struct {
	// Seq is the first bad sequence number, or -1 when the problem is not
	// tied to an entry (the kept checkpoint itself is not trusted).
	Seq int64
	// Reason says what is wrong, for people.
	Reason string
}

func (e *Error) Error() string {
	if e.Seq < 0 {
		return "audit log: " + e.Reason
	}
	return fmt.Sprintf("audit log: entry %d: %s", e.Seq, e.Reason)
}

func bad(seq int64, format string, args ...any) *Error {
	return &Error{Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

// Report summarises a log that verified.
type Report struct {
	// Tree is the size and root hash recomputed from the entries.
	Tree tlog.Tree
	// Checkpoints counts the stored checkpoints checked.
	Checkpoints int64
	// Latest is the newest stored checkpoint (nil for an empty log).
	Latest *Checkpoint
	// Kept is the external checkpoint the log was proved to extend, if any.
	Kept *Checkpoint
}

// pageSize is how many rows Verify reads at a time.
const pageSize = 1024

// refWindow is how many recent entries Verify remembers to check outcome
// references without reading the store again.
const refWindow = 1 << 14

// Verify checks the whole log in r (see the package comment) and returns a
// *Error for the first problem found, or another error when it could not
// read the log or kept is not a checkpoint note at all. trusted are the keys
// whose checkpoint signatures are accepted. kept, when not nil, is a signed
// checkpoint note the user kept; the log must extend it.
//
// Verify is pure apart from reading r; it streams, holding O(log n) hashes
// and a bounded window of recent entries.
func Verify(ctx context.Context, r Reader, trusted keys.Trusted, kept []byte) (*Report, error) {
	return verify(ctx, r, trusted, kept, refWindow)
}

func verify(ctx context.Context, r Reader, trusted keys.Trusted, kept []byte, window int64) (*Report, error) {
	vs, err := NewVerifiers(trusted)
	if err != nil {
		return nil, err
	}
	v := &verifier{ctx: ctx, r: r, vs: vs, rep: &Report{}, window: window, recent: make([]recent, window)}
	if kept != nil {
		c, err := OpenCheckpoint(kept, vs)
		if err != nil {
			var inv *note.InvalidSignatureError
			var unt *UntrustedKeyError
			if errors.As(err, &inv) || errors.As(err, &unt) {
				return nil, bad(-1, "the kept checkpoint is not validly signed by a trusted key (was the runtime key replaced?): %v", err)
			}
			return nil, fmt.Errorf("kept checkpoint: %w", err)
		}
		v.rep.Kept = c
	}
	if err := v.run(); err != nil {
		return nil, err
	}
	return v.rep, nil
}

// openedCheckpoint is a stored checkpoint with the result of checking its
// signature.
type openedCheckpoint struct {
	StoredCheckpoint
	c   *Checkpoint
	err error
}

// openAll checks the signatures of a page of checkpoints on every CPU: an
// ed25519 verification costs more than everything else Verify does for a
// small commit.
func (v *verifier) openAll(page []StoredCheckpoint) []openedCheckpoint {
	out := make([]openedCheckpoint, len(page))
	workers := min(runtime.GOMAXPROCS(0), len(page))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(page); i += workers {
				out[i].StoredCheckpoint = page[i]
				out[i].c, out[i].err = OpenCheckpoint(page[i].Note, v.vs)
			}
		}()
	}
	wg.Wait()
	return out
}

type recent struct {
	hash  tlog.Hash
	allow bool
}

type verifier struct {
	ctx context.Context
	r   Reader
	vs  Verifiers
	rep *Report

	tree frontier
	prev tlog.Hash
	// recent[seq%window] holds the hash of entry seq and whether it is an
	// allowing decision, for the last window entries.
	window int64
	recent []recent

	cps    []openedCheckpoint // current page of checkpoints
	cpNext int64              // next checkpoint size to read from
	cpDone bool
}

// peekCheckpoint returns the next stored checkpoint without consuming it.
func (v *verifier) peekCheckpoint() (*openedCheckpoint, error) {
	if len(v.cps) == 0 && !v.cpDone {
		page, err := v.r.ReadCheckpoints(v.ctx, v.cpNext, pageSize)
		if err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		if len(page) < pageSize {
			v.cpDone = true
		}
		for i, c := range page {
			if c.Size < v.cpNext || i > 0 && c.Size <= page[i-1].Size {
				return nil, fmt.Errorf("read checkpoints: store returned them out of order")
			}
		}
		if len(page) > 0 {
			v.cpNext = page[len(page)-1].Size + 1
		}
		v.cps = v.openAll(page)
	}
	if len(v.cps) == 0 {
		return nil, nil
	}
	return &v.cps[0], nil
}

// checkpoints checks every stored checkpoint of the tree as it is now.
func (v *verifier) checkpoints() error {
	size := v.tree.size
	for {
		sc, err := v.peekCheckpoint()
		if err != nil {
			return err
		}
		if sc == nil || sc.Size > size {
			break
		}
		v.cps = v.cps[1:]
		c, err := sc.c, sc.err
		if err != nil {
			return bad(size-1, "checkpoint of size %d: %v", sc.Size, err)
		}
		if c.Tree.N != sc.Size {
			return bad(size-1, "checkpoint stored as size %d says size %d", sc.Size, c.Tree.N)
		}
		root, err := v.tree.root()
		if err != nil {
			return err
		}
		if root != c.Tree.Hash {
			return bad(size-1, "signed checkpoint of size %d has root %s but the entries give %s", size, c.Tree.Hash, root)
		}
		v.rep.Checkpoints++
		v.rep.Latest = c
	}
	if k := v.rep.Kept; k != nil && k.Tree.N == size {
		root, err := v.tree.root()
		if err != nil {
			return err
		}
		if root != k.Tree.Hash {
			return bad(size-1, "the log does not extend the kept checkpoint: its first %d entries have root %s, the kept checkpoint says %s (history was rewritten)", size, root, k.Tree.Hash)
		}
	}
	return nil
}

func (v *verifier) run() error {
	if err := v.checkpoints(); err != nil {
		return err
	}
	var next int64
	for {
		page, err := v.r.ReadEntries(v.ctx, next, pageSize)
		if err != nil {
			return fmt.Errorf("read entries from %d: %w", next, err)
		}
		for i := range page {
			if err := v.entry(&page[i]); err != nil {
				return err
			}
			if err := v.checkpoints(); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			break
		}
		next = page[len(page)-1].Seq + 1
		if err := v.ctx.Err(); err != nil {
			return err
		}
	}
	return v.finish()
}

// entry checks the next stored entry; v.tree.size is its expected seq.
func (v *verifier) entry(se *StoredEntry) error {
	seq := v.tree.size
	if se.Seq != seq {
		if se.Seq > seq {
			return bad(seq, "missing (the next stored entry is %d)", se.Seq)
		}
		return fmt.Errorf("read entries: store returned entry %d where %d was expected", se.Seq, seq)
	}
	e, err := Decode(se.Data)
	if err != nil {
		return bad(seq, "stored bytes do not decode: %v", err)
	}
	if e.Seq != seq {
		return bad(seq, "stored bytes are those of entry %d (entries were moved, swapped or reordered)", e.Seq)
	}
	if e.Prev != v.prev {
		return bad(seq, "its prev link %s is not the hash of entry %d (%s): the chain is broken", e.Prev, seq-1, v.prev)
	}
	if got, want := se.Index, IndexOf(e); got != want {
		return bad(seq, "index columns %+v do not match the entry %+v", got, want)
	}
	leaf := tlog.RecordHash(se.Data)
	if e.Type == TypeOutcome {
		if err := v.ref(e); err != nil {
			return err
		}
	}
	hs, err := v.tree.add(leaf)
	if err != nil {
		return err
	}
	if want := joinHashes(hs); !bytes.Equal(se.Hashes, want) {
		if len(se.Hashes) != len(want) {
			return bad(seq, "has %d bytes of stored hashes, want %d", len(se.Hashes), len(want))
		}
		for k := range hs {
			if bytes.Equal(se.Hashes[k*tlog.HashSize:(k+1)*tlog.HashSize], hs[k][:]) {
				continue
			}
			if k == 0 {
				return bad(seq, "stored tree hash 0 (its leaf hash) does not match its bytes: the entry or its stored hash was altered")
			}
			return bad(seq, "stored tree hash %d (index %d) does not match the entries", k, tlog.StoredHashIndex(0, seq)+int64(k))
		}
	}
	slot := &v.recent[seq%v.window]
	slot.hash, slot.allow = leaf, e.Type == TypeDecision && e.Decision == Allowed
	v.prev = leaf
	return nil
}

// ref checks that an outcome names an earlier allowing decision.
func (v *verifier) ref(e *Entry) error {
	ref := e.Ref
	if ref.Seq >= e.Seq {
		return bad(e.Seq, "outcome references entry %d, which is not before it", ref.Seq)
	}
	var h tlog.Hash
	var allow bool
	if e.Seq-ref.Seq <= v.window {
		slot := v.recent[ref.Seq%v.window]
		h, allow = slot.hash, slot.allow
	} else {
		rows, err := v.r.ReadEntries(v.ctx, ref.Seq, 1)
		if err != nil {
			return fmt.Errorf("read entry %d: %w", ref.Seq, err)
		}
		if len(rows) == 0 || rows[0].Seq != ref.Seq {
			return fmt.Errorf("read entry %d: gone while verifying", ref.Seq)
		}
		d, err := Decode(rows[0].Data)
		if err != nil {
			return fmt.Errorf("read entry %d: %w", ref.Seq, err)
		}
		h, allow = tlog.RecordHash(rows[0].Data), d.Type == TypeDecision && d.Decision == Allowed
	}
	if h != ref.Hash {
		return bad(e.Seq, "outcome references entry %d by hash %s, but its hash is %s", ref.Seq, ref.Hash, h)
	}
	if !allow {
		return bad(e.Seq, "outcome references entry %d, which is not a decision that allowed the action", ref.Seq)
	}
	return nil
}

// finish runs the checks that need the whole log.
func (v *verifier) finish() error {
	size := v.tree.size
	root, err := v.tree.root()
	if err != nil {
		return err
	}
	v.rep.Tree = tlog.Tree{N: size, Hash: root}
	if sc, err := v.peekCheckpoint(); err != nil {
		return err
	} else if sc != nil {
		// Checkpoints beyond the last entry: report the largest claim.
		last, ok, err := v.r.LatestCheckpoint(v.ctx)
		if err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		if !ok || last.Size < sc.Size {
			last = sc.StoredCheckpoint
		}
		if _, err := OpenCheckpoint(last.Note, v.vs); err != nil {
			return bad(size, "stored checkpoint of size %d (beyond the last entry): %v", last.Size, err)
		}
		return bad(size, "a signed checkpoint covers %d entries but the log has only %d: entries %d..%d were removed", last.Size, size, size, last.Size-1)
	}
	switch {
	case size > 0 && v.rep.Latest == nil:
		return bad(0, "no signed checkpoint covers the log")
	case v.rep.Latest != nil && v.rep.Latest.Tree.N != size:
		return bad(v.rep.Latest.Tree.N, "entries %d..%d are not covered by any signed checkpoint", v.rep.Latest.Tree.N, size-1)
	}
	k := v.rep.Kept
	if k == nil || k.Tree.N == 0 {
		return nil
	}
	if k.Tree.N > size {
		return bad(size, "the log was truncated: the kept checkpoint covers %d entries, the log has %d", k.Tree.N, size)
	}
	// The entries were already checked against the kept root when the
	// stream passed its size; the RFC 6962 consistency proof (section
	// 2.1.2) below is the same fact as a light verifier would check it,
	// from the stored hashes alone.
	p, err := tlog.ProveTree(size, k.Tree.N, HashReader(v.ctx, v.r))
	if err != nil {
		return fmt.Errorf("consistency proof: %w", err)
	}
	if err := tlog.CheckTree(p, size, root, k.Tree.N, k.Tree.Hash); err != nil {
		return bad(k.Tree.N-1, "the log (size %d) does not extend the kept checkpoint (size %d): %v", size, k.Tree.N, err)
	}
	return nil
}
