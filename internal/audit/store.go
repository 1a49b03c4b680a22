package audit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// StoredEntry is one entry as the store keeps it.
type StoredEntry struct {
	Seq int64
	// Data is the entry's encoding (see the package comment).
	Data []byte
	// Hashes are the stored hashes written with this entry, 32 bytes each:
	// those tlog.StoredHashes returns for it, in that order.
	Hashes []byte
	// Index duplicates a few fields in columns a store can filter on.
	// Verify checks that they agree with Data, so that a filtered listing
	// cannot silently hide or mislabel an entry.
	Index Index
}

// Index is the queryable projection of an entry.
type Index struct {
	Time     int64  // Unix nanoseconds
	Type     string // "decision" or "outcome"
	Session  string
	Kind     string
	Decision string // "allowed", "denied", "deferred"; "" for outcomes
}

// IndexOf returns the index columns of e.
func IndexOf(e *Entry) Index {
	var t int64
	if !e.Time.IsZero() {
		t = e.Time.UnixNano()
	}
	return Index{Time: t, Type: e.Type.String(), Session: e.Session, Kind: e.Action.Kind, Decision: e.Decision.String()}
}

// StoredCheckpoint is a signed checkpoint note as stored, keyed by the tree
// size it claims.
type StoredCheckpoint struct {
	Size int64
	Note []byte
}

// Reader is read access to a stored log. Implementations must be safe for
// concurrent use and return copies the caller may keep.
type Reader interface {
	// ReadEntries returns up to limit entries with Seq >= from, in
	// increasing Seq order; fewer (or none) at the end of the log.
	ReadEntries(ctx context.Context, from int64, limit int) ([]StoredEntry, error)
	// ReadCheckpoints returns up to limit checkpoints with Size >= from, in
	// increasing Size order.
	ReadCheckpoints(ctx context.Context, from int64, limit int) ([]StoredCheckpoint, error)
	// LatestCheckpoint returns the checkpoint with the largest size; ok is
	// false when there is none.
	LatestCheckpoint(ctx context.Context) (cp StoredCheckpoint, ok bool, err error)
}

// Batch is what one commit stores: entries Size, Size+1, ... and the
// checkpoint of the tree that ends with them.
type Batch struct {
	// Size is the number of entries the log held before this batch.
	Size       int64
	Entries    []StoredEntry
	Checkpoint StoredCheckpoint
}

// ErrConflict is returned by Store.Commit when the log no longer has
// Batch.Size entries (another writer appended meanwhile).
var ErrConflict = errors.New("audit log was extended by another writer")

// Store is the storage the Log writes to.
type Store interface {
	Reader
	// Commit stores the batch atomically and durably: when it returns nil
	// the entries and the checkpoint are committed (and, for a durable
	// store, synced); on any error nothing of the batch is stored. It
	// returns ErrConflict, storing nothing, unless the log holds exactly
	// b.Size entries when the transaction starts.
	Commit(ctx context.Context, b Batch) error
}

// HashReader returns a tlog.HashReader over the stored hashes in r, for
// proofs. Each call reads O(log n) entries.
func HashReader(ctx context.Context, r Reader) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, idx := range indexes {
			h, err := storedHash(ctx, r, idx)
			if err != nil {
				return nil, err
			}
			out[i] = h
		}
		return out, nil
	})
}

// storedHash reads the stored hash with index idx from the entry it was
// written with: the hash of subtree n at level l is completed by leaf
// (n+1)·2^l − 1 and is its l'th stored hash.
func storedHash(ctx context.Context, r Reader, idx int64) (tlog.Hash, error) {
	if idx < 0 {
		return tlog.Hash{}, fmt.Errorf("stored hash index %d", idx)
	}
	level, n := tlog.SplitStoredHashIndex(idx)
	seq := (n+1)<<uint(level) - 1
	rows, err := r.ReadEntries(ctx, seq, 1)
	if err != nil {
		return tlog.Hash{}, err
	}
	if len(rows) == 0 || rows[0].Seq != seq {
		return tlog.Hash{}, fmt.Errorf("stored hash %d: entry %d is missing", idx, seq)
	}
	hs := rows[0].Hashes
	if len(hs) < (level+1)*tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("stored hash %d: entry %d has %d bytes of stored hashes", idx, seq, len(hs))
	}
	var h tlog.Hash
	copy(h[:], hs[level*tlog.HashSize:])
	return h, nil
}

// frontier holds the roots of the complete subtrees of a tree of size
// leaves (one per set bit of size, largest first): all that is needed to
// append leaves and compute the tree hash, O(log n) memory.
type frontier struct {
	size  int64
	nodes []node
}

type node struct {
	index int64 // stored hash index
	hash  tlog.Hash
}

func (f *frontier) clone() frontier {
	return frontier{size: f.size, nodes: append([]node(nil), f.nodes...)}
}

// ReadHashes implements tlog.HashReader for the hashes in the frontier.
func (f *frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		found := false
		for _, n := range f.nodes {
			if n.index == idx {
				out[i], found = n.hash, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("audit: internal error: hash %d not in the frontier", idx)
		}
	}
	return out, nil
}

// add appends a leaf and returns its stored hashes.
func (f *frontier) add(leaf tlog.Hash) ([]tlog.Hash, error) {
	n := f.size
	hs, err := tlog.StoredHashesForRecordHash(n, leaf, f)
	if err != nil {
		return nil, err
	}
	m := len(hs) - 1
	f.nodes = append(f.nodes[:len(f.nodes)-m], node{index: tlog.StoredHashIndex(m, n>>uint(m)), hash: hs[m]})
	f.size++
	return hs, nil
}

// root returns the RFC 6962 tree hash.
func (f *frontier) root() (tlog.Hash, error) { return tlog.TreeHash(f.size, f) }

// loadFrontier reads the frontier of the first size leaves from r.
func loadFrontier(ctx context.Context, r Reader, size int64) (frontier, error) {
	f := frontier{size: size}
	var lo int64
	for level := 62; level >= 0; level-- {
		if size&(1<<uint(level)) == 0 {
			continue
		}
		idx := tlog.StoredHashIndex(level, lo>>uint(level))
		h, err := storedHash(ctx, r, idx)
		if err != nil {
			return frontier{}, err
		}
		f.nodes = append(f.nodes, node{index: idx, hash: h})
		lo += 1 << uint(level)
	}
	return f, nil
}

func joinHashes(hs []tlog.Hash) []byte {
	b := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}
