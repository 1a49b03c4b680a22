package lineui

import (
	"fmt"
	"io"
	"strings"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
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
// starting and finishing, budget warnings, errors, lag, the end of a turn
// and notices (frontend.Convert). Approval and elicitation requests are
// the caller's to print (Approval) and answer. Events that do not decode
// are skipped.
func (p *Printer) Event(e api.Event) {
	if o, ok := frontend.Convert(e); ok {
		p.Show(o)
	}
}

// Show prints one piece of a frontend's output (already sanitized): the
// answer's text as it streams, everything else as one-line notes. It is
// line mode's frontend.Frontend Show.
func (p *Printer) Show(o frontend.Output) {
	switch o.Kind {
	case frontend.KindText:
		if o.Text != "" {
			fmt.Fprint(p.Text, o.Text)
			p.midLine = !strings.HasSuffix(o.Text, "\n")
		}
	case frontend.KindToolStart:
		s := "[tool] " + o.Tool.Tool
		if o.Tool.Resource != "" {
			s += " " + o.Tool.Resource
		}
		if o.Tool.Args != "" {
			s += " " + o.Tool.Args
		}
		p.Notef("%s\n", s)
	case frontend.KindToolResult:
		p.Notef("[tool] %s: %s (%d lines of output)\n", o.Tool.Tool, StatusMark(o.Tool.Status), o.Tool.Lines)
	case frontend.KindNotice:
		p.Notef("%s\n", o.Text)
	case frontend.KindError:
		p.Notef("error: %s\n", o.Text)
	case frontend.KindTurnEnd:
		p.EndLine()
		if o.Text != "" && o.Text != "end_turn" {
			p.Notef("[turn ended: %s]\n", o.Text)
		}
	case frontend.KindApproval:
		if o.Elsewhere && o.Decision == "" {
			p.Notef("[approval] %s: already answered elsewhere, or no longer waiting\n", frontend.ApprovalTitle(o.Approval))
			return
		}
		p.Resolved(o.Approval, o.Decision)
	}
}

// Approval prints an approval request: its title, then each field on a
// line of its own (the resource whole).
func (p *Printer) Approval(req api.ApprovalRequest) {
	p.Notef("[approval] %s\n", frontend.ApprovalTitle(req))
	for _, f := range ApprovalFields(req) {
		p.Notef("  %-16s%s\n", f[0], f[1])
	}
}

// Resolved prints the answer to an approval request.
func (p *Printer) Resolved(req api.ApprovalRequest, decision string) {
	p.Notef("[approval] %s: %s\n", frontend.ApprovalTitle(req), DecisionText(decision))
}
