package runtime

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/session"
	"github.com/astrid-runtime/astrid/internal/workspace"
)

// CreateOptions describe a new session.
type CreateOptions struct {
	Workspace string
	Mode      security.Mode
	Title     string
	Principal string
	Frontend  string
}

// Create starts a session in a workspace. The workspace path is resolved
// (symlinks followed) so that the boundary is the real directory.
func (r *Runtime) Create(ctx context.Context, o CreateOptions) (*session.Record, error) {
	ws, err := workspace.Resolve("/", o.Workspace)
	if err != nil || !filepath.IsAbs(o.Workspace) {
		return nil, fmt.Errorf("%w: workspace %q: must be an existing absolute directory", api.ErrInvalidParams, o.Workspace)
	}
	if _, err := r.registry(ws); err != nil {
		return nil, fmt.Errorf("workspace %s: %w", ws, err)
	}
	prof, err := r.o.Core.Profile(ws)
	if err != nil {
		return nil, err
	}
	mode := o.Mode
	if mode == "" {
		mode = prof.Mode
	}
	switch mode {
	case security.Safe, security.Guided, security.Autonomous:
	default:
		mode = security.Safe
	}
	now := r.o.Now().UTC()
	rec := &session.Record{ID: newID("s-"), Workspace: ws, Principal: o.Principal, Frontend: o.Frontend, Title: o.Title,
		Mode: string(mode), Model: r.o.Provider.Model(), CreatedAt: now, UpdatedAt: now}
	if err := r.o.Store.SaveSession(ctx, rec); err != nil {
		return nil, fmt.Errorf("save session: %w", err)
	}
	r.mu.Lock()
	r.sessions[rec.ID] = &live{rec: rec}
	r.mu.Unlock()
	r.emit(events.SessionCreated, rec.ID, events.Session{Workspace: ws, Principal: rec.Principal, Frontend: rec.Frontend})
	r.FireHook(ctx, ws, hooks.Payload{Event: hooks.SessionStart, SessionID: rec.ID, Principal: rec.Principal, Frontend: rec.Frontend})
	r.capsuleEvent(ctx, security.Session{ID: rec.ID, Principal: rec.Principal, Frontend: rec.Frontend, Workspace: ws, Mode: mode}, "SessionStart", "")
	return rec, nil
}

// load returns a live session, loading a saved one.
func (r *Runtime) load(ctx context.Context, id string) (*live, error) {
	r.mu.Lock()
	l, ok := r.sessions[id]
	r.mu.Unlock()
	if ok {
		return l, nil
	}
	r.storeMu.RLock()
	rec, err := r.o.Store.LoadSession(ctx, id)
	if errors.Is(err, session.ErrNoSession) {
		r.storeMu.RUnlock()
		return nil, fmt.Errorf("%w: session %s", api.ErrNotFound, id)
	}
	if err != nil {
		r.storeMu.RUnlock()
		return nil, err
	}
	r.mu.Lock()
	if l, ok := r.sessions[id]; ok {
		r.mu.Unlock()
		r.storeMu.RUnlock()
		return l, nil
	}
	// The budget tracker is in memory: a resumed session carries on from
	// what it had spent.
	r.o.Core.Budget.SetSpent(rec.ID, rec.Spent, "", 0)
	l = &live{rec: rec}
	r.sessions[id] = l
	r.mu.Unlock()
	r.storeMu.RUnlock()
	r.emit(events.SessionResumed, rec.ID, events.Session{Workspace: rec.Workspace, Principal: rec.Principal, Frontend: rec.Frontend})
	r.FireHook(ctx, rec.Workspace, hooks.Payload{Event: hooks.SessionStart, SessionID: rec.ID,
		Principal: rec.Principal, Frontend: rec.Frontend, Resumed: true})
	return l, nil
}

// Resume loads a saved session (or returns the loaded one).
func (r *Runtime) Resume(ctx context.Context, id string) (*session.Record, error) {
	l, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec, nil
}

// Info describes a session for the API.
func (r *Runtime) Info(rec *session.Record) api.SessionInfo {
	r.mu.Lock()
	l, active := r.sessions[rec.ID]
	r.mu.Unlock()
	info := rec.Info()
	info.Active = active
	if active {
		l.mu.Lock()
		info.Busy = l.busy
		l.mu.Unlock()
	}
	return info
}

// List returns the saved sessions, newest first.
func (r *Runtime) List(ctx context.Context, ws string) ([]*session.Record, error) {
	return r.o.Store.ListSessions(ctx, ws)
}

// End cancels the session's turn, saves it and unloads it.
func (r *Runtime) End(ctx context.Context, id string) error {
	l, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.cancel != nil {
		l.cancel()
	}
	l.mu.Unlock()
	r.waitIdle(l, 10*time.Second)
	err = r.save(ctx, l)
	r.mu.Lock()
	delete(r.sessions, id)
	r.mu.Unlock()
	r.unloaded(ctx, l, "ended")
	return err
}

