package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/astrid-runtime/astrid/internal/keys"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log is closed")

// ErrBadRef means an outcome entry does not name an earlier decision entry
// that allowed its action (wrong seq, wrong hash, or not an allowing
// decision).
var ErrBadRef = errors.New("outcome does not reference an allowing decision")

// Options tune Open.
type Options struct {
	// Now is the clock that stamps entries; nil means time.Now.
	Now func() time.Time
	// Trusted are the keys whose checkpoint Open accepts at the end of an
	// existing log; nil means only the signer's key.
	Trusted keys.Trusted
	// MaxBatch bounds the entries committed together; 0 means 256.
	MaxBatch int
}

// Receipt tells where an appended entry was stored.
type Receipt struct {
	Seq  int64
	Hash tlog.Hash
	// TreeSize is the size of the signed checkpoint committed with it.
	TreeSize int64
}

// Log appends entries to a Store. It is safe for concurrent use: concurrent
// Append calls are committed together by one writer goroutine (group
// commit), one transaction and one signed checkpoint per batch.
type Log struct {
	store     Store
	signer    *signer
	verifiers Verifiers
	now       func() time.Time
	maxBatch  int
	ctx       context.Context // for store calls of the writer

	reqs      chan *request // unbuffered: a send succeeds only while the writer runs
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// Owned by the writer goroutine once Open returns.
	tree frontier
	prev tlog.Hash // hash of the last entry
	// recent holds the hashes of recently committed allowing decisions,
	// so that checking an outcome's reference needs no read of the store.
	recent recentDecisions
}

// recentDecisions is a bounded map from seq to the leaf hash of an allowing
// decision entry, oldest evicted first. Owned by the writer goroutine.
type recentDecisions struct {
	hash  map[int64]tlog.Hash
	order []int64
}

const recentCap = 4096

func (r *recentDecisions) add(seq int64, h tlog.Hash) {
	if r.hash == nil {
		r.hash = make(map[int64]tlog.Hash, recentCap)
	}
	if len(r.order) == recentCap {
		delete(r.hash, r.order[0])
		r.order = r.order[1:]
	}
	r.hash[seq] = h
	r.order = append(r.order, seq)
}

type request struct {
	e   Entry
	res chan result // buffered 1; receives exactly one result
}

type result struct {
	r   Receipt
	err error
}

