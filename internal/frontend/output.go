package frontend

import (
	"fmt"

	"github.com/astrid-runtime/astrid/internal/api"
)

// Convert turns an event that needs no answer into sanitized output: text
// deltas, tool calls starting and finishing, usage, budget warnings,
// errors, lag, the end of a turn, and the notices of Notice. ok is false
// for other events (approvals and elicitations are Run's to ask; reasoning,
// session_saved and capsule events are not shown) and for events that do
// not decode.
func Convert(e api.Event) (o Output, ok bool) {
	switch e.Type {
	case api.EventTextDelta:
		var d api.TextDelta
		if e.Decode(&d) != nil {
			return o, false
		}
		t := Sanitize(d.Text)
		return Output{Kind: KindText, Turn: SanitizeLine(d.Turn), Text: t}, t != ""
	case api.EventToolCallStart:
		var t api.ToolCallStart
		if e.Decode(&t) != nil {
			return o, false
		}
		return Output{Kind: KindToolStart, Turn: SanitizeLine(t.Turn), Tool: ToolCall{
			Call: SanitizeLine(t.Call), Tool: SanitizeLine(t.Tool), Resource: SanitizeLine(t.Resource), Args: ToolArgs(t.Arguments, 100),
		}}, true
	case api.EventToolCallResult:
		var t api.ToolCallResult
		if e.Decode(&t) != nil {
			return o, false
		}
		return Output{Kind: KindToolResult, Turn: SanitizeLine(t.Turn), Tool: ToolCall{
			Call: SanitizeLine(t.Call), Tool: SanitizeLine(t.Tool), Status: SanitizeLine(t.Status),
			Output: Sanitize(t.Output), Lines: CountLines(t.Output), Truncated: t.Truncated,
		}}, true
	case api.EventUsage:
		var u api.Usage
		if e.Decode(&u) != nil {
			return o, false
		}
		u.Turn = SanitizeLine(u.Turn)
		return Output{Kind: KindUsage, Turn: u.Turn, Usage: u}, true
	case api.EventBudgetWarning:
		var w api.BudgetWarning
		if e.Decode(&w) != nil {
			return o, false
		}
		return Output{Kind: KindNotice, Text: fmt.Sprintf("[budget] the %s has spent %s of %s", SanitizeLine(w.Account), USD(w.UsedUSD), USD(w.LimitUSD))}, true
	case api.EventError:
		var x api.ErrorEvent
		if e.Decode(&x) != nil {
			return o, false
		}
		return Output{Kind: KindError, Turn: SanitizeLine(x.Turn), Text: SanitizeLine(x.Message)}, true
	case api.EventLagged:
		var l api.Lagged
		_ = e.Decode(&l)
		return Output{Kind: KindNotice, Text: fmt.Sprintf("[lagged] missed %d events", l.Dropped)}, true
	case api.EventTurnComplete:
		var t api.TurnComplete
		if e.Decode(&t) != nil {
			return o, false
		}
		return Output{Kind: KindTurnEnd, Turn: SanitizeLine(t.Turn), Text: SanitizeLine(t.StopReason)}, true
	}
	if s, ok := Notice(e); ok {
		return Output{Kind: KindNotice, Text: s}, true
	}
	return o, false
}

// sanitizeApproval returns the request with every string sanitized for
// one line (the resource whole).
func sanitizeApproval(r api.ApprovalRequest) api.ApprovalRequest {
	for _, s := range []*string{&r.ID, &r.Session, &r.Principal, &r.Workspace, &r.Kind, &r.Resource, &r.Risk, &r.Reason, &r.Pattern, &r.Summary} {
		*s = SanitizeLine(*s)
	}
	return r
}
