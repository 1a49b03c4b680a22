// Package session defines what an agent session is when saved, and the
// small interface its store implements. The runtime keeps live sessions;
// this is their durable form, so that a session survives a daemon restart
// and resumes where it was.
package session

import (
	"context"
	"errors"
	"time"

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
	// DeleteSessionsBefore removes sessions last updated before t and
	// returns how many.
	DeleteSessionsBefore(ctx context.Context, t time.Time) (int, error)
}
