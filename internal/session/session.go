// Package session defines what an agent session is when saved, and the
// small interface its store implements. The runtime keeps live sessions;
// this is their durable form, so that a session survives a daemon restart
// and resumes where it was.
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/llm"
)

// Record is a session as it is saved: everything needed to resume it.
type Record struct {
	ID        string
	Workspace string
	Principal string
	Frontend  string
	Title     string
	Mode      string // a security.Mode: safe, guided or autonomous
	Model     string
	CreatedAt time.Time
	UpdatedAt time.Time
	Turns     int
	Spent     budget.Micros
	// Summary condenses messages that no longer fit the context; it is
	// sent to the model with every request.
	Summary  string
	Messages []llm.Message
}

// ErrNoSession means no saved session has that id.
var ErrNoSession = errors.New("no such session")

// Store persists sessions. Implementations must be safe for concurrent use;
// Save replaces the whole record atomically.
type Store interface {
	SaveSession(ctx context.Context, r *Record) error
	// LoadSession returns the record or an error wrapping ErrNoSession.
	LoadSession(ctx context.Context, id string) (*Record, error)
	// ListSessions returns records without their messages, newest first,
	// only those of workspace when it is not empty.
	ListSessions(ctx context.Context, workspace string) ([]*Record, error)
	// DeleteSession removes a session; ErrNoSession if there was none.
	DeleteSession(ctx context.Context, id string) error
}

// Info describes the record for the API, as saved: Active and Busy are
// for the runtime holding it to set.
func (r *Record) Info() api.SessionInfo {
	return api.SessionInfo{ID: r.ID, Workspace: r.Workspace, Mode: r.Mode, Title: r.Title, Model: r.Model,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Turns: r.Turns, SpentUSD: r.Spent.USD()}
}

// Detail is the record with its conversation, as astrid.showSession
// returns it.
func (r *Record) Detail() (api.SessionDetail, error) {
	msgs, err := json.Marshal(r.Messages)
	if err != nil {
		return api.SessionDetail{}, fmt.Errorf("session %s: messages: %w", r.ID, err)
	}
	return api.SessionDetail{SessionInfo: r.Info(), Summary: r.Summary, Messages: msgs}, nil
}

// DeleteBefore deletes, one at a time and oldest first, the sessions of s
// last updated before t, except those keep (when not nil) holds on to; it
// returns the ids deleted and those kept. A session deleted meanwhile by
// someone else is in neither list.
func DeleteBefore(ctx context.Context, s Store, t time.Time, keep func(id string) bool) (deleted, kept []string, err error) {
	recs, err := s.ListSessions(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	deleted = []string{}
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if !r.UpdatedAt.Before(t) {
			continue
		}
		if keep != nil && keep(r.ID) {
			kept = append(kept, r.ID)
			continue
		}
		if err := ctx.Err(); err != nil {
			return deleted, kept, err
		}
		switch err := s.DeleteSession(ctx, r.ID); {
		case errors.Is(err, ErrNoSession):
		case err != nil:
			return deleted, kept, err
		default:
			deleted = append(deleted, r.ID)
		}
	}
	return deleted, kept, nil
}
