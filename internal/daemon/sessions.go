package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/session"
)

// The saved-session methods `astrid sessions show|delete|cleanup` use.
// An agent runtime may hold sessions loaded, so it answers them (a loaded
// session it deletes is dropped from memory first, so that nothing saves it
// again); a daemon without one holds no session and serves the store
// itself. Deletions are audited here, whoever did them.

// holdsSessions says whether the backend is an agent runtime, which may
// hold sessions loaded.
func (d *Daemon) holdsSessions() bool { return d.backend.Stats().Runtime }

// noSession maps a missing saved session to api.ErrNotFound.
func noSession(id string, err error) error {
	if errors.Is(err, session.ErrNoSession) {
		return fmt.Errorf("%w: session %s", api.ErrNotFound, id)
	}
	return err
}

func (d *Daemon) showSession(ctx context.Context, c *clientConn, p api.ShowSessionParams) (api.SessionDetail, error) {
	if d.holdsSessions() {
		return d.backend.ShowSession(ctx, c.caller, p)
	}
	rec, err := d.core.DB.Sessions().LoadSession(ctx, p.Session)
	if err != nil {
		return api.SessionDetail{}, noSession(p.Session, err)
	}
	return rec.Detail()
}

func (d *Daemon) deleteSession(ctx context.Context, c *clientConn, p api.DeleteSessionParams) (api.Empty, error) {
	var err error
	if d.holdsSessions() {
		_, err = d.backend.DeleteSession(ctx, c.caller, p)
	} else {
		err = noSession(p.Session, d.core.DB.Sessions().DeleteSession(ctx, p.Session))
	}
	if err != nil {
		return api.Empty{}, err
	}
	return api.Empty{}, d.auditSessionDelete(ctx, c, p.Session, "delete")
}

func (d *Daemon) cleanupSessions(ctx context.Context, c *clientConn, p api.CleanupSessionsParams) (api.CleanupSessionsResult, error) {
	var res api.CleanupSessionsResult
	var err error
	if d.holdsSessions() {
		res, err = d.backend.CleanupSessions(ctx, c.caller, p)
	} else {
		res.Deleted, res.Kept, err = session.DeleteBefore(ctx, d.core.DB.Sessions(), p.Before, nil)
	}
	if res.Deleted == nil {
		res.Deleted = []string{}
	}
	// Those deleted before an error are gone too: audit them all.
	var aerrs []error
	for _, id := range res.Deleted {
		aerrs = append(aerrs, d.auditSessionDelete(ctx, c, id, "cleanup"))
	}
	return res, errors.Join(err, errors.Join(aerrs...))
}

// auditSessionDelete records the deletion of session id under that
// session, so that `astrid audit list --session ID` ends with it.
func (d *Daemon) auditSessionDelete(ctx context.Context, c *clientConn, id, rule string) error {
	res := "session://" + id
	return d.auditAction(ctx, c, "session "+id+" was deleted", audit.Entry{
		Session: audit.Clip(id, audit.MaxSession),
		Action:  audit.Action{Kind: "session_delete", Resource: res, ArgsHash: audit.HashBytes([]byte(id))},
		Proof:   audit.Proof{Rule: rule},
	})
}