// Open checks the end of the stored log (its newest checkpoint is signed by
// a trusted key, covers every entry and matches the stored tree) and starts
// the writer. It refuses to extend a log whose end does not check out:
// run Verify to find out why. Close must be called to stop the writer.
func Open(ctx context.Context, s Store, signer *keys.Key, opts Options) (*Log, error) {
	sg, err := newSigner(signer)
	if err != nil {
		return nil, fmt.Errorf("audit: signer: %w", err)
	}
	trusted := opts.Trusted
	if trusted == nil {
		trusted = keys.Trusted{signer.ID(): signer.Public()}
	}
	vs, err := NewVerifiers(trusted)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{
		store:     s,
		signer:    sg,
		verifiers: vs,
		now:       opts.Now,
		maxBatch:  opts.MaxBatch,
		ctx:       context.WithoutCancel(ctx),
		reqs:      make(chan *request),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.maxBatch <= 0 {
		l.maxBatch = 256
	}
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// load reads the tail of the log into the writer's state.
func (l *Log) load(ctx context.Context) error {
	cp, ok, err := l.store.LatestCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("audit: read the latest checkpoint: %w", err)
	}
	var size int64
	var want tlog.Hash
	if ok {
		c, err := OpenCheckpoint(cp.Note, l.verifiers)
		if err != nil {
			return fmt.Errorf("audit: latest checkpoint: %w", err)
		}
		if c.Tree.N != cp.Size {
			return fmt.Errorf("audit: latest checkpoint is stored as size %d but says %d", cp.Size, c.Tree.N)
		}
		size, want = c.Tree.N, c.Tree.Hash
	}
	rest, err := l.store.ReadEntries(ctx, size, 1)
	if err != nil {
		return fmt.Errorf("audit: read entries: %w", err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("audit: entry %d is not covered by a signed checkpoint (latest covers %d entries); run astrid audit verify", rest[0].Seq, size)
	}
	f, err := loadFrontier(ctx, l.store, size)
	if err != nil {
		return fmt.Errorf("audit: read the tree: %w", err)
	}
	if ok {
		root, err := f.root()
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if root != want {
			return fmt.Errorf("audit: stored tree of %d entries does not match its signed checkpoint; run astrid audit verify", size)
		}
	}
	var prev tlog.Hash
	if size > 0 {
		if prev, err = storedHash(ctx, l.store, tlog.StoredHashIndex(0, size-1)); err != nil {
			return fmt.Errorf("audit: read the last entry: %w", err)
		}
	}
	l.tree, l.prev = f, prev
	return nil
}

// Append stores e and returns only once it is committed together with a
// signed checkpoint that covers it. The log sets Seq, Time and Prev. An
// outcome entry must reference an earlier decision entry that allowed its
// action, by seq and hash (see ErrBadRef).
//
// Any error means the entry may not be stored: the caller must treat the
// action as denied. If ctx ends while the entry waits for its commit,
// Append returns ctx's error even though the entry may still be committed;
// the log then records a decision whose action did not run, never the
// reverse.
func (l *Log) Append(ctx context.Context, e Entry) (Receipt, error) {
	e.Seq, e.Time, e.Prev = 0, time.Time{}, tlog.Hash{}
	if err := e.Validate(); err != nil {
		return Receipt{}, err
	}
	if err := ctx.Err(); err != nil {
		return Receipt{}, err
	}
	req := &request{e: e, res: make(chan result, 1)}
	select {
	case l.reqs <- req:
	case <-l.quit:
		return Receipt{}, ErrClosed
	case <-ctx.Done():
		return Receipt{}, ctx.Err()
	}
	select {
	case r := <-req.res:
		return r.r, r.err
	case <-ctx.Done():
		return Receipt{}, ctx.Err()
	}
}

// Close stops the writer after the batch it is committing; Appends waiting
// to be batched and later ones fail with ErrClosed. It does not close the
// store. Close is idempotent.
func (l *Log) Close() error {
	l.closeOnce.Do(func() { close(l.quit) })
	<-l.done
	return nil
}

// run is the writer goroutine.
func (l *Log) run() {
	defer close(l.done)
	batch := make([]*request, 0, l.maxBatch)
	for {
		select {
		case <-l.quit:
			return
		case r := <-l.reqs:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < l.maxBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		l.commit(batch)
		clear(batch)
	}
}

// commit stores a batch and answers every request in it exactly once.
func (l *Log) commit(batch []*request) {
	res, err := l.tryCommit(batch)
	if errors.Is(err, ErrConflict) {
		// Another writer (another process) extended the log: catch up
		// with its checked tail and try once more.
		if err = l.load(l.ctx); err == nil {
			res, err = l.tryCommit(batch)
		}
	}
	for i, r := range batch {
		if err != nil {
			r.res <- result{err: fmt.Errorf("audit: append: %w", err)}
		} else {
			r.res <- res[i]
		}
	}
}

// tryCommit builds, signs and commits the batch. It changes the writer's
// state only when the commit succeeded. Requests refused on their own
// (ErrBadRef) get their error in res; err fails the whole batch.
func (l *Log) tryCommit(batch []*request) (res []result, err error) {
	tree := l.tree.clone()
	prev := l.prev
	base := tree.size
	now := l.now().UTC()
	res = make([]result, len(batch))
	rows := make([]StoredEntry, 0, len(batch))
	var idx []int
	for i, r := range batch {
		e := r.e
		e.Seq, e.Time, e.Prev = tree.size, now, prev
		if e.Type == TypeOutcome {
			if err := l.checkRef(&e, base, rows); err != nil {
				res[i].err = err
				continue
			}
		}
		data, err := e.Encode()
		if err != nil {
			res[i].err = err
			continue
		}
		leaf := tlog.RecordHash(data)
		hs, err := tree.add(leaf)
		if err != nil {
			return nil, err
		}
		rows = append(rows, StoredEntry{Seq: e.Seq, Data: data, Hashes: joinHashes(hs), Index: IndexOf(&e)})
		res[i].r = Receipt{Seq: e.Seq, Hash: leaf}
		idx = append(idx, i)
		prev = leaf
	}
	if len(rows) == 0 {
		return res, nil
	}
	root, err := tree.root()
	if err != nil {
		return nil, err
	}
	note, err := l.signer.sign(tlog.Tree{N: tree.size, Hash: root})
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	if err := l.store.Commit(l.ctx, Batch{Size: base, Entries: rows, Checkpoint: StoredCheckpoint{Size: tree.size, Note: note}}); err != nil {
		return nil, err
	}
	l.tree, l.prev = tree, prev
	for _, i := range idx {
		res[i].r.TreeSize = tree.size
		if e := batch[i].e; e.Type == TypeDecision && e.Decision == Allowed {
			l.recent.add(res[i].r.Seq, res[i].r.Hash)
		}
	}
	return res, nil
}

// checkRef checks an outcome's reference against the stored log and the
// rows of the batch being built (entries base, base+1, ...).
func (l *Log) checkRef(e *Entry, base int64, rows []StoredEntry) error {
	if e.Ref.Seq >= e.Seq {
		return fmt.Errorf("%w: seq %d is not before the outcome (%d)", ErrBadRef, e.Ref.Seq, e.Seq)
	}
	if h, ok := l.recent.hash[e.Ref.Seq]; ok && e.Ref.Seq < base {
		// An allowing decision this writer committed itself.
		if h != e.Ref.Hash {
			return fmt.Errorf("%w: entry %d has hash %s, not %s", ErrBadRef, e.Ref.Seq, h, e.Ref.Hash)
		}
		return nil
	}
	var data []byte
	if e.Ref.Seq >= base {
		data = rows[e.Ref.Seq-base].Data
	} else {
		got, err := l.store.ReadEntries(l.ctx, e.Ref.Seq, 1)
		if err != nil {
			return fmt.Errorf("audit: read entry %d: %w", e.Ref.Seq, err)
		}
		if len(got) == 0 || got[0].Seq != e.Ref.Seq {
			return fmt.Errorf("%w: entry %d is missing", ErrBadRef, e.Ref.Seq)
		}
		data = got[0].Data
	}
	if h := tlog.RecordHash(data); !bytes.Equal(h[:], e.Ref.Hash[:]) {
		return fmt.Errorf("%w: entry %d has hash %s, not %s", ErrBadRef, e.Ref.Seq, h, e.Ref.Hash)
	}
	d, err := Decode(data)
	if err != nil {
		return fmt.Errorf("audit: entry %d: %w", e.Ref.Seq, err)
	}
	if d.Type != TypeDecision || d.Decision != Allowed {
		return fmt.Errorf("%w: entry %d is a %s %s", ErrBadRef, e.Ref.Seq, d.Decision, d.Type)
	}
	return nil
}
