package frontend

import (
	"fmt"
	"strconv"

	"github.com/astrid-runtime/astrid/internal/api"
)

// Notice describes, on one sanitized line, an event that only informs the
// user: an MCP tool's progress, the status of a call running as an MCP
// task (input_required among them), a URL elicitation the server says is
// complete, a subscribed resource that changed, and the outcome of a
// deferred call a human approved or denied. ok is false for any other
// event, or one that does not decode. Run hands these lines to a Frontend
// as KindNotice output; line mode and the terminal UI show the same.
func Notice(e api.Event) (line string, ok bool) {
	switch e.Type {
	case api.EventMCPProgress:
		var p api.MCPProgress
		if e.Decode(&p) != nil {
			return "", false
		}
		s := "[progress] " + SanitizeLine(p.Tool) + ": " + strconv.FormatFloat(p.Progress, 'f', -1, 64)
		if p.Total > 0 {
			s += "/" + strconv.FormatFloat(p.Total, 'f', -1, 64)
		}
		if p.Message != "" {
			s += " " + Clip(SanitizeLine(p.Message), 120)
		}
		return s, true
	case api.EventMCPTask:
		var t api.MCPTask
		if e.Decode(&t) != nil {
			return "", false
		}
		s := fmt.Sprintf("[task] %s (%s): %s", SanitizeLine(t.Tool), SanitizeLine(t.Task), SanitizeLine(t.Status))
		if t.Status == "input_required" {
			s += ", the server waits for an answer"
		}
		if t.Message != "" {
			s += ": " + Clip(SanitizeLine(t.Message), 120)
		}
		return s, true
	case api.EventElicitationCompleted:
		var c api.ElicitationCompleted
		if e.Decode(&c) != nil {
			return "", false
		}
		return fmt.Sprintf("[mcp] %s: the interaction in the browser is complete", SanitizeLine(c.Server)), true
	case api.EventMCPResourceUpdated:
		var r api.MCPResourceUpdated
		if e.Decode(&r) != nil {
			return "", false
		}
		return fmt.Sprintf("[mcp] %s: resource %s changed", SanitizeLine(r.Server), Clip(SanitizeLine(r.URI), 200)), true
	case api.EventDeferredResult:
		var d api.DeferredResult
		if e.Decode(&d) != nil {
			return "", false
		}
		s := fmt.Sprintf("[deferred] %s %s (approval %s, %s by %s): %s", SanitizeLine(d.Tool), Clip(SanitizeLine(d.Resource), 120),
			SanitizeLine(d.ID), SanitizeLine(d.Decision), SanitizeLine(d.By), SanitizeLine(d.Status))
		if d.Output != "" {
			s += fmt.Sprintf(" (%d lines of output)", CountLines(d.Output))
		}
		return s, true
	}
	return "", false
}
