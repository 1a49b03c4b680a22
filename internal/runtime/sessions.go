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
	rec, err := r.o.Store.LoadSession(ctx, id)
	if errors.Is(err, session.ErrNoSession) {
		return nil, fmt.Errorf("%w: session %s", api.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	// The budget tracker is in memory: a resumed session carries on from
	// what it had spent.
	r.o.Core.Budget.SetSpent(rec.ID, rec.Spent, "", 0)
	r.mu.Lock()
	if l, ok := r.sessions[id]; ok {
		r.mu.Unlock()
		return l, nil
	}
	l = &live{rec: rec}
	r.sessions[id] = l
	r.mu.Unlock()
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
	info := api.SessionInfo{ID: rec.ID, Workspace: rec.Workspace, Mode: rec.Mode, Title: rec.Title, Model: rec.Model,
		CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, Active: active, Turns: rec.Turns, SpentUSD: rec.Spent.USD()}
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
	r.emit(events.SessionEnded, id, events.Session{Workspace: l.workspace(), Reason: "ended"})
	r.FireHook(ctx, l.workspace(), hooks.Payload{Event: hooks.SessionEnd, SessionID: id, Reason: "ended"})
	r.capsuleEvent(ctx, l.securitySession(r), "SessionEnd", "ended")
	if r.o.Bash != nil {
		_ = r.o.Bash.Forget(id)
	}
	return err
}

// Delete removes a saved session (ending it first if it is loaded).
func (r *Runtime) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	_, loaded := r.sessions[id]
	r.mu.Unlock()
	if loaded {
		if err := r.End(ctx, id); err != nil {
			return err
		}
	}
	return r.o.Store.DeleteSession(ctx, id)
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
	l.mu.Lock()
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
