package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
)

// ErrConnectionLost is returned by Run when the event stream ends first.
var ErrConnectionLost = errors.New("the connection to the daemon ended")

// Run connects the session of o to f until the user is done: it sends
// what f.Input returns as turns, shows the session's events with f.Show,
// puts approval and elicitation requests to f and sends the answers.
//
// It returns nil once f.Input has returned io.EOF (or o.Turns turns have
// finished) and no turn runs; f.Input's other errors the same way;
// ErrConnectionLost when o.Events is closed; and ctx's error when ctx
// ends, after asking the daemon to cancel the running turn. It returns
// only after every call of f it made has returned.
func Run(ctx context.Context, o Options, f Frontend) error {
	if o.Client == nil || o.Events == nil || f == nil {
		return errors.New("frontend: Options.Client, Options.Events and the Frontend are required")
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
	rctx, stop := context.WithCancel(ctx)
	r := &runner{o: o, f: f, ctx: rctx, inputs: make(chan inputResult, 1), results: make(chan promptResult, 1), seen: map[string]bool{}}
	if i, ok := f.(Interrupter); ok {
		r.interrupts = i.Interrupts()
	}
	err := r.run()
	stop()
	r.wg.Wait()
	if err != nil && r.busy && r.turn != "" {
		// Leave nothing running behind us.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.CallTimeout)
		_, _ = o.Client.CancelTurn(cctx, api.CancelTurnParams{Session: o.Session.ID, Turn: r.turn})
		cancel()
	}
	return err
}

// runner is the state of Run; only Run's goroutine touches it.
type runner struct {
	o   Options
	f   Frontend
	ctx context.Context // cancelled when Run returns
	wg  sync.WaitGroup  // the goroutines calling f

	busy bool
	turn string // the running turn, when known
	done int    // turns finished
	lost bool   // the event stream ended

	inputs   chan inputResult
	reading  bool    // an Input call is outstanding
	eof      bool    // Input is done
	inputErr error   // why, when not io.EOF
	pending  *string // input to send once idle

	queue   []*prompt // requests waiting to be put to f, oldest first
	open    *prompt   // the request f is asked, until it is answered
	results chan promptResult
	seen    map[string]bool // approval requests already queued

	interrupts <-chan struct{}
}

type inputResult struct {
	text string
	err  error
}

// prompt is an approval or elicitation request for the user.
type prompt struct {
	approval *api.ApprovalNeeded    // as received (its id is sent back)
	elicit   *api.ElicitationNeeded // as received
	fields   []Field                // of a form
	domain   string                 // of a URL
	cancel   context.CancelFunc     // of the open prompt's call
	gone     bool                   // answered elsewhere, or complete
}

type promptResult struct {
	p      *prompt
	answer Answer
	form   FormAnswer
	opened bool
	err    error
}

func (r *runner) run() error {
	for {
		if r.lost {
			return ErrConnectionLost
		}
		if !r.busy {
			switch {
			case r.pending != nil:
				text := *r.pending
				r.pending = nil
				if err := r.send(text); err != nil {
					return err
				}
				continue
			case r.open != nil || len(r.queue) > 0:
				// A request still asked: its answer (or its resolution
				// elsewhere, at the latest at its deadline) comes first.
			case r.o.Turns > 0 && r.done >= r.o.Turns:
				return nil
			case r.eof:
				return r.inputErr
			case !r.reading:
				r.read()
			}
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case in := <-r.inputs:
			r.reading = false
			r.input(in)
		case e, ok := <-r.o.Events:
			if !ok {
				return ErrConnectionLost
			}
			r.event(e)
		case res := <-r.results:
			r.answered(res)
		case <-r.interrupts:
			r.interrupt()
		}
	}
}

// read calls f.Input on a goroutine of its own.
func (r *runner) read() {
	r.reading = true
	r.wg.Go(func() {
		text, err := r.f.Input(r.ctx)
		r.inputs <- inputResult{text, err} // buffered: one call at a time
	})
}

func (r *runner) input(in inputResult) {
	switch {
	case in.err == nil:
		if strings.TrimSpace(in.text) == "" {
			return
		}
		text := strings.TrimSpace(in.text)
		r.pending = &text // sent at the top of the loop, once idle
	case r.ctx.Err() != nil:
		// Run is ending; the loop returns ctx's error.
	case errors.Is(in.err, io.EOF):
		r.eof = true
	default:
		r.eof, r.inputErr = true, in.err
	}
}

// send starts a turn; only ctx ending is an error.
func (r *runner) send(text string) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.o.CallTimeout)
	defer cancel()
	turn, err := r.o.Client.SendInput(ctx, r.o.Session.ID, text)
	if err != nil {
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		r.show(Output{Kind: KindError, Text: SendError(err)})
		return nil
	}
	r.busy, r.turn = true, turn
	r.show(Output{Kind: KindTurnStart, Turn: SanitizeLine(turn)})
	return nil
}

