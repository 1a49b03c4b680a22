package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/session"
	"github.com/astrid-runtime/astrid/internal/store"
)

// saveSession stores a session updated age ago with one message.
func saveSession(t *testing.T, r *running, id string, age time.Duration) {
	t.Helper()
	at := time.Now().Add(-age).UTC()
	rec := &session.Record{ID: id, Workspace: "/w", Mode: "guided", Title: "t " + id, CreatedAt: at, UpdatedAt: at, Turns: 1,
		Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: "hello <" + id + ">"}}}}}
	if err := r.d.core.DB.Sessions().SaveSession(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// sessionDeletions returns the session_delete audit entries of session id.
func sessionDeletions(t *testing.T, r *running, id string) []*audit.Entry {
	t.Helper()
	ses, err := r.d.core.DB.Audit().List(context.Background(), store.AuditFilter{Session: id})
	if err != nil {
		t.Fatal(err)
	}
	var out []*audit.Entry
	for _, se := range ses {
		e, err := audit.Decode(se.Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Action.Kind == "session_delete" {
			out = append(out, e)
		}
	}
	return out
}

// TestSessionMethodsWithoutRuntime: a daemon without an agent runtime
// holds no session, so it serves showSession, deleteSession and
// cleanupSessions from the store; each deletion is audited.
func TestSessionMethodsWithoutRuntime(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	c := dial(t, h)
	ctx := tctx(t)
	saveSession(t, r, "s-old", 48*time.Hour)
	saveSession(t, r, "s-older", 72*time.Hour)
	saveSession(t, r, "s-new", 0)

	d, err := c.ShowSession(ctx, "s-old")
	var msgs []llm.Message
	if err == nil {
		err = json.Unmarshal(d.Messages, &msgs)
	}
	if err != nil || d.ID != "s-old" || d.Title != "t s-old" || d.Active || len(msgs) != 1 || msgs[0].Parts[0].Text != "hello <s-old>" {
		t.Fatalf("ShowSession = %+v %s, %v", d.SessionInfo, d.Messages, err)
	}
	if _, err := c.ShowSession(ctx, "s-nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("ShowSession(unknown) = %v, want ErrNotFound", err)
	}
	if err := c.Call(ctx, api.MethodShowSession, api.ShowSessionParams{}, nil); !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("ShowSession without a session = %v, want ErrInvalidParams", err)
	}

	if err := c.DeleteSession(ctx, "s-new"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.core.DB.Sessions().LoadSession(ctx, "s-new"); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("s-new still saved: %v", err)
	}
	if es := sessionDeletions(t, r, "s-new"); len(es) != 1 || es[0].Action.Resource != "session://s-new" || es[0].Proof.Rule != "delete" || es[0].Frontend != "test" {
		t.Errorf("audit of the deletion: %+v", es)
	}
	if err := c.DeleteSession(ctx, "s-new"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("second DeleteSession = %v, want ErrNotFound", err)
	}

	if err := c.Call(ctx, api.MethodCleanupSessions, api.CleanupSessionsParams{}, nil); !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("cleanupSessions without before = %v, want ErrInvalidParams", err)
	}
	res, err := c.CleanupSessions(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || strings.Join(res.Deleted, ",") != "s-older,s-old" || len(res.Kept) != 0 {
		t.Fatalf("CleanupSessions = %+v, %v; want s-older then s-old", res, err)
	}
	for _, id := range res.Deleted {
		if es := sessionDeletions(t, r, id); len(es) != 1 || es[0].Proof.Rule != "cleanup" {
			t.Errorf("audit of the cleanup of %s: %+v", id, es)
		}
	}
	if res, err := c.CleanupSessions(ctx, time.Now()); err != nil || len(res.Deleted) != 0 || res.Deleted == nil {
		t.Errorf("CleanupSessions of nothing = %+v, %v; want an empty list", res, err)
	}
}

// TestSessionMethodsWithRuntime: with a runtime the daemon asks it (it may
// hold the session loaded): a busy session is refused and not audited.
func TestSessionMethodsWithRuntime(t *testing.T) {
	h := newHome(t, "")
	opts := h.options()
	var fake *fakeBackend
	opts.NewBackend = func(_ context.Context, deps BackendDeps) (Backend, error) {
		fake = newFake(deps)
		return fake, nil
	}
	r := start(t, h, opts)
	c := dial(t, h)
	ctx := tctx(t)
	idle, err := c.CreateSession(ctx, api.CreateSessionParams{Workspace: "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	busy, err := c.CreateSession(ctx, api.CreateSessionParams{Workspace: "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	b := fake.sessions[busy.ID]
	b.Title = "busy"
	fake.sessions[busy.ID] = b
	fake.mu.Unlock()

	if d, err := c.ShowSession(ctx, idle.ID); err != nil || !d.Active || d.ID != idle.ID {
		t.Fatalf("ShowSession = %+v, %v; want the backend's loaded session", d, err)
	}
	if err := c.DeleteSession(ctx, busy.ID); !errors.Is(err, api.ErrConflict) {
		t.Errorf("DeleteSession(busy) = %v, want ErrConflict", err)
	}
	if es := sessionDeletions(t, r, busy.ID); len(es) != 0 {
		t.Errorf("a refused deletion was audited: %+v", es)
	}
	if err := c.DeleteSession(ctx, idle.ID); err != nil {
		t.Fatal(err)
	}
	if es := sessionDeletions(t, r, idle.ID); len(es) != 1 {
		t.Errorf("deletion audited %d times", len(es))
	}
	res, err := c.CleanupSessions(ctx, time.Now().Add(time.Hour))
	if err != nil || len(res.Deleted) != 0 || len(res.Kept) != 1 || res.Kept[0] != busy.ID {
		t.Errorf("CleanupSessions = %+v, %v; want the busy one kept", res, err)
	}
}
