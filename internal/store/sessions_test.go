package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/session"
)

func TestSessionsRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, p := openTemp(t)
	s := db.Sessions()
	t0 := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	r := &session.Record{
		ID: "s1", Workspace: "/ws", Principal: "me", Frontend: "cli", Title: "first", Mode: string(security.Guided), Model: "m",
		CreatedAt: t0, UpdatedAt: t0, Turns: 2, Spent: 1234, Summary: "earlier: read files",
		Messages: []llm.Message{
			{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: "hi ✓"}}},
			{Role: llm.RoleAssistant, Parts: []llm.Part{{Kind: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "c1", Name: "read_file", Arguments: []byte(`{"file_path":"a"}`)}}}},
			{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "c1", Content: "x", IsError: true}}}},
		},
	}
	if err := s.SaveSession(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Turns, r.UpdatedAt = 3, t0.Add(time.Minute)
	if err := s.SaveSession(ctx, r); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s = db.Sessions()
	got, err := s.LoadSession(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := s.SaveSession(ctx, &session.Record{ID: "s2", Workspace: "/other", Mode: string(security.Safe), CreatedAt: t0, UpdatedAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSessions(ctx, "")
	if err != nil || len(list) != 2 || list[0].ID != "s2" || list[1].Messages != nil {
		t.Fatalf("list: %v %v", list, err)
	}
	if list, _ := s.ListSessions(ctx, "/ws"); len(list) != 1 || list[0].ID != "s1" {
		t.Fatalf("list /ws: %v", list)
	}
	if err := s.DeleteSession(ctx, "s1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.LoadSession(ctx, "s1"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("deleted session: %v", err)
	}
	if err := s.DeleteSession(ctx, "s1"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("delete missing: %v", err)
	}
	if _, err := db.Exec(`UPDATE sessions SET messages = x'7b7b' WHERE id = 's2'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSession(ctx, "s2"); err == nil {
		t.Fatal("damaged messages loaded")
	}
}
