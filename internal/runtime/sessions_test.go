package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/session"
)

// TestDeleteLoadedSession: a session deleted while loaded and idle leaves
// memory at once; ending it, resuming it or sending to it afterwards finds
// nothing, and nothing saves it again. A busy one is refused and kept.
func TestDeleteLoadedSession(t *testing.T) {
	w := newWorld(t, `{"text":"hello"}`, "")
	ctx := context.Background()
	rec, err := w.rt.Create(ctx, CreateOptions{Workspace: w.ws, Title: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	w.turn(rec.ID, "hi") // a turn ran: the session was saved and stays loaded
	if info := w.rt.Info(rec); !info.Active || info.Turns != 1 {
		t.Fatalf("before delete: %+v", info)
	}
	if err := w.rt.Delete(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := w.rt.End(ctx, rec.ID); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("End after Delete = %v, want ErrNotFound", err)
	}
	if _, err := w.rt.Send(ctx, rec.ID, "again"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Send after Delete = %v, want ErrNotFound", err)
	}
	if err := w.rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.core.DB.Sessions().LoadSession(ctx, rec.ID); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the deleted session was saved again: %v", err)
	}
	if err := w.rt.Delete(ctx, rec.ID); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
}

// TestDeleteRefusesBusySession: deleting a session whose turn runs is a
// conflict, and the session stays saved and loaded.
func TestDeleteRefusesBusySession(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "")
	ctx := context.Background()
	rec, err := w.rt.Create(ctx, CreateOptions{Workspace: w.ws})
	if err != nil {
		t.Fatal(err)
	}
	w.rt.mu.Lock()
	l := w.rt.sessions[rec.ID]
	w.rt.mu.Unlock()
	l.mu.Lock()
	l.busy = true // as while a turn runs
	l.mu.Unlock()
	if err := w.rt.Delete(ctx, rec.ID); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "cancel it first") {
		t.Fatalf("Delete of a busy session = %v, want ErrConflict", err)
	}
	l.mu.Lock()
	l.busy = false
	deleted := l.deleted
	l.mu.Unlock()
	if deleted || !w.rt.Info(rec).Active {
		t.Error("a refused deletion unloaded the session")
	}
	if _, err := w.core.DB.Sessions().LoadSession(ctx, rec.ID); err != nil {
		t.Fatalf("a refused deletion deleted the session: %v", err)
	}
}

// TestShowAndCleanupSessions: Show gives a loaded session as it is in
// memory with Active set, a saved one from the store; Cleanup deletes the
// old saved sessions and keeps the loaded ones.
func TestShowAndCleanupSessions(t *testing.T) {
	w := newWorld(t, `{"text":"hello"}`, "")
	ctx := context.Background()
	kept, err := w.rt.Create(ctx, CreateOptions{Workspace: w.ws, Title: "loaded"})
	if err != nil {
		t.Fatal(err)
	}
	w.turn(kept.ID, "hi")
	gone, err := w.rt.Create(ctx, CreateOptions{Workspace: w.ws, Title: "saved"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.rt.End(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	d, err := w.rt.Show(ctx, kept.ID)
	if err != nil || !d.Active || d.Turns != 1 || !strings.Contains(string(d.Messages), `"hello"`) {
		t.Fatalf("Show(loaded) = %+v %s, %v", d.SessionInfo, d.Messages, err)
	}
	if d, err := w.rt.Show(ctx, gone.ID); err != nil || d.Active || d.Title != "saved" {
		t.Fatalf("Show(saved) = %+v, %v", d.SessionInfo, err)
	}
	if _, err := w.rt.Show(ctx, "s-nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Show(unknown) = %v", err)
	}
	if del, k, err := w.rt.Cleanup(ctx, time.Now().Add(-time.Hour)); err != nil || len(del) != 0 || len(k) != 0 {
		t.Fatalf("Cleanup(an hour ago) = %v %v %v, want nothing", del, k, err)
	}
	del, k, err := w.rt.Cleanup(ctx, time.Now().Add(time.Hour))
	if err != nil || len(del) != 1 || del[0] != gone.ID || len(k) != 1 || k[0] != kept.ID {
		t.Fatalf("Cleanup = deleted %v kept %v, %v", del, k, err)
	}
	if _, err := w.core.DB.Sessions().LoadSession(ctx, kept.ID); err != nil {
		t.Errorf("the loaded session was deleted: %v", err)
	}
}
