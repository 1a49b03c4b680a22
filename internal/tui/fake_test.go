package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
)

// fakeClient records the calls the front ends make and answers from its
// fields. Safe for concurrent use, like the real client.
type fakeClient struct {
	mu          sync.Mutex
	calls       []string                           // guarded by mu; method names
	approvals   []api.ApprovalResponseParams       // guarded by mu
	elicits     []api.ElicitationResponseParams    // guarded by mu
	inputs      []string                           // guarded by mu
	cancels     []api.CancelTurnParams             // guarded by mu
	approvalErr error                              // guarded by mu
	onInput     func(n int, text string) string    // guarded by mu; returns the turn id
	onApproval  func(p api.ApprovalResponseParams) // called after recording

	tools     []api.ToolInfo
	budget    api.Budget
	serverErr error
}

var _ Client = (*fakeClient)(nil)

func (f *fakeClient) record(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *fakeClient) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeClient) Approvals() []api.ApprovalResponseParams {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.ApprovalResponseParams(nil), f.approvals...)
}

func (f *fakeClient) Elicits() []api.ElicitationResponseParams {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.ElicitationResponseParams(nil), f.elicits...)
}

func (f *fakeClient) Inputs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.inputs...)
}

func (f *fakeClient) SendInput(_ context.Context, session, text string) (string, error) {
	f.record("sendInput")
	f.mu.Lock()
	f.inputs = append(f.inputs, text)
	n, on := len(f.inputs), f.onInput
	f.mu.Unlock()
	if on != nil {
		return on(n, text), nil
	}
	return fmt.Sprintf("t%d", n), nil
}

func (f *fakeClient) CancelTurn(_ context.Context, p api.CancelTurnParams) (bool, error) {
	f.record("cancelTurn")
	f.mu.Lock()
	f.cancels = append(f.cancels, p)
	f.mu.Unlock()
	return true, nil
}

func (f *fakeClient) ApprovalResponse(_ context.Context, p api.ApprovalResponseParams) error {
	f.record("approvalResponse")
	f.mu.Lock()
	f.approvals = append(f.approvals, p)
	err, on := f.approvalErr, f.onApproval
	f.mu.Unlock()
	if on != nil {
		on(p)
	}
	return err
}

func (f *fakeClient) ElicitationResponse(_ context.Context, p api.ElicitationResponseParams) error {
	f.record("elicitationResponse")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.elicits = append(f.elicits, p)
	return nil
}

func (f *fakeClient) ListSessions(context.Context, api.ListSessionsParams) ([]api.SessionInfo, error) {
	f.record("listSessions")
	return []api.SessionInfo{{ID: "s1", Turns: 2, Active: true, Title: "first"}, {ID: "s0", Turns: 5}}, nil
}

func (f *fakeClient) ResumeSession(_ context.Context, s string) (api.SessionInfo, error) {
	f.record("resumeSession")
	return api.SessionInfo{ID: s, Turns: 2, Active: true}, nil
}

func (f *fakeClient) EndSession(context.Context, string) error {
	f.record("endSession")
	return nil
}

func (f *fakeClient) SessionBudget(context.Context, string) (api.Budget, error) {
	f.record("sessionBudget")
	return f.budget, nil
}

func (f *fakeClient) SessionAllowances(context.Context, api.SessionAllowancesParams) ([]api.Allowance, error) {
	f.record("sessionAllowances")
	return []api.Allowance{{Scope: "session", Pattern: "exec://ls *", Permission: "execute"}}, nil
}

func (f *fakeClient) SessionAudit(context.Context, api.SessionAuditParams) ([]api.AuditEntry, error) {
	f.record("sessionAudit")
	return []api.AuditEntry{{Seq: 7, Type: "decision", Decision: "allow", Resource: "file:///w/a.go"}}, nil
}

func (f *fakeClient) ListApprovals(context.Context, api.ListApprovalsParams) ([]api.DeferredApproval, error) {
	f.record("listApprovals")
	return nil, nil
}

func (f *fakeClient) ListServers(context.Context) ([]api.ServerInfo, error) {
	f.record("listServers")
	if f.serverErr != nil {
		return nil, f.serverErr
	}
	return []api.ServerInfo{{Name: "fs", Transport: "stdio", State: "running", Tools: 3}}, nil
}

func (f *fakeClient) ListTools(context.Context, api.ListToolsParams) ([]api.ToolInfo, error) {
	f.record("listTools")
	return f.tools, nil
}

func (f *fakeClient) ListCapsules(context.Context) ([]api.CapsuleInfo, error) {
	f.record("listCapsules")
	return nil, nil
}

// ev builds an event of session s1.
func ev(t testing.TB, typ api.EventType, data any) api.Event {
	t.Helper()
	e, err := api.NewEvent("s1", typ, data)
	if err != nil {
		t.Fatal(err)
	}
	e.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return e
}

func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }
