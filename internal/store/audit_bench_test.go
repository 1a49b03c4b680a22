package store

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/keys"
)

func benchEntry(i int) audit.Entry {
	e := decisionEntry(fmt.Sprintf("session-%d", i%64), audit.Allowed)
	e.Action.Resource = fmt.Sprintf("file:///home/user/project/src/file-%d.go", i)
	e.Action.ArgsHash = audit.HashBytes([]byte(e.Action.Resource))
	e.Proof.Rule = "workspace-write"
	e.Text = "inside the workspace"
	return e
}

func benchLog(b *testing.B, sync Sync) (*audit.Log, *DB) {
	b.Helper()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "state.db"), Options{Sync: sync})
	if err != nil {
		b.Fatal(err)
	}
	l, err := audit.Open(ctx, db.Audit(), testKey(b), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close(); db.Close() })
	return l, db
}

// BenchmarkAuditAppendDurable8 measures appends from 8 concurrent writers
// with every commit fsynced (SyncFull): group commit amortises the fsync
// and the checkpoint signature over the writers waiting at that moment.
func BenchmarkAuditAppendDurable8(b *testing.B) {
	l, db := benchLog(b, SyncFull)
	ctx := context.Background()
	const writers = 8
	b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := l.Append(ctx, benchEntry(i)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
	var commits int64
	db.QueryRow(`SELECT COUNT(*) FROM audit_checkpoints`).Scan(&commits)
	if commits > 0 {
		b.ReportMetric(float64(b.N)/float64(commits), "entries/commit")
	}
}

// BenchmarkAuditAppendNoSync1 is the per-entry cost of one writer with no
// fsync (SyncNormal): encode, hash, sign a checkpoint, one transaction.
func BenchmarkAuditAppendNoSync1(b *testing.B) {
	l, _ := benchLog(b, SyncNormal)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Append(ctx, benchEntry(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditVerify1M verifies a log of 1,000,000 entries. Building it
// (batched commits of up to 1024 entries from concurrent appenders) is
// setup and not timed. Run it with -benchtime=1x.
func BenchmarkAuditVerify1M(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	p := filepath.Join(b.TempDir(), "state.db")
	db, err := Open(ctx, p, Options{Sync: SyncNormal})
	if err != nil {
		b.Fatal(err)
	}
	k := testKey(b)
	l, err := audit.Open(ctx, db.Audit(), k, audit.Options{MaxBatch: 1024})
	if err != nil {
		b.Fatal(err)
	}
	setup := time.Now()
	const workers = 512
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if _, err := l.Append(ctx, benchEntry(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	db.Close()
	b.Logf("built %d entries in %v", n, time.Since(setup))
	ro, err := Open(ctx, p, Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ro.Close()
	trusted := keys.Trusted{k.ID(): k.Public()}
	runtime.GC()
	var peak uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer func() {
		close(stop)
		<-sampled
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	}()
	b.ResetTimer()
	for range b.N {
		rep, err := audit.Verify(ctx, ro.Audit(), trusted, nil)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Tree.N != n {
			b.Fatalf("verified %d entries", rep.Tree.N)
		}
		b.ReportMetric(float64(rep.Checkpoints), "checkpoints")
	}
}
