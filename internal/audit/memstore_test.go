package audit

import (
	"context"
	"slices"
	"sync"
)

// memStore is an in-memory Store for tests. failCommit, when set, makes
// Commit fail with that error.
type memStore struct {
	mu         sync.Mutex
	entries    []StoredEntry // sorted by Seq
	cps        []StoredCheckpoint
	failCommit error
	commits    int
}

func (m *memStore) ReadEntries(_ context.Context, from int64, limit int) ([]StoredEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, _ := slices.BinarySearchFunc(m.entries, from, func(e StoredEntry, s int64) int { return int(e.Seq - s) })
	var out []StoredEntry
	for ; i < len(m.entries) && len(out) < limit; i++ {
		e := m.entries[i]
		e.Data, e.Hashes = slices.Clone(e.Data), slices.Clone(e.Hashes)
		out = append(out, e)
	}
	return out, nil
}

func (m *memStore) ReadCheckpoints(_ context.Context, from int64, limit int) ([]StoredCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []StoredCheckpoint
	for _, c := range m.cps {
		if c.Size >= from && len(out) < limit {
			out = append(out, StoredCheckpoint{Size: c.Size, Note: slices.Clone(c.Note)})
		}
	}
	return out, nil
}

func (m *memStore) LatestCheckpoint(_ context.Context) (StoredCheckpoint, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.cps) == 0 {
		return StoredCheckpoint{}, false, nil
	}
	return m.cps[len(m.cps)-1], true, nil
}

func (m *memStore) Commit(_ context.Context, b Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failCommit != nil {
		return m.failCommit
	}
	var size int64
	if n := len(m.entries); n > 0 {
		size = m.entries[n-1].Seq + 1
	}
	if size != b.Size {
		return ErrConflict
	}
	m.entries = append(m.entries, b.Entries...)
	m.cps = append(m.cps, b.Checkpoint)
	m.commits++
	return nil
}