// unloaded tells the frontends, hooks and capsules that a session left
// memory, and lets go of its shell state.
func (r *Runtime) unloaded(ctx context.Context, l *live, reason string) {
	id := l.rec.ID
	r.emit(events.SessionEnded, id, events.Session{Workspace: l.workspace(), Reason: reason})
	r.FireHook(ctx, l.workspace(), hooks.Payload{Event: hooks.SessionEnd, SessionID: id, Reason: reason})
	r.capsuleEvent(ctx, l.securitySession(r), "SessionEnd", reason)
	if r.o.Bash != nil {
		_ = r.o.Bash.Forget(id)
	}
	if r.mcp != nil {
		r.mcp.EndSession(id)
	}
}

// Show returns a session with its conversation: the loaded one as it is
// now, else the saved one.
func (r *Runtime) Show(ctx context.Context, id string) (api.SessionDetail, error) {
	r.mu.Lock()
	l, ok := r.sessions[id]
	r.mu.Unlock()
	var rec *session.Record
	if ok {
		l.mu.Lock()
		c := *l.rec
		c.Messages = append(c.Messages[:0:0], l.rec.Messages...)
		l.mu.Unlock()
		rec = &c
	} else {
		var err error
		if rec, err = r.o.Store.LoadSession(ctx, id); errors.Is(err, session.ErrNoSession) {
			return api.SessionDetail{}, fmt.Errorf("%w: session %s", api.ErrNotFound, id)
		} else if err != nil {
			return api.SessionDetail{}, err
		}
	}
	d, err := rec.Detail()
	if err != nil {
		return d, err
	}
	d.SessionInfo = r.Info(rec)
	return d, nil
}

// Delete deletes a saved session. A loaded one must be idle
// (api.ErrConflict otherwise): it is dropped from memory first and never
// saved again, so the deletion stands. api.ErrNotFound if there is no such
// session.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	r.mu.Lock()
	l, loaded := r.sessions[id]
	if loaded {
		l.mu.Lock()
		busy := l.busy
		l.deleted = !busy
		l.mu.Unlock()
		if busy {
			r.mu.Unlock()
			return fmt.Errorf("%w: a turn is running in session %s; cancel it first", api.ErrConflict, id)
		}
		delete(r.sessions, id)
	}
	r.mu.Unlock()
	if loaded {
		l.saveMu.Lock() // a save that began before is written before the deletion
		defer l.saveMu.Unlock()
	}
	err := r.o.Store.DeleteSession(ctx, id)
	if errors.Is(err, session.ErrNoSession) && loaded {
		err = nil // it was never saved, and is gone from memory now
	}
	if err != nil {
		if loaded { // nothing was deleted: it stays loaded as it was
			l.mu.Lock()
			l.deleted = false
			l.mu.Unlock()
			r.mu.Lock()
			if _, ok := r.sessions[id]; !ok {
				r.sessions[id] = l
			}
			r.mu.Unlock()
		}
		if errors.Is(err, session.ErrNoSession) {
			return fmt.Errorf("%w: session %s", api.ErrNotFound, id)
		}
		return err
	}
	if loaded {
		r.unloaded(ctx, l, "deleted")
	}
	return nil
}

// Cleanup deletes the saved sessions last updated before t, except the
// loaded ones, and returns the ids deleted and those kept.
func (r *Runtime) Cleanup(ctx context.Context, t time.Time) (deleted, kept []string, err error) {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	return session.DeleteBefore(ctx, r.o.Store, t, func(id string) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, ok := r.sessions[id]
		return ok
	})
}

func (r *Runtime) waitIdle(l *live, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		busy := l.busy
		l.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// save writes the session to the store and tells the frontends.
func (r *Runtime) save(ctx context.Context, l *live) error {
	if l.parent != nil {
		return nil // sub-agents live only as long as their task
	}
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	if l.deleted {
		l.mu.Unlock()
		return nil
	}
	l.rec.UpdatedAt = r.o.Now().UTC()
	l.rec.Spent = r.o.Core.Budget.Session(l.rec.ID).Spent
	rec := *l.rec
	rec.Messages = append(rec.Messages[:0:0], l.rec.Messages...)
	l.mu.Unlock()
	if err := r.o.Store.SaveSession(context.WithoutCancel(ctx), &rec); err != nil {
		r.log.Error("saving a session failed", "session", rec.ID, "err", err)
		r.publish(rec.ID, api.EventError, api.ErrorEvent{Message: "the session could not be saved"})
		return err
	}
	r.publish(rec.ID, api.EventSessionSaved, api.SessionSaved{Turns: rec.Turns})
	r.emit(events.SessionSaved, rec.ID, events.Session{Workspace: rec.Workspace})
	return nil
}

// Shutdown cancels every running turn, waits for them and saves every
// session.
func (r *Runtime) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
	var ls []*live
	for _, l := range r.sessions {
		ls = append(ls, l)
	}
	r.mu.Unlock()
	for _, l := range ls {
		l.mu.Lock()
		if l.cancel != nil {
			l.cancel()
		}
		l.mu.Unlock()
	}
	done := make(chan struct{})
	go func() { r.turns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	var errs []error
	for _, l := range ls {
		errs = append(errs, r.save(ctx, l))
		r.emit(events.SessionEnded, l.rec.ID, events.Session{Workspace: l.workspace(), Reason: "shutdown"})
		r.FireHook(ctx, l.workspace(), hooks.Payload{Event: hooks.SessionEnd, SessionID: l.rec.ID, Reason: "shutdown"})
	}
	r.closeHooks()
	return errors.Join(errs...)
}
