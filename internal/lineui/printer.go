package lineui

import (
	"fmt"
	"io"
	"strings"

	"github.com/astrid-runtime/astrid/internal/api"
)

// Printer writes a session's events as plain text, for a pipe or a plain
// terminal: the streamed answer as it arrives on Text, and everything else
// as one-line notes on Notes (Text and Notes may be the same writer). All
// untrusted text is sanitized. RunLines, `astrid exec` and the first-run
// demo print through it.
type Printer struct {
	Text, Notes io.Writer

	midLine bool // the last text printed did not end a line
}

// NewPrinter returns a Printer writing the answer to text and notes to
// notes.
func NewPrinter(text, notes io.Writer) *Printer { return &Printer{Text: text, Notes: notes} }

// EndLine ends the answer's line if text was printed since the last
// newline.
func (p *Printer) EndLine() {
	if p.midLine {
		fmt.Fprintln(p.Text)
		p.midLine = false
	}
}

// Notef prints a note on a line of its own; format should end with a
// newline.
func (p *Printer) Notef(format string, args ...any) {
	p.EndLine()
	fmt.Fprintf(p.Notes, format, args...)
}

// Event prints the events that need no answer: text deltas, tool calls
// starting and finishing, budget warnings, errors, lag and the end of a
// turn. Approval and elicitation requests are the caller's to print
// (Approval) and answer. Events that do not decode are skipped.
func (p *Printer) Event(e api.Event) {
	switch e.Type {
	case api.EventTextDelta:
		var d api.TextDelta
		if e.Decode(&d) != nil {
			return
		}
		if t := Sanitize(d.Text); t != "" {
			fmt.Fprint(p.Text, t)
			p.midLine = !strings.HasSuffix(t, "\n")
		}
	case api.EventToolCallStart:
		var t api.ToolCallStart
		if e.Decode(&t) != nil {
			return
		}
		s := "[tool] " + SanitizeLine(t.Tool)
		if t.Resource != "" {
			s += " " + SanitizeLine(t.Resource)
		}
		if a := ToolArgs(t.Arguments, 100); a != "" {
			s += " " + a
		}
		p.Notef("%s\n", s)
	case api.EventToolCallResult:
		var t api.ToolCallResult
		if e.Decode(&t) == nil {
			p.Notef("[tool] %s: %s (%d lines of output)\n", SanitizeLine(t.Tool), StatusMark(t.Status), CountLines(t.Output))
		}
	case api.EventBudgetWarning:
		var w api.BudgetWarning
		if e.Decode(&w) == nil {
			p.Notef("[budget] the %s has spent %s of %s\n", SanitizeLine(w.Account), USD(w.UsedUSD), USD(w.LimitUSD))
		}
	case api.EventError:
		var x api.ErrorEvent
		if e.Decode(&x) == nil {
			p.Notef("error: %s\n", SanitizeLine(x.Message))
		}
	case api.EventLagged:
		var l api.Lagged
		_ = e.Decode(&l)
		p.Notef("[lagged] missed %d events\n", l.Dropped)
	case api.EventTurnComplete:
		var t api.TurnComplete
		if e.Decode(&t) != nil {
			return
		}
		p.EndLine()
		if t.StopReason != "" && t.StopReason != "end_turn" {
			p.Notef("[turn ended: %s]\n", SanitizeLine(t.StopReason))
		}
	default:
		if s, ok := Notice(e); ok {
			p.Notef("%s\n", s)
		}
	}
}

// Approval prints an approval request: its title, then each field on a
// line of its own (the resource whole).
func (p *Printer) Approval(req api.ApprovalRequest) {
	p.Notef("[approval] %s\n", ApprovalTitle(req))
	for _, f := range ApprovalFields(req) {
		p.Notef("  %-16s%s\n", f[0], f[1])
	}
}

// Resolved prints the answer to an approval request.
func (p *Printer) Resolved(req api.ApprovalRequest, decision string) {
	p.Notef("[approval] %s: %s\n", ApprovalTitle(req), DecisionText(decision))
}