func (r *runner) interrupt() {
	if !r.busy {
		r.show(Output{Kind: KindNotice, Text: "no turn is running"})
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.CallTimeout)
	defer cancel()
	if _, err := r.o.Client.CancelTurn(ctx, api.CancelTurnParams{Session: r.o.Session.ID, Turn: r.turn}); err != nil && r.ctx.Err() == nil {
		r.show(Output{Kind: KindError, Text: "cancelling the turn failed: " + SanitizeLine(err.Error())})
	}
}

// show calls f.Show; a failure is shown as an error, once.
func (r *runner) show(o Output) {
	err := r.f.Show(r.ctx, o)
	if err != nil && o.Kind != KindError && r.ctx.Err() == nil {
		_ = r.f.Show(r.ctx, Output{Kind: KindError, Text: "showing output failed: " + SanitizeLine(err.Error())})
	}
}

// event handles one event of the session.
func (r *runner) event(e api.Event) {
	if e.Session != "" && e.Session != r.o.Session.ID {
		return
	}
	switch e.Type {
	case api.EventApprovalNeeded:
		var a api.ApprovalNeeded
		if e.Decode(&a) != nil || a.Request.ID == "" || r.seen[a.Request.ID] {
			return
		}
		r.seen[a.Request.ID] = true
		r.enqueue(&prompt{approval: &a})
		return
	case api.EventApprovalResolved:
		var x api.ApprovalResolved
		if e.Decode(&x) == nil {
			r.resolved(x)
		}
		return
	case api.EventElicitationNeeded:
		var x api.ElicitationNeeded
		if e.Decode(&x) == nil {
			r.elicitation(&x)
		}
		return
	case api.EventElicitationCompleted:
		var c api.ElicitationCompleted
		if e.Decode(&c) == nil {
			r.drop(func(p *prompt) bool {
				return p.elicit != nil && p.elicit.Mode == "url" && p.elicit.ElicitationID != "" &&
					p.elicit.ElicitationID == c.ElicitationID && p.elicit.Server == c.Server
			})
		}
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
	}
	if o, ok := Convert(e); ok {
		r.show(o)
	}
	if e.Type == api.EventTurnComplete {
		var t api.TurnComplete
		if e.Decode(&t) == nil && r.busy && (t.Turn == r.turn || r.turn == "") {
			r.busy, r.turn = false, ""
			r.done++
		}
	}
}

// markBusy notes output of a turn, possibly one another frontend started.
func (r *runner) markBusy(turn string) {
	if !r.busy {
		r.busy, r.turn = true, turn
		r.show(Output{Kind: KindTurnStart, Turn: SanitizeLine(turn)})
	}
}

