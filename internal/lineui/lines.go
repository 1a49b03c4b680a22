package lineui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/astrid-runtime/astrid/internal/api"
)

// maxLine bounds one input line in line mode.
const maxLine = 1 << 20

// ErrConnectionLost is returned by RunLines when the event stream ends
// before the input does.
var ErrConnectionLost = errors.New("the connection to the daemon ended")

// lineRunner is the state of RunLines.
type lineRunner struct {
	opts Options
	ctx  context.Context
	p    *Printer

	lines   <-chan string // closed at the end of the input
	readErr *error        // set before lines is closed; read only after
	eof     bool          // no more input: lines closed, or /exit
	drained bool          // lines was closed: *readErr may be read
	queued  []string      // lines read while a turn ran

	busy  bool
	turn  string
	done  int // turns finished
	asked *api.ApprovalRequest
	seen  map[string]bool // approval requests already asked or answered
}

// RunLines runs the chat in line mode: each line of in is one input (or a
// slash command), and the answer is printed to out as it streams. It returns
// nil at the end of the input once the last turn has finished, ctx's error if
// ctx ends (after asking the daemon to cancel the running turn), and
// ErrConnectionLost if the event stream ends first.
//
// A goroutine reads in; it ends at the end of the input, when a read fails,
// or at the first line read after RunLines returned. A read blocked on a
// terminal or a pipe that stays open outlives RunLines until then.
func RunLines(ctx context.Context, opts Options, in io.Reader, out io.Writer) error {
	if opts.Client == nil || opts.Events == nil {
		return errors.New("lineui: Options.Client and Options.Events are required")
	}
	lines := make(chan string)
	done := make(chan struct{})
	defer close(done)
	var readErr error
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
		readErr = sc.Err()
	}()
	r := &lineRunner{opts: opts, ctx: ctx, p: NewPrinter(out, out), lines: lines, readErr: &readErr, seen: map[string]bool{}}
	err := r.run()
	if err != nil && r.busy && r.turn != "" {
		// Leave nothing running behind us.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.Timeout())
		_, _ = opts.Client.CancelTurn(cctx, api.CancelTurnParams{Session: opts.Session.ID, Turn: r.turn})
		cancel()
	}
	return err
}

func (r *lineRunner) printf(format string, args ...any) { r.p.Notef(format, args...) }

func (r *lineRunner) run() error {
	r.printf("astrid: session %s (workspace %s, mode %s)\n", SanitizeLine(r.opts.Session.ID), SanitizeLine(r.opts.Session.Workspace), SanitizeLine(r.opts.Session.Mode))
	for {
		if !r.busy && r.opts.Turns > 0 && r.done >= r.opts.Turns {
			return nil
		}
		// Between turns: take the next input.
		if !r.busy {
			if len(r.queued) > 0 {
				line := r.queued[0]
				r.queued = r.queued[1:]
				if err := r.input(line); err != nil {
					return err
				}
				continue
			}
			if r.eof {
				if r.drained && *r.readErr != nil {
					return fmt.Errorf("reading the input: %w", *r.readErr)
				}
				return nil
			}
		}
		// An approval asked with no input left to answer it: a missing
		// answer is a no.
		if r.asked != nil && r.eof && len(r.queued) == 0 {
			// Events already here may say it was answered elsewhere.
			if r.drainEvents() {
				return ErrConnectionLost
			}
			if r.asked == nil {
				continue
			}
			r.printf("no answer: the input ended; denying\n")
			r.answer(api.DecisionDeny, "no answer: the input ended")
			continue
		}
		lines := r.lines
		if r.eof {
			lines = nil
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case line, ok := <-lines:
			if !ok {
				r.eof, r.drained = true, true
				continue
			}
			if r.asked != nil && len(r.queued) == 0 {
				r.answerLine(line)
				continue
			}
			r.queued = append(r.queued, line)
		case e, ok := <-r.opts.Events:
			if !ok {
				return ErrConnectionLost
			}
			r.event(e)
		}
		// An approval takes the oldest queued line as its answer.
		for r.asked != nil && len(r.queued) > 0 {
			line := r.queued[0]
			r.queued = r.queued[1:]
			r.answerLine(line)
		}
	}
}

// drainEvents handles the events that have already arrived; it reports
// whether the stream ended.
func (r *lineRunner) drainEvents() (closed bool) {
	for {
		select {
		case e, ok := <-r.opts.Events:
			if !ok {
				return true
			}
			r.event(e)
		default:
			return false
		}
	}
}

