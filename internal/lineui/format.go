package lineui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/astrid-runtime/astrid/internal/api"
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
	return SanitizeLine(d)
}

// ApprovalFields are the labelled lines of an approval request, untrusted
// values sanitized; the resource is shown whole, never clipped.
func ApprovalFields(r api.ApprovalRequest) [][2]string {
	f := [][2]string{}
	add := func(label, v string) {
		if v != "" {
			f = append(f, [2]string{label, SanitizeLine(v)})
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

// ApprovalTitle is the request's one-line summary.
func ApprovalTitle(r api.ApprovalRequest) string {
	if r.Summary != "" {
		return SanitizeLine(r.Summary)
	}
	return SanitizeLine(r.Kind + " " + r.Resource)
}

// ToolArgs renders a tool call's arguments on one line, at most n runes.
func ToolArgs(raw json.RawMessage, n int) string {
	if len(raw) == 0 {
		return ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return ""
		}
		return Clip(SanitizeLine(b.String()), n)
	}
	// Keep the order the model wrote them in.
	dec := json.NewDecoder(bytes.NewReader(raw))
	var parts []string
	if _, err := dec.Token(); err == nil {
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				break
			}
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				break
			}
			k, _ := t.(string)
			var s string
			if json.Unmarshal(v, &s) == nil {
				parts = append(parts, fmt.Sprintf("%s=%q", k, Clip(s, 60)))
			} else {
				var b bytes.Buffer
				_ = json.Compact(&b, v)
				parts = append(parts, k+"="+Clip(b.String(), 60))
			}
		}
	}
	return Clip(SanitizeLine(strings.Join(parts, " ")), n)
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
	return SanitizeLine(status)
}

// CountLines counts the lines of s as shown.
func CountLines(s string) int {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return 0
	}
	return strings.Count(s, "\n") + 1
}

// SendError words a failed sendInput for the user.
func SendError(err error) string {
	switch {
	case errors.Is(err, api.ErrConflict):
		return "a turn is already running in this session (another frontend?); wait for it"
	case errors.Is(err, api.ErrUnavailable):
		return "this daemon cannot run turns: " + SanitizeLine(err.Error())
	case errors.Is(err, api.ErrBudgetExceeded):
		return "the budget is spent: " + SanitizeLine(err.Error())
	}
	return "sending failed: " + SanitizeLine(err.Error())
}
