// Package lineuitest holds a fake daemon client for the tests of the chat
// front ends (packages lineui and tui).
package lineuitest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/lineui"
)

// FakeClient records the calls the front ends make and answers from its
// fields. Safe for concurrent use, like the real client; set the exported
// fields before use, or under Lock.
type FakeClient struct {
	mu        sync.Mutex
	calls     []string                        // guarded by mu; method names
	approvals []api.ApprovalResponseParams    // guarded by mu
	elicits   []api.ElicitationResponseParams // guarded by mu
	inputs    []string                        // guarded by mu
	cancels   []api.CancelTurnParams          // guarded by mu

	// ApprovalErr is what ApprovalResponse returns.
	ApprovalErr error
	// OnInput, when set, is called by SendInput with the input's number
	// (from 1) and text, and returns the turn id.
	OnInput func(n int, text string) string
	// OnApproval, when set, is called by ApprovalResponse after recording.
	OnApproval func(p api.ApprovalResponseParams)
	// OnElicit, when set, is called by ElicitationResponse after
	// recording.
	OnElicit func(p api.ElicitationResponseParams)

	Tools     []api.ToolInfo
	Budget    api.Budget
	ServerErr error
}

var _ lineui.Client = (*FakeClient)(nil)

// Lock and Unlock guard the exported fields while the client is in use.
func (f *FakeClient) Lock()   { f.mu.Lock() }
func (f *FakeClient) Unlock() { f.mu.Unlock() }

func (f *FakeClient) record(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *FakeClient) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *FakeClient) Approvals() []api.ApprovalResponseParams {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.ApprovalResponseParams(nil), f.approvals...)
}

func (f *FakeClient) Elicits() []api.ElicitationResponseParams {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.ElicitationResponseParams(nil), f.elicits...)
}

func (f *FakeClient) Inputs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.inputs...)
}

func (f *FakeClient) SendInput(_ context.Context, session, text string) (string, error) {
	f.record("sendInput")
	f.mu.Lock()
	f.inputs = append(f.inputs, text)
	n, on := len(f.inputs), f.OnInput
	f.mu.Unlock()
	if on != nil {
		return on(n, text), nil
	}
	return fmt.Sprintf("t%d", n), nil
}

func (f *FakeClient) CancelTurn(_ context.Context, p api.CancelTurnParams) (bool, error) {
	f.record("cancelTurn")
	f.mu.Lock()
	f.cancels = append(f.cancels, p)
	f.mu.Unlock()
	return true, nil
}

func (f *FakeClient) ApprovalResponse(_ context.Context, p api.ApprovalResponseParams) error {
	f.record("approvalResponse")
	f.mu.Lock()
	f.approvals = append(f.approvals, p)
	err, on := f.ApprovalErr, f.OnApproval
	f.mu.Unlock()
	if on != nil {
		on(p)
	}
	return err
}

func (f *FakeClient) ElicitationResponse(_ context.Context, p api.ElicitationResponseParams) error {
	f.record("elicitationResponse")
	f.mu.Lock()
	f.elicits = append(f.elicits, p)
	on := f.OnElicit
	f.mu.Unlock()
	if on != nil {
		on(p)
	}
	return nil
}

func (f *FakeClient) ListSessions(context.Context, api.ListSessionsParams) ([]api.SessionInfo, error) {
	f.record("listSessions")
	return []api.SessionInfo{{ID: "s1", Turns: 2, Active: true, Title: "first"}, {ID: "s0", Turns: 5}}, nil
}

func (f *FakeClient) ResumeSession(_ context.Context, s string) (api.SessionInfo, error) {
	f.record("resumeSession")
	return api.SessionInfo{ID: s, Turns: 2, Active: true}, nil
}

func (f *FakeClient) EndSession(context.Context, string) error {
	f.record("endSession")
	return nil
}

func (f *FakeClient) SessionBudget(context.Context, string) (api.Budget, error) {
	f.record("sessionBudget")
	return f.Budget, nil
}

func (f *FakeClient) SessionAllowances(context.Context, api.SessionAllowancesParams) ([]api.Allowance, error) {
	f.record("sessionAllowances")
	return []api.Allowance{{Scope: "session", Pattern: "exec://ls *", Permission: "execute"}}, nil
}

func (f *FakeClient) SessionAudit(context.Context, api.SessionAuditParams) ([]api.AuditEntry, error) {
	f.record("sessionAudit")
	return []api.AuditEntry{{Seq: 7, Type: "decision", Decision: "allow", Resource: "file:///w/a.go"}}, nil
}

func (f *FakeClient) ListApprovals(context.Context, api.ListApprovalsParams) ([]api.DeferredApproval, error) {
	f.record("listApprovals")
	return nil, nil
}

func (f *FakeClient) ListServers(context.Context) ([]api.ServerInfo, error) {
	f.record("listServers")
	if f.ServerErr != nil {
		return nil, f.ServerErr
	}
	return []api.ServerInfo{{Name: "fs", Transport: "stdio", State: "running", Tools: 3}}, nil
}

func (f *FakeClient) ListTools(context.Context, api.ListToolsParams) ([]api.ToolInfo, error) {
	f.record("listTools")
	return f.Tools, nil
}

func (f *FakeClient) ListCapsules(context.Context) ([]api.CapsuleInfo, error) {
	f.record("listCapsules")
	return nil, nil
}

// Event builds an event of session s1 at a fixed time.
func Event(t testing.TB, typ api.EventType, data any) api.Event {
	t.Helper()
	e, err := api.NewEvent("s1", typ, data)
	if err != nil {
		t.Fatal(err)
	}
	e.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return e
}

// ApprovalEvent is an approval_needed event of session s1 with request id:
// "run rm -rf build/", high risk.
func ApprovalEvent(t testing.TB, id string) api.Event {
	return Event(t, api.EventApprovalNeeded, api.ApprovalNeeded{Request: api.ApprovalRequest{
		ID: id, Session: "s1", Kind: "exec", Resource: "exec://rm -rf build/", Risk: "high",
		Reason: "deletes files in the workspace", Pattern: "exec://rm -rf build/*", Summary: "run rm -rf build/",
	}})
}

// Cancels returns the cancelTurn calls.
func (f *FakeClient) Cancels() []api.CancelTurnParams {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.CancelTurnParams(nil), f.cancels...)
}