// input handles one line between turns.
func (r *lineRunner) input(line string) error {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil
	}
	if name, arg, ok := ParseCommand(line); ok {
		return r.command(name, arg)
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.Timeout())
	defer cancel()
	turn, err := r.opts.Client.SendInput(ctx, r.opts.Session.ID, line)
	if err != nil {
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		r.printf("error: %s\n", SendError(err))
		return nil
	}
	r.busy, r.turn = true, turn
	return nil
}

func (r *lineRunner) command(name, arg string) error {
	switch name {
	case "help":
		r.printf("%s\n", HelpText(nil))
		return nil
	case "clear":
		return nil
	case "exit", "quit":
		r.eof, r.queued = true, nil
		return nil
	}
	c, ok := LookupCommand(name)
	if !ok || c.Run == nil {
		r.printf("unknown command /%s; /help lists them\n", SanitizeLine(name))
		return nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.Timeout())
	defer cancel()
	out, err := c.Run(ctx, r.opts.Client, r.opts.Session, arg)
	if err != nil {
		r.printf("%s\n", CommandError(name, err))
		return nil
	}
	r.printf("%s\n", out)
	return nil
}

// event prints one event and follows the turn and approval it belongs to.
func (r *lineRunner) event(e api.Event) {
	if e.Session != "" && e.Session != r.opts.Session.ID {
		return
	}
	switch e.Type {
	case api.EventTextDelta:
		var d api.TextDelta
		if e.Decode(&d) == nil {
			r.markBusy(d.Turn)
		}
	case api.EventToolCallStart:
		var t api.ToolCallStart
		if e.Decode(&t) == nil {
			r.markBusy(t.Turn)
		}
	case api.EventApprovalNeeded:
		var a api.ApprovalNeeded
		if e.Decode(&a) != nil || r.seen[a.Request.ID] {
			return
		}
		r.seen[a.Request.ID] = true
		if r.asked != nil {
			// One question at a time: the runtime asks for one action at a
			// time; a second one waits in the daemon until its deadline.
			r.printf("[approval] another request waits: %s\n", ApprovalTitle(a.Request))
			return
		}
		req := a.Request
		r.asked = &req
		r.p.Approval(req)
		r.printf("answer: o = allow once, s = session, w = workspace, a = always, d = deny\n")
		return
	case api.EventApprovalResolved:
		var x api.ApprovalResolved
		if e.Decode(&x) != nil {
			return
		}
		if r.asked != nil && r.asked.ID == x.Request {
			r.p.Resolved(*r.asked, x.Decision)
			r.asked = nil
		}
		return
	case api.EventElicitationNeeded:
		var x api.ElicitationNeeded
		if e.Decode(&x) != nil {
			return
		}
		// Line mode cannot fill forms; say so and decline, so the server
		// does not wait.
		r.printf("[input] %s asks: %s (line mode cannot answer; declined)\n", SanitizeLine(x.Server), SanitizeLine(x.Message))
		ctx, cancel := context.WithTimeout(r.ctx, r.opts.Timeout())
		defer cancel()
		if err := r.opts.Client.ElicitationResponse(ctx, api.ElicitationResponseParams{Session: r.opts.Session.ID, Request: x.Request, Action: api.ElicitDecline}); err != nil {
			r.printf("[input] the answer was not delivered: %s\n", SanitizeLine(err.Error()))
		}
		return
	}
	r.p.Event(e)
	if e.Type == api.EventTurnComplete {
		var t api.TurnComplete
		if e.Decode(&t) == nil && r.busy && (t.Turn == r.turn || r.turn == "") {
			r.busy, r.turn = false, ""
			r.done++
		}
	}
}

// markBusy notes output of a turn, possibly one another frontend started.
func (r *lineRunner) markBusy(turn string) {
	if !r.busy {
		r.busy, r.turn = true, turn
	}
}

// answerLine answers the asked approval with a line of input.
func (r *lineRunner) answerLine(line string) {
	d, ok := DecisionForKey(line)
	if !ok {
		r.printf("answer with o, s, w, a or d\n")
		return
	}
	r.answer(d, "")
}

func (r *lineRunner) answer(decision, reason string) {
	req := r.asked
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.Timeout())
	defer cancel()
	err := r.opts.Client.ApprovalResponse(ctx, api.ApprovalResponseParams{Session: r.opts.Session.ID, Request: req.ID, Decision: decision, Reason: reason})
	switch {
	case err == nil:
		r.p.Resolved(*req, decision)
	case errors.Is(err, api.ErrConflict), errors.Is(err, api.ErrNotFound):
		r.printf("[approval] %s: already answered elsewhere, or no longer waiting\n", ApprovalTitle(*req))
	default:
		r.printf("[approval] the answer was not delivered: %s\n", SanitizeLine(err.Error()))
	}
	// Asked once: a failed delivery is not retried from a pipe; the daemon
	// defers the action at its deadline.
	r.asked = nil
}
