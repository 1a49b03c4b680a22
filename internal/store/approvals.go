package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/capability"
)

// Deferred implements approval.DeferredStore over the state database.
type Deferred struct{ DB *DB }

var _ approval.DeferredStore = Deferred{}

// PutDeferred implements approval.DeferredStore.
func (s Deferred) PutDeferred(ctx context.Context, d approval.Deferred) error {
	req, err := json.Marshal(d.Request)
	if err != nil {
		return err
	}
	if d.ID == "" || d.SessionID == "" {
		return errors.New("deferred approval needs an id and a session")
	}
	_, err = s.DB.ExecContext(ctx, `INSERT INTO deferred(id, session_id, request, action, status, created_at) VALUES (?, ?, ?, ?, 'pending', ?)`,
		d.ID, d.SessionID, string(req), d.Action, d.CreatedAt.UnixNano())
	return err
}

const deferredCols = `id, session_id, request, action, status, created_at, resolved_at, answer, result`

func scanDeferred(row interface{ Scan(...any) error }) (approval.Deferred, error) {
	var d approval.Deferred
	var req string
	var created int64
	var resolved sql.NullInt64
	var answer, result sql.NullString
	if err := row.Scan(&d.ID, &d.SessionID, &req, &d.Action, &d.Status, &created, &resolved, &answer, &result); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(req), &d.Request); err != nil {
		return d, fmt.Errorf("deferred %s: bad request record: %w", d.ID, err)
	}
	d.CreatedAt = time.Unix(0, created).UTC()
	if resolved.Valid {
		d.ResolvedAt = time.Unix(0, resolved.Int64).UTC()
	}
	if answer.Valid {
		d.Answer = new(approval.Answer)
		if err := json.Unmarshal([]byte(answer.String), d.Answer); err != nil {
			return d, fmt.Errorf("deferred %s: bad answer record: %w", d.ID, err)
		}
	}
	d.Result = result.String
	return d, nil
}

// GetDeferred implements approval.DeferredStore.
func (s Deferred) GetDeferred(ctx context.Context, id string) (approval.Deferred, error) {
	d, err := scanDeferred(s.DB.QueryRowContext(ctx, `SELECT `+deferredCols+` FROM deferred WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%w: %s", approval.ErrNotFound, id)
	}
	return d, err
}

// ListDeferred implements approval.DeferredStore.
func (s Deferred) ListDeferred(ctx context.Context, states ...approval.Status) ([]approval.Deferred, error) {
	q := `SELECT ` + deferredCols + ` FROM deferred`
	var args []any
	if len(states) > 0 {
		q += ` WHERE status IN (?` + strings.Repeat(",?", len(states)-1) + `)`
		for _, st := range states {
			args = append(args, string(st))
		}
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []approval.Deferred
	for rows.Next() {
		d, err := scanDeferred(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// transition moves id from one status to another in one statement; it
// fails with ErrAlreadyResolved when the row is not in from.
func (s Deferred) transition(ctx context.Context, id string, from, to approval.Status, set string, args ...any) error {
	res, err := s.DB.ExecContext(ctx, `UPDATE deferred SET status = ?`+set+` WHERE id = ? AND status = ?`,
		append(append([]any{string(to)}, args...), id, string(from))...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := s.GetDeferred(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s is not %s", approval.ErrAlreadyResolved, id, from)
	}
	return nil
}

// ResolveDeferred implements approval.DeferredStore.
func (s Deferred) ResolveDeferred(ctx context.Context, id string, a approval.Answer, at time.Time) (approval.Deferred, error) {
	if !a.Decision.Valid() {
		return approval.Deferred{}, fmt.Errorf("invalid decision %q", a.Decision)
	}
	to := approval.Denied
	if a.Decision.Allows() {
		to = approval.Approved
	}
	b, err := json.Marshal(a)
	if err != nil {
		return approval.Deferred{}, err
	}
	if err := s.transition(ctx, id, approval.Pending, to, `, resolved_at = ?, answer = ?`, at.UnixNano(), string(b)); err != nil {
		return approval.Deferred{}, err
	}
	return s.GetDeferred(ctx, id)
}

// ClaimDeferred implements approval.DeferredStore.
func (s Deferred) ClaimDeferred(ctx context.Context, id string) (approval.Deferred, error) {
	if err := s.transition(ctx, id, approval.Approved, approval.Executing, ``); err != nil {
		return approval.Deferred{}, err
	}
	return s.GetDeferred(ctx, id)
}

// FinishDeferred implements approval.DeferredStore.
func (s Deferred) FinishDeferred(ctx context.Context, id, result string) error {
	return s.transition(ctx, id, approval.Executing, approval.Done, `, result = ?`, result)
}

// Allowances implements approval.AllowanceStore over the state database.
type Allowances struct{ DB *DB }

var _ approval.AllowanceStore = Allowances{}

// PutAllowance implements approval.AllowanceStore.
func (s Allowances) PutAllowance(ctx context.Context, a approval.Allowance) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO allowances(id, scope, binding, pattern, permission, created_at, approval) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.ID, string(a.Scope), a.Binding, a.Pattern, a.Permission.String(), a.CreatedAt.UnixNano(), a.Approval)
	return err
}

// ListAllowances implements approval.AllowanceStore.
func (s Allowances) ListAllowances(ctx context.Context, scope approval.AllowanceScope, binding string) ([]approval.Allowance, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, pattern, permission, created_at, approval FROM allowances WHERE scope = ? AND binding = ? ORDER BY created_at, id`, string(scope), binding)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []approval.Allowance
	for rows.Next() {
		a := approval.Allowance{Scope: scope, Binding: binding}
		var perm string
		var created int64
		if err := rows.Scan(&a.ID, &a.Pattern, &perm, &created, &a.Approval); err != nil {
			return nil, err
		}
		p, err := capability.ParsePermissions(perm)
		if err != nil {
			return nil, fmt.Errorf("allowance %s: %w", a.ID, err)
		}
		a.Permission, a.CreatedAt = p, time.Unix(0, created).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteAllowances implements approval.AllowanceStore.
func (s Allowances) DeleteAllowances(ctx context.Context, scope approval.AllowanceScope, binding string) (int, error) {
	res, err := s.DB.ExecContext(ctx, `DELETE FROM allowances WHERE scope = ? AND binding = ?`, string(scope), binding)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Deferred returns the deferred approval queue of the database.
func (db *DB) Deferred() Deferred { return Deferred{DB: db} }

// Allowances returns the allowance store of the database.
func (db *DB) Allowances() Allowances { return Allowances{DB: db} }
