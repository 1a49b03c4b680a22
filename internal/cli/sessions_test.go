package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/session"
	"github.com/astrid-runtime/astrid/internal/store"
)

// liveSessions is a backend holding one busy session.
type liveSessions struct{ daemon.Unavailable }

func (liveSessions) ListSessions(context.Context, daemon.Caller, api.ListSessionsParams) (api.ListSessionsResult, error) {
	return api.ListSessionsResult{Sessions: []api.SessionInfo{{ID: "s-live", Workspace: "/w", Mode: "guided", Active: true, Busy: true, Turns: 3, SpentUSD: 0.5}}}, nil
}

// TestSessionsListViaDaemon: without a daemon the (absent) store is read
// and nothing is started; with one, its answer is shown, loaded and busy
// sessions included.
func TestSessionsListViaDaemon(t *testing.T) {
	te := newTestEnv(t)
	te.vars[DaemonExeVar] = "/nonexistent/astridd" // starting one would fail loudly
	if out, stderr, code := te.run(t, "sessions", "list"); code != 0 || !strings.Contains(out, "no sessions") {
		t.Fatalf("without a daemon: %d %q %q", code, out, stderr)
	}
	serveTestDaemon(t, te, func(context.Context, daemon.BackendDeps) (daemon.Backend, error) { return liveSessions{}, nil })
	out, stderr, code := te.run(t, "sessions", "list")
	if code != 0 || !strings.Contains(out, "s-live") || !strings.Contains(out, "busy") || !strings.Contains(out, "$0.5000") {
		t.Fatalf("with a daemon: %d %q %q", code, out, stderr)
	}
}

// heldSessions is a backend that says it is a runtime and holds session
// s-busy busy and s-held idle, so the daemon asks it about sessions.
type heldSessions struct {
	daemon.Unavailable
	deleted *[]string
}

func (heldSessions) Stats() daemon.BackendStats {
	return daemon.BackendStats{Runtime: true, Sessions: 2}
}

func (heldSessions) ShowSession(_ context.Context, _ daemon.Caller, p api.ShowSessionParams) (api.SessionDetail, error) {
	if p.Session != "s-held" {
		return api.SessionDetail{}, fmt.Errorf("%w: session %s", api.ErrNotFound, p.Session)
	}
	return api.SessionDetail{SessionInfo: api.SessionInfo{ID: "s-held", Workspace: "/w", Mode: "guided", Active: true, Turns: 2},
		Summary:  "earlier talk",
		Messages: []byte(`[{"Role":"assistant","Parts":[{"Kind":"text","Text":"in memory <now>"}]}]`)}, nil
}

func (b heldSessions) DeleteSession(_ context.Context, _ daemon.Caller, p api.DeleteSessionParams) (api.Empty, error) {
	if p.Session == "s-busy" {
		return api.Empty{}, fmt.Errorf("%w: a turn is running in session s-busy; cancel it first", api.ErrConflict)
	}
	*b.deleted = append(*b.deleted, p.Session)
	return api.Empty{}, nil
}

func (heldSessions) CleanupSessions(context.Context, daemon.Caller, api.CleanupSessionsParams) (api.CleanupSessionsResult, error) {
	return api.CleanupSessionsResult{Deleted: []string{"s-old"}, Kept: []string{"s-busy", "s-held"}}, nil
}

