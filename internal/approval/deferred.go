package approval

import (
	"context"
	"errors"
	"time"
)

// Status is where a deferred action is in its life.
type Status string

// The states of a deferred action. Transitions: pending → approved or
// denied (once, by Resolve); approved → executing (once, by Claim);
// executing → done (by Finish).
const (
	Pending   Status = "pending"
	Approved  Status = "approved"
	Denied    Status = "denied"
	Executing Status = "executing"
	Done      Status = "done"
)

// Deferred is an action waiting for (or given) a late human answer.
type Deferred struct {
	ID         string
	SessionID  string
	Request    Request
	Action     []byte // the serialised action, opaque to this package
	Status     Status
	CreatedAt  time.Time
	ResolvedAt time.Time
	Answer     *Answer
	Result     string
}

// ErrNotFound means no deferred action has that ID.
var ErrNotFound = errors.New("no such deferred approval")

// ErrAlreadyResolved means the deferred action left the state the
// operation needs (answered twice, claimed twice).
var ErrAlreadyResolved = errors.New("deferred approval already resolved")

// DeferredStore persists the queue. Every transition is one atomic
// compare-and-set on the status, so two frontends answering at once, or
// two workers claiming, cannot both succeed.
type DeferredStore interface {
	// PutDeferred stores a new pending action.
	PutDeferred(ctx context.Context, d Deferred) error
	// GetDeferred returns one action or ErrNotFound.
	GetDeferred(ctx context.Context, id string) (Deferred, error)
	// ListDeferred returns actions in the given states (all when none),
	// oldest first.
	ListDeferred(ctx context.Context, states ...Status) ([]Deferred, error)
	// ResolveDeferred moves a pending action to approved or denied and
	// records the answer; ErrAlreadyResolved if it was not pending.
	ResolveDeferred(ctx context.Context, id string, a Answer, at time.Time) (Deferred, error)
	// ClaimDeferred moves an approved action to executing and returns it;
	// ErrAlreadyResolved if it was not approved. It succeeds once.
	ClaimDeferred(ctx context.Context, id string) (Deferred, error)
	// FinishDeferred records the outcome of an executing action.
	FinishDeferred(ctx context.Context, id, result string) error
}
