package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, p
}

func TestOpenCreatesPrivateFileAndMigrates(t *testing.T) {
	db, p := openTemp(t)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("state.db mode = %04o, want 0600", got)
	}
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.SchemaVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := ms[len(ms)-1].Version; v != want {
		t.Errorf("schema version = %d, want %d", v, want)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	if probs, err := db.Check(context.Background()); err != nil || len(probs) > 0 {
		t.Errorf("Check = %v, %v", probs, err)
	}
}

func TestReopenIsIdempotent(t *testing.T) {
	db, p := openTemp(t)
	db.Close()
	for i := 0; i < 2; i++ {
		db2, err := Open(context.Background(), p, Options{})
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		db2.Close()
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	db, p := openTemp(t)
	if _, err := db.Exec(`INSERT INTO schema_migrations(version, name, checksum, applied_at) VALUES (9999, 'future', 'x', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(context.Background(), p, Options{})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open = %v, want ErrNewerSchema", err)
	}
}

func TestRefusesAlteredHistory(t *testing.T) {
	db, p := openTemp(t)
	if _, err := db.Exec(`UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(context.Background(), p, Options{})
	if !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("Open = %v, want ErrSchemaMismatch", err)
	}
}

func TestRefusesUnsafeFiles(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	if err := os.WriteFile(real, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.db")
	if err := os.WriteFile(open, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{link, "symlink"},
		{open, "private"},
		{dir, "not a regular file"},
	} {
		_, err := Open(context.Background(), tc.file, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s) = %v, want error containing %q", tc.file, err, tc.want)
		}
	}
}

func TestReadOnly(t *testing.T) {
	_, p := openTemp(t)
	ro, err := Open(context.Background(), p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Exec(`INSERT INTO meta(key, value) VALUES ('x', 'y')`); err == nil {
		t.Error("write through a read-only handle succeeded")
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing.db"), Options{ReadOnly: true}); err == nil {
		t.Error("read-only open of a missing file succeeded")
	}
}

func TestReadOnlyRefusesUnmigrated(t *testing.T) {
	db, p := openTemp(t)
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(context.Background(), p, Options{ReadOnly: true}); !errors.Is(err, ErrPendingMigrations) {
		t.Fatalf("Open = %v, want ErrPendingMigrations", err)
	}
}

func TestGarbageFileIsAnError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(p, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	if _, err := Open(context.Background(), p, Options{}); err == nil {
		t.Fatal("opened a garbage file")
	}
	after, _ := os.ReadFile(p)
	if string(before) != string(after) {
		t.Error("failed open modified the file")
	}
}
