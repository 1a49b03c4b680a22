package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/astrid-runtime/astrid/internal/capability"
)

// TokenStore keeps capability tokens in the capability_tokens table
// (migration 0002). It implements capability.Store; see that interface for
// the contract. It is safe for concurrent use, also by several processes
// on the same file: every check-then-write runs in one BEGIN IMMEDIATE
// transaction or one statement.
type TokenStore struct {
	db *DB
}

var _ capability.Store = (*TokenStore)(nil)

// NewTokenStore returns the token store of db.
func NewTokenStore(db *DB) *TokenStore { return &TokenStore{db: db} }

// Tokens returns the capability token store of the database.
func (db *DB) Tokens() *TokenStore { return NewTokenStore(db) }

func nullID(id capability.ID) any {
	if id.IsZero() {
		return nil
	}
	return id.String()
}

func unixMilli(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// Put stores a token. The parent check and the insert share one
// transaction, so a token cannot be attached to a parent revoked
// concurrently (Revoke takes the same write lock).
func (s *TokenStore) Put(ctx context.Context, t *capability.Token, enc []byte) (err error) {
	if len(enc) > capability.MaxEncodedSize {
		return fmt.Errorf("token %s: encoding too large", t.ID)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if !t.Parent.IsZero() {
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM capability_tokens WHERE id = ?`, t.Parent.String()).Scan(&revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("parent %s: %w", t.Parent, capability.ErrUnknownToken)
		case err != nil:
			return err
		case revoked.Valid:
			return fmt.Errorf("parent %s: %w", t.Parent, capability.ErrRevoked)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM capability_tokens WHERE id = ?`, t.ID.String()).Scan(&n); err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("token %s is already stored", t.ID)
	}
	h := capability.HashOf(enc)
	if _, err := tx.ExecContext(ctx, `INSERT INTO capability_tokens
		(id, parent_id, hash, encoded, principal, resource, permissions, scope, binding, single_use, issuer, issued_at, not_before, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID.String(), nullID(t.Parent), h[:], enc, t.Principal, t.Resource, int64(t.Permissions),
		t.Scope.String(), t.Binding, t.SingleUse, t.Issuer,
		t.IssuedAt.Unix(), t.NotBefore.Unix(), t.ExpiresAt.Unix()); err != nil {
		return err
	}
	return tx.Commit()
}

const recordColumns = `encoded, revoked_at, revoke_reason, used_at`

func scanRecord(sc interface{ Scan(...any) error }) (capability.Record, error) {
	var (
		enc           []byte
		revoked, used sql.NullInt64
		reason        sql.NullString
		r             capability.Record
	)
	if err := sc.Scan(&enc, &revoked, &reason, &used); err != nil {
		return r, err
	}
	t, err := capability.Decode(enc)
	if err != nil {
		return r, fmt.Errorf("stored token: %w", err)
	}
	return capability.Record{
		Token:        t,
		Encoded:      enc,
		RevokedAt:    unixMilli(revoked),
		RevokeReason: reason.String,
		UsedAt:       unixMilli(used),
	}, nil
}

// Get returns a stored token.
func (s *TokenStore) Get(ctx context.Context, id capability.ID) (capability.Record, error) {
	r, err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM capability_tokens WHERE id = ?`, id.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("token %s: %w", id, capability.ErrUnknownToken)
	}
	return r, err
}

// List returns stored tokens in the order they were stored (see
// capability.Store). A row that does not decode is an error, not skipped:
// the store is damaged.
func (s *TokenStore) List(ctx context.Context, all bool, now time.Time) ([]capability.Record, error) {
	q := `SELECT ` + recordColumns + ` FROM capability_tokens`
	var args []any
	if !all {
		q += ` WHERE revoked_at IS NULL AND used_at IS NULL AND expires_at > ?`
		args = append(args, now.Unix())
	}
	q += ` ORDER BY rowid`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []capability.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// State returns what a use of the token must check.
func (s *TokenStore) State(ctx context.Context, id capability.ID) (capability.State, error) {
	var (
		h             []byte
		revoked, used sql.NullInt64
		st            capability.State
	)
	err := s.db.QueryRowContext(ctx, `SELECT hash, revoked_at, used_at FROM capability_tokens WHERE id = ?`, id.String()).Scan(&h, &revoked, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("token %s: %w", id, capability.ErrUnknownToken)
	}
	if err != nil {
		return st, err
	}
	if len(h) != len(st.Hash) {
		return st, fmt.Errorf("token %s: stored hash of %d bytes", id, len(h))
	}
	copy(st.Hash[:], h)
	st.Revoked, st.Used = revoked.Valid, used.Valid
	return st, nil
}

// Revoke revokes the token and its descendants in one transaction.
func (s *TokenStore) Revoke(ctx context.Context, id capability.ID, reason string, at time.Time) ([]capability.ID, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM capability_tokens WHERE id = ?`, id.String()).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("token %s: %w", id, capability.ErrUnknownToken)
	}
	rows, err := tx.QueryContext(ctx, `
		WITH RECURSIVE tree(id) AS (
			VALUES(?)
			UNION
			SELECT c.id FROM capability_tokens c JOIN tree ON c.parent_id = tree.id
		)
		UPDATE capability_tokens SET revoked_at = ?, revoke_reason = ?
		WHERE id IN tree AND revoked_at IS NULL
		RETURNING id`, id.String(), at.UnixMilli(), reason)
	if err != nil {
		return nil, err
	}
	var ids []capability.ID
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, err
		}
		rid, err := capability.ParseID(s)
		if err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, rid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return ids, nil
}

// Consume marks a single-use token used. The UPDATE's WHERE clause is the
// check: of concurrent callers, in any process, exactly one sees one row
// affected.
func (s *TokenStore) Consume(ctx context.Context, id capability.ID, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE capability_tokens SET used_at = ?
		WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL`, at.UnixMilli(), id.String())
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	// Lost: say why (the answer is a refusal whatever it is).
	st, err := s.State(ctx, id)
	switch {
	case err != nil:
		return err
	case st.Revoked:
		return fmt.Errorf("token %s: %w", id, capability.ErrRevoked)
	default:
		return fmt.Errorf("token %s: %w", id, capability.ErrAlreadyUsed)
	}
}