// elicitation queues a request this frontend can answer, and declines one
// it cannot.
func (r *runner) elicitation(x *api.ElicitationNeeded) {
	p := &prompt{elicit: x}
	var err error
	switch x.Mode {
	case "url":
		if _, ok := r.f.(URLEliciter); !ok {
			err = errors.New("this frontend cannot open URLs")
		} else {
			p.domain, err = URLDomain(x.URL)
		}
	case "", "form":
		if _, ok := r.f.(FormEliciter); !ok {
			err = errors.New("this frontend cannot fill forms")
		} else {
			p.fields, err = ParseForm(x.Schema)
		}
	default:
		err = fmt.Errorf("unknown elicitation mode %q", SanitizeLine(x.Mode))
	}
	if err != nil {
		r.show(Output{Kind: KindNotice, Text: fmt.Sprintf("[input] %s asks: %s (%s; declined)", SanitizeLine(x.Server), SanitizeLine(x.Message), err)})
		r.elicitResponse(x, api.ElicitDecline, nil)
		return
	}
	r.enqueue(p)
}

// enqueue queues a request and opens it if no other is open.
func (r *runner) enqueue(p *prompt) {
	r.queue = append(r.queue, p)
	if r.open != nil && p.approval != nil {
		r.show(Output{Kind: KindNotice, Text: "[approval] another request waits: " + ApprovalTitle(p.approval.Request)})
	}
	r.next()
}

// next puts the oldest waiting request to f, if none is open.
func (r *runner) next() {
	if r.open != nil || len(r.queue) == 0 {
		return
	}
	p := r.queue[0]
	r.queue = r.queue[1:]
	r.open = p
	deadline := time.Time{}
	if p.approval != nil {
		deadline = p.approval.Deadline
	}
	ctx, cancel := context.WithCancel(r.ctx)
	if !deadline.IsZero() {
		cancel()
		ctx, cancel = context.WithDeadline(r.ctx, deadline)
	}
	p.cancel = cancel
	r.wg.Go(func() {
		defer cancel()
		res := promptResult{p: p}
		switch {
		case p.approval != nil:
			req := api.ApprovalNeeded{Request: sanitizeApproval(p.approval.Request), Deadline: p.approval.Deadline}
			res.answer, res.err = r.f.Approve(ctx, req)
		case p.elicit.Mode == "url":
			u := URLRequest{Server: SanitizeLine(p.elicit.Server), Message: Sanitize(p.elicit.Message), URL: SanitizeLine(p.elicit.URL), Domain: p.domain}
			res.opened, res.err = r.f.(URLEliciter).ElicitURL(ctx, u)
		default:
			form := Form{Server: SanitizeLine(p.elicit.Server), Message: Sanitize(p.elicit.Message), Fields: p.fields, Sampling: p.elicit.Sampling}
			res.form, res.err = r.f.(FormEliciter).ElicitForm(ctx, form)
		}
		r.results <- res // buffered: one prompt at a time
	})
}

// resolved handles an approval answered (or deferred) by someone: the open
// prompt for it is cancelled, a waiting one dropped.
func (r *runner) resolved(x api.ApprovalResolved) {
	r.seen[x.Request] = true
	by := ""
	if x.Answer != nil {
		by = x.Answer.By
		if by == "" {
			by = x.Answer.Frontend
		}
	}
	for _, p := range r.drop(func(p *prompt) bool { return p.approval != nil && p.approval.Request.ID == x.Request }) {
		r.show(Output{Kind: KindApproval, Approval: sanitizeApproval(p.approval.Request), Decision: SanitizeLine(x.Decision), By: SanitizeLine(by), Elsewhere: true})
	}
}

// drop ends the requests that match: the open one is cancelled (its result
// is then ignored), waiting ones removed. It returns them.
func (r *runner) drop(match func(*prompt) bool) []*prompt {
	var out []*prompt
	if r.open != nil && !r.open.gone && match(r.open) {
		r.open.gone = true
		r.open.cancel()
		out = append(out, r.open)
	}
	kept := r.queue[:0]
	for _, p := range r.queue {
		if match(p) {
			out = append(out, p)
		} else {
			kept = append(kept, p)
		}
	}
	r.queue = kept
	return out
}

// settle handles the events that have already arrived, so that an answer
// given elsewhere in the meantime is not contested.
func (r *runner) settle() {
	for {
		select {
		case e, ok := <-r.o.Events:
			if !ok {
				r.lost = true
				return
			}
			r.event(e)
		default:
			return
		}
	}
}

