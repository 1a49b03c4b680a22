package daemon

import (
	"testing"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/security"
)

// notStream leaves out the frontends' stream (tested in stream_test.go).
func notStream(e events.Event) bool { return e.Kind != events.StreamEvent }

// TestInterceptorNoticesOnTheBus checks that each interceptor notice is
// published as its typed events.
func TestInterceptorNoticesOnTheBus(t *testing.T) {
	d := &Daemon{bus: events.New(nil)}
	sub := d.Bus().Subscribe(100, notStream)
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

// TestSecurityNoticesOnTheBus checks the security, budget and audit events.
func TestSecurityNoticesOnTheBus(t *testing.T) {
	d := &Daemon{bus: events.New(nil)}
	sub := d.Bus().Subscribe(100, notStream)
	dn := func(allowed bool, step, rule, tok string) *security.DecisionNotice {
		return &security.DecisionNotice{Allowed: allowed, Step: step, Rule: rule, TokenID: tok, Kind: "file_read", Resource: "file:///etc/shadow"}
	}
	d.notice(security.Notice{Kind: "decision", Session: "s", Decision: dn(false, security.StepPolicy, "denied_paths", "")})
	d.notice(security.Notice{Kind: "decision", Session: "s", Decision: dn(false, security.StepApproval, "user", "")})
	d.notice(security.Notice{Kind: "decision", Session: "s", Decision: dn(true, "", "", "tok-1")})
	d.notice(security.Notice{Kind: "decision", Session: "s", Decision: dn(true, "", "mode:guided", "")}) // no event
	d.notice(security.Notice{Kind: "capability_granted", Session: "s", Decision: dn(true, "", "", "tok-2")})
	d.notice(security.Notice{Kind: "budget_reserved", Session: "s", Amount: budget.FromUSD(0.5), Decision: dn(true, "", "", "")})
	d.notice(security.Notice{Kind: "budget_exceeded", Session: "s", Amount: budget.FromUSD(2), Decision: dn(false, "", "per_action", "")})
	d.notice(security.Notice{Kind: "audit_entry", Session: "s", Seq: 42})
	want := []struct {
		kind events.Kind
		ok   func(any) bool
	}{
		{events.AuthorizationDenied, func(d any) bool { return d.(events.Security).Rule == "denied_paths" }},
		{events.SecurityViolation, func(d any) bool { return d.(events.Security).Step == security.StepPolicy }},
		{events.AuthorizationDenied, func(d any) bool { return d.(events.Security).Rule == "user" }},
		{events.CapabilityChecked, func(d any) bool { return d.(events.Security).TokenID == "tok-1" }},
		{events.CapabilityGranted, func(d any) bool { return d.(events.Security).TokenID == "tok-2" }},
		{events.BudgetReserved, func(d any) bool { return d.(events.Budget).AmountUSD == 0.5 }},
		{events.BudgetExceeded, func(d any) bool { b := d.(events.Budget); return b.Key == "per_action" && b.AmountUSD == 2 }},
		{events.AuditEntryCreated, func(d any) bool { return d.(events.Audit).Seq == 42 }},
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
	select {
	case e := <-sub.C:
		t.Errorf("unexpected event %+v", e)
	default:
	}
}
