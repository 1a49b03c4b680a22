package daemon

import (
	"testing"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/security"
)

// TestInterceptorNoticesOnTheBus checks that each interceptor notice is
// published as its typed events.
func TestInterceptorNoticesOnTheBus(t *testing.T) {
	d := &Daemon{bus: events.New(nil)}
	sub := d.Bus().Subscribe(100, nil)
	req := &approval.Request{ID: "req-1", Kind: "write", Resource: "file:///w/a.txt"}
	d.notice(security.Notice{Kind: "approval_requested", Session: "s", Request: req})
	d.notice(security.Notice{Kind: "approval_resolved", Session: "s", Request: req, Answer: &approval.Answer{Decision: approval.AllowOnce, By: "me"}})
	d.notice(security.Notice{Kind: "approval_resolved", Session: "s", Request: req, Answer: &approval.Answer{Decision: approval.Deny}})
	d.notice(security.Notice{Kind: "deferred", Session: "s", Request: req, Deferred: "d-1"})
	d.notice(security.Notice{Kind: "budget_warning", Session: "s", Warning: &budget.Warning{Account: "s", Key: "session", Used: 900, Max: 1000}})
	want := []struct {
		kind events.Kind
		ok   func(any) bool
	}{
		{events.ApprovalRequested, func(d any) bool { return d.(events.Approval).Resource == "file:///w/a.txt" }},
		{events.ApprovalGranted, func(d any) bool { a := d.(events.Approval); return a.Decision == "allow_once" && a.By == "me" }},
		{events.ApprovalResolved, func(d any) bool { return d.(events.Approval).Decision == "allow_once" }},
		{events.ApprovalDenied, func(d any) bool { return d.(events.Approval).Decision == "deny" }},
		{events.ApprovalResolved, func(d any) bool { return d.(events.Approval).Decision == "deny" }},
		{events.ApprovalDeferred, func(d any) bool { return d.(events.Approval).Deferred == "d-1" }},
		{events.BudgetWarning, func(d any) bool { b := d.(events.Budget); return b.Key == "session" && b.LimitUSD > b.UsedUSD }},
	}
	for _, w := range want {
		select {
		case e := <-sub.C:
			if e.Kind != w.kind || e.Session != "s" || !w.ok(e.Data) {
				t.Errorf("got %+v, want %s", e, w.kind)
			}
		default:
			t.Fatalf("no %s event", w.kind)
		}
	}
}