// answered sends the answer of the open prompt, then opens the next.
func (r *runner) answered(res promptResult) {
	p := res.p
	defer func() {
		r.open = nil
		r.next()
	}()
	if res.err == nil && !p.gone {
		r.settle()
	}
	if p.gone || r.ctx.Err() != nil {
		return
	}
	if p.approval != nil {
		r.approvalAnswered(p, res)
		return
	}
	action, content := api.ElicitCancel, []byte(nil)
	switch {
	case res.err != nil:
		r.show(Output{Kind: KindError, Text: fmt.Sprintf("the request of %s failed: %s; answered cancel", SanitizeLine(p.elicit.Server), SanitizeLine(res.err.Error()))})
	case p.elicit.Mode == "url":
		action = api.ElicitDecline
		if res.opened {
			action = api.ElicitAccept
		}
	default:
		switch res.form.Action {
		case api.ElicitAccept:
			c, err := FormContent(p.fields, res.form.Values)
			if err != nil {
				r.show(Output{Kind: KindError, Text: "the form is not valid: " + err.Error() + "; answered cancel"})
				break
			}
			action, content = api.ElicitAccept, c
		case api.ElicitDecline, api.ElicitCancel:
			action = res.form.Action
		default:
			r.show(Output{Kind: KindError, Text: fmt.Sprintf("the form's answer %q is not accept, decline or cancel; answered cancel", SanitizeLine(res.form.Action))})
		}
	}
	r.elicitResponse(p.elicit, action, content)
}

func (r *runner) approvalAnswered(p *prompt, res promptResult) {
	req := sanitizeApproval(p.approval.Request)
	if res.err == nil && validDecision(res.answer.Decision) != nil {
		res.err = validDecision(res.answer.Decision)
	}
	if res.err != nil {
		r.show(Output{Kind: KindError, Text: fmt.Sprintf("[approval] %s: no answer was sent (%s); the daemon defers the action", ApprovalTitle(req), SanitizeLine(res.err.Error()))})
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.CallTimeout)
	defer cancel()
	err := r.o.Client.ApprovalResponse(ctx, api.ApprovalResponseParams{Session: r.o.Session.ID, Request: p.approval.Request.ID, Decision: res.answer.Decision, Reason: res.answer.Reason})
	switch {
	case err == nil:
		r.show(Output{Kind: KindApproval, Approval: req, Decision: res.answer.Decision, Reason: SanitizeLine(res.answer.Reason)})
	case errors.Is(err, api.ErrConflict), errors.Is(err, api.ErrNotFound):
		r.show(Output{Kind: KindApproval, Approval: req, Elsewhere: true})
	case r.ctx.Err() == nil:
		r.show(Output{Kind: KindError, Text: fmt.Sprintf("[approval] %s: the answer was not delivered: %s", ApprovalTitle(req), SanitizeLine(err.Error()))})
	}
}

func validDecision(d string) error {
	switch d {
	case api.DecisionAllowOnce, api.DecisionAllowSession, api.DecisionAllowWorkspace, api.DecisionAllowAlways, api.DecisionDeny:
		return nil
	}
	return fmt.Errorf("%q is not one of the five answers", SanitizeLine(d))
}

func (r *runner) elicitResponse(x *api.ElicitationNeeded, action string, content []byte) {
	ctx, cancel := context.WithTimeout(r.ctx, r.o.CallTimeout)
	defer cancel()
	err := r.o.Client.ElicitationResponse(ctx, api.ElicitationResponseParams{Session: r.o.Session.ID, Request: x.Request, Action: action, Content: content})
	switch {
	case err == nil:
	case errors.Is(err, api.ErrConflict), errors.Is(err, api.ErrNotFound):
		r.show(Output{Kind: KindNotice, Text: fmt.Sprintf("[input] %s: already answered elsewhere, or no longer waiting", SanitizeLine(x.Server))})
	case r.ctx.Err() == nil:
		r.show(Output{Kind: KindError, Text: fmt.Sprintf("[input] the answer to %s was not delivered: %s", SanitizeLine(x.Server), SanitizeLine(err.Error()))})
	}
}
