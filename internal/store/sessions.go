package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/session"
)

// maxSessionBlob bounds the stored messages of one session.
const maxSessionBlob = 256 << 20

// Sessions implements session.Store over the state database.
type Sessions struct{ DB *DB }

var _ session.Store = Sessions{}

// Sessions returns the session store of the database.
func (db *DB) Sessions() Sessions { return Sessions{DB: db} }

// SaveSession implements session.Store.
func (s Sessions) SaveSession(ctx context.Context, r *session.Record) error {
	if r.ID == "" || r.Workspace == "" {
		return errors.New("session needs an id and a workspace")
	}
	msgs, err := json.Marshal(r.Messages)
	if err != nil {
		return fmt.Errorf("session %s: encode messages: %w", r.ID, err)
	}
	if len(msgs) > maxSessionBlob {
		return fmt.Errorf("session %s: %d bytes of messages, more than %d", r.ID, len(msgs), maxSessionBlob)
	}
	_, err = s.DB.ExecContext(ctx, `INSERT INTO sessions(id, workspace, principal, frontend, title, mode, model, created_at, updated_at, turns, spent, summary, messages)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET workspace = excluded.workspace, principal = excluded.principal, frontend = excluded.frontend,
			title = excluded.title, mode = excluded.mode, model = excluded.model, updated_at = excluded.updated_at,
			turns = excluded.turns, spent = excluded.spent, summary = excluded.summary, messages = excluded.messages`,
		r.ID, r.Workspace, r.Principal, r.Frontend, r.Title, r.Mode, r.Model, r.CreatedAt.UnixNano(), r.UpdatedAt.UnixNano(),
		r.Turns, int64(r.Spent), r.Summary, msgs)
	return err
}

const sessionCols = `id, workspace, principal, frontend, title, mode, model, created_at, updated_at, turns, spent, summary`

func scanSession(row interface{ Scan(...any) error }, extra ...any) (*session.Record, error) {
	r := &session.Record{}
	var mode string
	var created, updated, spent int64
	dst := append([]any{&r.ID, &r.Workspace, &r.Principal, &r.Frontend, &r.Title, &mode, &r.Model, &created, &updated, &r.Turns, &spent, &r.Summary}, extra...)
	if err := row.Scan(dst...); err != nil {
		return nil, err
	}
	r.Mode, r.Spent = mode, budget.Micros(spent)
	r.CreatedAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return r, nil
}

// LoadSession implements session.Store.
func (s Sessions) LoadSession(ctx context.Context, id string) (*session.Record, error) {
	var msgs []byte
	r, err := scanSession(s.DB.QueryRowContext(ctx, `SELECT `+sessionCols+`, messages FROM sessions WHERE id = ?`, id), &msgs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", session.ErrNoSession, id)
	}
	if err != nil {
		return nil, err
	}
	var m []llm.Message
	if err := json.Unmarshal(msgs, &m); err != nil {
		return nil, fmt.Errorf("session %s: stored messages are damaged: %w", id, err)
	}
	r.Messages = m
	return r, nil
}

// ListSessions implements session.Store.
func (s Sessions) ListSessions(ctx context.Context, workspace string) ([]*session.Record, error) {
	q, args := `SELECT `+sessionCols+` FROM sessions ORDER BY updated_at DESC, id`, []any(nil)
	if workspace != "" {
		q, args = `SELECT `+sessionCols+` FROM sessions WHERE workspace = ? ORDER BY updated_at DESC, id`, []any{workspace}
	}
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*session.Record
	for rows.Next() {
		r, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteSession implements session.Store.
func (s Sessions) DeleteSession(ctx context.Context, id string) error {
	res, err := s.DB.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", session.ErrNoSession, id)
	}
	return nil
}
