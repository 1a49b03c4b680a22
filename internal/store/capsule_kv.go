package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// CapsuleKV implements capsule.KV over the state database (table
// capsule_kv). It does not import package capsule, which is checked to
// implement the interface in that package's tests.
type CapsuleKV struct{ DB *DB }

// Get implements capsule.KV.
func (s CapsuleKV) Get(ctx context.Context, id, key string) ([]byte, bool, error) {
	var v []byte
	err := s.DB.QueryRowContext(ctx, `SELECT value FROM capsule_kv WHERE capsule = ? AND key = ?`, id, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// Set implements capsule.KV: the quota check and the write are one
// transaction.
func (s CapsuleKV) Set(ctx context.Context, id, key string, value []byte, maxBytes int64, maxKeys int) (bool, error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var n int
	var total int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) FROM capsule_kv WHERE capsule = ?`, id).Scan(&n, &total); err != nil {
		return false, err
	}
	var old sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT length(CAST(key AS BLOB)) + length(value) FROM capsule_kv WHERE capsule = ? AND key = ?`, id, key).Scan(&old); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if !old.Valid {
		n++
	}
	total += int64(len(key)+len(value)) - old.Int64
	if total > maxBytes || n > maxKeys {
		return false, nil
	}
	if value == nil {
		value = []byte{}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO capsule_kv(capsule, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(capsule, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, id, key, value, time.Now().UnixNano()); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// Delete implements capsule.KV.
func (s CapsuleKV) Delete(ctx context.Context, id, key string) error {
	_, err := s.DB.ExecContext(ctx, `DELETE FROM capsule_kv WHERE capsule = ? AND key = ?`, id, key)
	return err
}

// List implements capsule.KV.
func (s CapsuleKV) List(ctx context.Context, id, prefix string, limit int) ([]string, error) {
	// A range scan on the primary key: keys >= prefix, stopping at the
	// first that does not start with it.
	rows, err := s.DB.QueryContext(ctx, `SELECT key FROM capsule_kv WHERE capsule = ? AND key >= ? ORDER BY key`, id, prefix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() && len(keys) < limit {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(k, prefix) {
			break
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// DeleteAll implements capsule.KV.
func (s CapsuleKV) DeleteAll(ctx context.Context, id string) error {
	_, err := s.DB.ExecContext(ctx, `DELETE FROM capsule_kv WHERE capsule = ?`, id)
	return err
}
