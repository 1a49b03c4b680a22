package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
)

// AuditLog is the SQLite implementation of audit.Store (tables from
// migrations/0003_audit.sql). It is safe for concurrent use.
type AuditLog struct {
	db *DB

	mu    sync.Mutex
	stmts *auditStmts // prepared on first Commit; closed with the DB
}

var _ audit.Store = (*AuditLog)(nil)

// Audit returns the audit log stored in db.
func (db *DB) Audit() *AuditLog { return &AuditLog{db: db} }

const auditCols = `seq, data, hashes, time, type, session, kind, decision`

func scanEntries(rows *sql.Rows) ([]audit.StoredEntry, error) {
	defer rows.Close()
	var out []audit.StoredEntry
	for rows.Next() {
		var e audit.StoredEntry
		if err := rows.Scan(&e.Seq, &e.Data, &e.Hashes, &e.Index.Time, &e.Index.Type, &e.Index.Session, &e.Index.Kind, &e.Index.Decision); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReadEntries implements audit.Reader.
func (a *AuditLog) ReadEntries(ctx context.Context, from int64, limit int) ([]audit.StoredEntry, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_entries WHERE seq >= ? ORDER BY seq LIMIT ?`, from, limit)
	if err != nil {
		return nil, err
	}
	return scanEntries(rows)
}

// ReadCheckpoints implements audit.Reader.
func (a *AuditLog) ReadCheckpoints(ctx context.Context, from int64, limit int) ([]audit.StoredCheckpoint, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT size, note FROM audit_checkpoints WHERE size >= ? ORDER BY size LIMIT ?`, from, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.StoredCheckpoint
	for rows.Next() {
		var c audit.StoredCheckpoint
		if err := rows.Scan(&c.Size, &c.Note); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// LatestCheckpoint implements audit.Reader.
func (a *AuditLog) LatestCheckpoint(ctx context.Context) (audit.StoredCheckpoint, bool, error) {
	var c audit.StoredCheckpoint
	err := a.db.QueryRowContext(ctx, `SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&c.Size, &c.Note)
	if err == sql.ErrNoRows {
		return audit.StoredCheckpoint{}, false, nil
	}
	if err != nil {
		return audit.StoredCheckpoint{}, false, err
	}
	return c, true, nil
}

// auditStmts are the statements of Commit, prepared once per AuditLog:
// preparing them costs about as much as running them.
type auditStmts struct {
	size, entry, checkpoint *sql.Stmt
}

func (a *AuditLog) prepare(ctx context.Context) (*auditStmts, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stmts != nil {
		return a.stmts, nil
	}
	var s auditStmts
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&s.size, `SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_entries`},
		{&s.entry, `INSERT INTO audit_entries(` + auditCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.checkpoint, `INSERT INTO audit_checkpoints(size, note) VALUES (?, ?)`},
	} {
		st, err := a.db.PrepareContext(ctx, p.q)
		if err != nil {
			return nil, err
		}
		*p.dst = st
	}
	a.stmts = &s
	return a.stmts, nil
}

// Commit implements audit.Store: one BEGIN IMMEDIATE transaction holding
// the batch's entries and its checkpoint. With SyncFull the commit is on
// disk when Commit returns.
func (a *AuditLog) Commit(ctx context.Context, b audit.Batch) (err error) {
	st, err := a.prepare(ctx)
	if err != nil {
		return err
	}
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var size int64
	if err := tx.StmtContext(ctx, st.size).QueryRowContext(ctx).Scan(&size); err != nil {
		return err
	}
	if size != b.Size {
		return fmt.Errorf("%w (it has %d entries, the writer expected %d)", audit.ErrConflict, size, b.Size)
	}
	ins := tx.StmtContext(ctx, st.entry)
	for _, e := range b.Entries {
		if _, err := ins.ExecContext(ctx, e.Seq, e.Data, e.Hashes, e.Index.Time, e.Index.Type, e.Index.Session, e.Index.Kind, e.Index.Decision); err != nil {
			return fmt.Errorf("insert audit entry %d: %w", e.Seq, err)
		}
	}
	if _, err := tx.StmtContext(ctx, st.checkpoint).ExecContext(ctx, b.Checkpoint.Size, b.Checkpoint.Note); err != nil {
		return fmt.Errorf("insert audit checkpoint: %w", err)
	}
	return tx.Commit()
}

// AuditFilter selects entries for List. Zero fields select everything.
type AuditFilter struct {
	Session  string
	Since    time.Time // entries at or after this time
	Decision string    // "allowed", "denied" or "deferred": decision entries only
	// Limit keeps the newest Limit matching entries; 0 means no limit.
	Limit int
	// BeforeSeq, when above 0, keeps entries with a smaller seq (to page
	// backwards).
	BeforeSeq int64
}

// List returns the matching entries in seq order. The filters run on the
// index columns; callers decode Data (and audit verify checks that the
// columns agree with it).
func (a *AuditLog) List(ctx context.Context, f AuditFilter) ([]audit.StoredEntry, error) {
	var where []string
	var args []any
	if f.Session != "" {
		where, args = append(where, `session = ?`), append(args, f.Session)
	}
	if !f.Since.IsZero() {
		where, args = append(where, `time >= ?`), append(args, unixNanoClamped(f.Since))
	}
	if f.Decision != "" {
		where, args = append(where, `decision = ?`), append(args, f.Decision)
	}
	if f.BeforeSeq > 0 {
		where, args = append(where, `seq < ?`), append(args, f.BeforeSeq)
	}
	q := `SELECT ` + auditCols + ` FROM audit_entries`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY seq DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := a.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out, err := scanEntries(rows)
	slices.Reverse(out)
	return out, err
}

// unixNanoClamped is t.UnixNano, saturated outside the years int64
// nanoseconds can hold (1678 to 2262).
func unixNanoClamped(t time.Time) int64 {
	switch {
	case t.Year() >= 2262:
		return math.MaxInt64
	case t.Year() <= 1678:
		return math.MinInt64
	}
	return t.UnixNano()
}

// AuditCount is one row of AuditStats.
type AuditCount = api.AuditCount

// AuditStats are counts over the index columns (the API's form).
type AuditStats = api.AuditStats

// Stats counts entries per type, decision, kind and session (largest first).
func (a *AuditLog) Stats(ctx context.Context) (*AuditStats, error) {
	s := &AuditStats{}
	if err := a.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_entries`).Scan(&s.Entries); err != nil {
		return nil, err
	}
	if err := a.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_checkpoints`).Scan(&s.Checkpoints); err != nil {
		return nil, err
	}
	for _, g := range []struct {
		col   string
		where string
		dst   *[]AuditCount
	}{
		{"type", "", &s.ByType},
		{"decision", "WHERE type = 'decision'", &s.ByDecision},
		{"kind", "WHERE type = 'decision'", &s.ByKind},
		{"session", "", &s.BySession},
	} {
		rows, err := a.db.QueryContext(ctx, `SELECT `+g.col+`, COUNT(*) AS n FROM audit_entries `+g.where+` GROUP BY `+g.col+` ORDER BY n DESC, `+g.col)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var c AuditCount
			if err := rows.Scan(&c.Key, &c.Count); err != nil {
				rows.Close()
				return nil, err
			}
			*g.dst = append(*g.dst, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return s, nil
}
