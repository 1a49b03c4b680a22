// Package store opens Astrid's embedded SQLite database, $ASTRID_HOME/state.db,
// and keeps its schema current.
//
// The database is opened through modernc.org/sqlite (pure Go) in WAL mode with
// a busy timeout, foreign keys on, and BEGIN IMMEDIATE transactions so that
// writers queue instead of failing with SQLITE_BUSY on upgrade.
//
// # Schema migrations
//
// Migrations are the files migrations/NNNN_name.sql (unique, increasing
// versions; gaps are allowed so parallel work can reserve numbers), applied in
// order, each in
// its own transaction together with its row in schema_migrations(version,
// name, checksum, applied_at). The checksum (SHA-256 of the file) of every
// applied migration is compared on open: a database whose history differs
// from this binary's, or that was written by a newer binary, is refused
// rather than guessed at.
//
// # Interfaces
//
// Packages that persist data (capability, audit, ...) define the small
// interfaces they need next to their own code; the implementations over *DB
// live here, so that another backend (PostgreSQL) can be added without
// touching their callers.
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrNewerSchema means the database was migrated by a newer Astrid.
var ErrNewerSchema = errors.New("database schema is newer than this binary")

// ErrSchemaMismatch means an applied migration differs from this binary's copy.
var ErrSchemaMismatch = errors.New("database schema history does not match this binary")

// ErrPendingMigrations is returned by a read-only open of an old database.
var ErrPendingMigrations = errors.New("database needs migrating; run a command that writes (for example `astrid doctor`) first")

// Sync selects SQLite's synchronous mode: how often commits reach the disk.
type Sync int

const (
	// SyncFull fsyncs every commit: a committed transaction survives power
	// loss. This is the default and what the audit log relies on.
	SyncFull Sync = iota
	// SyncNormal is for tests and benchmarks that measure everything but
	// the fsync; a commit may be lost on power loss (never corrupted).
	SyncNormal
)

// Options tune Open.
type Options struct {
	// ReadOnly opens the file without write access and without migrating.
	ReadOnly bool
	// Sync is the durability mode; the zero value is SyncFull.
	Sync Sync
	// BusyTimeout is how long a writer waits for the lock; 0 means 10s.
	BusyTimeout time.Duration
}

// DB is an open state database. It is safe for concurrent use.
type DB struct {
	*sql.DB
	path     string
	readOnly bool
}

// Path returns the file the database was opened from.
func (db *DB) Path() string { return db.path }

// ReadOnly reports whether the database was opened read-only.
func (db *DB) ReadOnly() bool { return db.readOnly }

// Open opens (creating it with mode 0600 when missing, unless read-only) the
// database file at path and applies pending migrations.
func Open(ctx context.Context, file string, opts Options) (*DB, error) {
	if err := checkFile(file, opts.ReadOnly); err != nil {
		return nil, err
	}
	busy := opts.BusyTimeout
	if busy == 0 {
		busy = 10 * time.Second
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	if opts.ReadOnly {
		q.Set("mode", "ro")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		if opts.Sync == SyncNormal {
			q.Add("_pragma", "synchronous(NORMAL)")
		} else {
			q.Add("_pragma", "synchronous(FULL)")
		}
	}
	dsn := "file:" + (&url.URL{Path: file}).EscapedPath() + "?" + q.Encode()
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	db := &DB{DB: sqldb, path: file, readOnly: opts.ReadOnly}
	if err := db.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	if err := db.migrate(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return db, nil
}

// checkFile refuses a symlinked or group/world-accessible database file and
// creates a missing one with mode 0600 (SQLite gives its -wal and -shm files
// the same mode).
func checkFile(file string, readOnly bool) error {
	fi, err := os.Lstat(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if readOnly {
			return fmt.Errorf("%s does not exist", file)
		}
		f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("create %s: %w", file, err)
		}
		return f.Close()
	case err != nil:
		return fmt.Errorf("inspect %s: %w", file, err)
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symlink; refusing to open it", file)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", file)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s has mode %04o; it must be private to its owner (chmod 600 %s)", file, fi.Mode().Perm(), file)
	}
	return nil
}

// Migration is one schema step.
type Migration struct {
	Version  int
	Name     string
	SQL      string
	Checksum string // hex SHA-256 of SQL
}

// Migrations returns the schema steps compiled into this binary, in order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q: want NNNN_name.sql", name)
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		ms = append(ms, Migration{Version: v, Name: rest, SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %04d_%s and %04d_%s share a version", ms[i].Version, ms[i].Name, ms[i-1].Version, ms[i-1].Name)
		}
	}
	return ms, nil
}

// SchemaVersion returns the highest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}

func (db *DB) migrate(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	if !db.readOnly {
		if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			checksum   TEXT NOT NULL,
			applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
	}
	applied := map[int]string{}
	rows, err := db.QueryContext(ctx, `SELECT version, checksum FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return err
		}
		applied[v] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	known := map[int]Migration{}
	for _, m := range ms {
		known[m.Version] = m
	}
	newest := ms[len(ms)-1].Version
	for v, sum := range applied {
		m, ok := known[v]
		switch {
		case !ok && v > newest:
			return fmt.Errorf("%w: it has migration %d, this binary knows up to %d", ErrNewerSchema, v, newest)
		case !ok:
			return fmt.Errorf("%w: unknown migration %d", ErrSchemaMismatch, v)
		case m.Checksum != sum:
			return fmt.Errorf("%w: migration %04d_%s", ErrSchemaMismatch, m.Version, m.Name)
		}
	}
	for _, m := range ms {
		if _, ok := applied[m.Version]; ok {
			continue
		}
		if db.readOnly {
			return ErrPendingMigrations
		}
		if err := db.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, m Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Another process may have applied it while we waited for the lock.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
		m.Version, m.Name, m.Checksum, time.Now().Unix()); err != nil {
		return err
	}
	return tx.Commit()
}

// Check runs SQLite's integrity check and returns its findings; an empty
// slice means the file is sound.
func (db *DB) Check(ctx context.Context) ([]string, error) {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	return problems, rows.Err()
}