// TestSessionsViaDaemon: with a daemon running, show, delete and cleanup
// ask it (it holds sessions the store knows nothing about), its refusal
// of a busy session is the command's error, and a deletion is audited.
func TestSessionsViaDaemon(t *testing.T) {
	te := newTestEnv(t)
	var deleted []string
	serveTestDaemon(t, te, func(context.Context, daemon.BackendDeps) (daemon.Backend, error) {
		return heldSessions{deleted: &deleted}, nil
	})
	out, stderr, code := te.run(t, "sessions", "show", "s-held")
	if code != 0 || !strings.Contains(out, "session s-held  (guided mode, 2 turns") || !strings.Contains(out, "[summary of earlier messages]\nearlier talk") ||
		!strings.Contains(out, "assistant: in memory <now>") {
		t.Fatalf("show: %d %q %q", code, out, stderr)
	}
	out, _, code = te.run(t, "--format", "json", "sessions", "show", "s-held")
	var d struct {
		ID       string        `json:"id"`
		Active   bool          `json:"active"`
		Messages []llm.Message `json:"messages"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || !d.Active || len(d.Messages) != 1 || !strings.Contains(out, "in memory <now>") {
		t.Fatalf("show --json: %d %s", code, out)
	}
	if _, stderr, code := te.run(t, "sessions", "show", "s-nope"); code != 1 || !strings.Contains(stderr, "s-nope") {
		t.Errorf("show unknown: %d %q", code, stderr)
	}
	if _, stderr, code := te.run(t, "sessions", "delete", "s-busy"); code != 1 || !strings.Contains(stderr, "cancel it first") {
		t.Errorf("delete busy: %d %q", code, stderr)
	}
	if out, stderr, code := te.run(t, "sessions", "delete", "s-held"); code != 0 || out != "deleted s-held\n" || len(deleted) != 1 {
		t.Fatalf("delete: %d %q %q %v", code, out, stderr, deleted)
	}
	out, stderr, code = te.run(t, "audit", "list", "--session", "s-held")
	if code != 0 || !strings.Contains(out, "session_delete") {
		t.Errorf("the deletion is not audited: %d %q %q", code, out, stderr)
	}
	if out, stderr, code := te.run(t, "sessions", "cleanup", "--older-than", "24h"); code != 0 || out != "deleted 1 sessions\nkept 2 the daemon holds loaded\n" {
		t.Errorf("cleanup: %d %q %q", code, out, stderr)
	}
}

// TestSessionsWithoutDaemon: with no daemon, show reads the store
// read-only; delete and cleanup need the daemon (it audits every
// deletion): when none can start they fail and the store is untouched,
// and through a daemon over the same store they delete, audited.
func TestSessionsWithoutDaemon(t *testing.T) {
	te := newTestEnv(t)
	te.vars[DaemonExeVar] = "/nonexistent/astridd" // starting one fails
	ctx := context.Background()
	db, err := store.Open(ctx, home.Dir(te.vars["ASTRID_HOME"]).StateDB(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, r := range []*session.Record{
		{ID: "s-a", Workspace: "/w", Mode: "safe", CreatedAt: old, UpdatedAt: old,
			Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: "saved words"}}}}},
		{ID: "s-b", Workspace: "/w", Mode: "safe", CreatedAt: old, UpdatedAt: old},
		{ID: "s-c", Workspace: "/w", Mode: "safe", CreatedAt: time.Now(), UpdatedAt: time.Now()},
	} {
		if err := db.Sessions().SaveSession(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if out, stderr, code := te.run(t, "sessions", "show", "s-a"); code != 0 || !strings.Contains(out, "user: saved words") {
		t.Fatalf("show: %d %q %q", code, out, stderr)
	}
	for _, args := range [][]string{{"sessions", "delete", "s-a"}, {"sessions", "cleanup", "--older-than", "24h"}} {
		if out, stderr, code := te.run(t, args...); code != 1 || out != "" || !strings.Contains(stderr, "/nonexistent/astridd") {
			t.Errorf("%s with no daemon to start: %d %q %q", args[1], code, out, stderr)
		}
	}
	if out, _, _ := te.run(t, "sessions", "list"); !strings.Contains(out, "s-a") || !strings.Contains(out, "s-b") || !strings.Contains(out, "s-c") {
		t.Fatalf("a session was deleted without the daemon: %q", out)
	}

	serveTestDaemon(t, te, nil) // the daemon alone, over the store
	if out, stderr, code := te.run(t, "sessions", "delete", "s-a"); code != 0 || out != "deleted s-a\n" {
		t.Fatalf("delete: %d %q %q", code, out, stderr)
	}
	if _, stderr, code := te.run(t, "sessions", "delete", "s-a"); code != 1 || !strings.Contains(stderr, "s-a") {
		t.Errorf("delete again: %d %q", code, stderr)
	}
	if out, stderr, code := te.run(t, "sessions", "cleanup", "--older-than", "24h"); code != 0 || out != "deleted 1 sessions\n" {
		t.Errorf("cleanup: %d %q %q", code, out, stderr)
	}
	db, err = store.Open(ctx, home.Dir(te.vars["ASTRID_HOME"]).StateDB(), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if left, err := db.Sessions().ListSessions(ctx, ""); err != nil || len(left) != 1 || left[0].ID != "s-c" {
		t.Errorf("after cleanup: %v %v", left, err)
	}
	for _, id := range []string{"s-a", "s-b"} {
		if out, stderr, code := te.run(t, "audit", "list", "--session", id); code != 0 || !strings.Contains(out, "session_delete") {
			t.Errorf("the deletion of %s is not audited: %d %q %q", id, code, out, stderr)
		}
	}
}
