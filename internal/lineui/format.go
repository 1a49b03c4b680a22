package lineui

import (
	"strings"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
)

// ApprovalKeys maps the single keys of an approval prompt to decisions, in
// the order the prompt lists them.
var ApprovalKeys = []struct {
	Key, Decision, Label string
}{
	{"o", api.DecisionAllowOnce, "allow once"},
	{"s", api.DecisionAllowSession, "allow for this session"},
	{"w", api.DecisionAllowWorkspace, "allow for this workspace"},
	{"a", api.DecisionAllowAlways, "allow always"},
	{"d", api.DecisionDeny, "deny"},
}

// DecisionForKey returns the decision a key (o, s, w, a, d) stands for.
func DecisionForKey(k string) (string, bool) {
	k = strings.ToLower(strings.TrimSpace(k))
	for _, a := range ApprovalKeys {
		if k == a.Key {
			return a.Decision, true
		}
	}
	return "", false
}

// DecisionText words a decision for the transcript.
func DecisionText(d string) string {
	switch d {
	case api.DecisionAllowOnce:
		return "allowed once"
	case api.DecisionAllowSession:
		return "allowed for the session"
	case api.DecisionAllowWorkspace:
		return "allowed for the workspace"
	case api.DecisionAllowAlways:
		return "allowed always"
	case api.DecisionDeny, "denied":
		return "denied"
	case "deferred":
		return "deferred (answer it with `astrid approvals`)"
	}
	return frontend.SanitizeLine(d)
}

// ApprovalFields are the labelled lines of an approval request, untrusted
// values sanitized; the resource is shown whole, never clipped.
func ApprovalFields(r api.ApprovalRequest) [][2]string {
	f := [][2]string{}
	add := func(label, v string) {
		if v != "" {
			f = append(f, [2]string{label, frontend.SanitizeLine(v)})
		}
	}
	add("action", r.Kind)
	add("resource", r.Resource)
	add("risk", r.Risk)
	add("reason", r.Reason)
	if r.Pattern != "" {
		add("an allow covers", r.Pattern)
	} else {
		f = append(f, [2]string{"an allow covers", "this exact action only"})
	}
	if r.Dynamic {
		f = append(f, [2]string{"note", "the command cannot be judged statically: allow once only if you read it"})
	}
	return f
}

// StatusMark is the symbol and word of a tool call's status.
func StatusMark(status string) string {
	switch status {
	case "ok":
		return "✓ ok"
	case "error":
		return "✗ error"
	case "denied":
		return "⊘ denied"
	case "deferred":
		return "… deferred"
	}
	return frontend.SanitizeLine(status)
}
