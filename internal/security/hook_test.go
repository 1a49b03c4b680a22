package security_test

import (
	"context"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/security"
)

// TestHookBlockIsAuditedAndWins: a call a PreToolCall hook blocked is
// refused before anything could authorise it (autonomous mode, a human
// who allows everything) and the refusal is in the audit log; a hook's
// question and rewrite are recorded in the decision entry.
func TestHookBlockIsAuditedAndWins(t *testing.T) {
	r := newRig(t)
	allowAll := &asker{d: approval.AllowOnce}
	ex := &counter{}
	s := r.session("s1", security.Autonomous, allowAll)
	s.HookBlock = "hook guard: no .env files"
	_, err := r.ic.Run(context.Background(), r.file(security.FileWrite, s, ".env"), ex)
	wantDenied(t, err, security.StepHook, "hook")
	if ex.n.Load() != 0 || allowAll.asked.Load() != 0 {
		t.Fatalf("a blocked call ran %d times, asked %d times", ex.n.Load(), allowAll.asked.Load())
	}

	s = r.session("s1", security.Autonomous, allowAll)
	s.HookAsk = "hook guard: sensitive"
	s.HookNote = "arguments rewritten by hook fix"
	if _, err := r.ic.Run(context.Background(), r.file(security.FileWrite, s, "a.txt"), ex); err != nil {
		t.Fatal(err)
	}
	if allowAll.asked.Load() != 1 {
		t.Errorf("asked %d times, want 1", allowAll.asked.Load())
	}

	var got []string
	for _, e := range r.entries() {
		if e.Type == audit.TypeDecision {
			got = append(got, e.Decision.String()+"|"+e.Proof.Rule+"|"+e.Text)
		}
	}
	want := []string{
		"denied|hook|denied by hook (hook): blocked by hook guard: no .env files",
		"allowed||arguments rewritten by hook fix; the human was asked because hook guard: sensitive",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("decision entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPreApprovalDecidesBeforeAnyoneIsAsked: a PreApproval block is the
// answer: the request is never announced nor put to the Asker, and the
// denial is audited as the human step's.
func TestPreApprovalDecidesBeforeAnyoneIsAsked(t *testing.T) {
	r := newRig(t)
	allowAll := &asker{d: approval.AllowOnce}
	ex := &counter{}
	s := r.session("s1", security.Safe, allowAll)
	s.PreApproval = func(context.Context, approval.Request) (approval.Answer, bool) {
		return approval.Answer{Decision: approval.Deny, Reason: "blocked by hook night: no approvals at night", By: "hook:night"}, true
	}
	_, err := r.ic.Run(context.Background(), r.file(security.FileWrite, s, "a.txt"), ex)
	wantDenied(t, err, security.StepApproval, "user")
	if ex.n.Load() != 0 || allowAll.asked.Load() != 0 {
		t.Fatalf("ran %d times, asked %d times; want neither", ex.n.Load(), allowAll.asked.Load())
	}
	r.mu.Lock()
	for _, n := range r.notices {
		if n.Kind == "approval_requested" {
			t.Errorf("a request the hook decided was announced: %+v", n)
		}
	}
	r.mu.Unlock()
	// Undecided: the human is asked as usual.
	s.PreApproval = func(context.Context, approval.Request) (approval.Answer, bool) { return approval.Answer{}, false }
	if _, err := r.ic.Run(context.Background(), r.file(security.FileWrite, s, "b.txt"), ex); err != nil || allowAll.asked.Load() != 1 {
		t.Fatalf("undecided: %v, asked %d times", err, allowAll.asked.Load())
	}
}
