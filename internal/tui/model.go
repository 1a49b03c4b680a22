package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/glamour/v2"
	"charm.land/huh/v2"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
	"github.com/astrid-runtime/astrid/internal/lineui"
)

const (
	// quitWindow is how soon a second Ctrl+C must follow the first to quit.
	quitWindow = 2 * time.Second
	// dialogGuard is how long a new approval dialog or form ignores keys.
	//
	// NOTE: a dialog can open while the user is typing; without the guard
	// the "s" of "so" would allow an action for the whole session.
	dialogGuard = 400 * time.Millisecond
	// maxBlocks bounds the transcript; older blocks are dropped.
	maxBlocks = 2000
	// maxBlockText bounds one block's text (a runaway stream).
	maxBlockText = 1 << 20
)

// Messages the model sends itself from its commands.
type (
	eventMsg        struct{ e api.Event }
	eventsClosedMsg struct{}
	sentMsg         struct {
		turn string
		err  error
	}
	cancelledMsg struct {
		ok  bool
		err error
	}
	approvalSentMsg struct {
		req, decision string
		err           error
	}
	elicitSentMsg struct {
		req, action string
		err         error
	}
	commandMsg struct {
		name, out string
		err       error
	}
	budgetMsg struct {
		b   api.Budget
		err error
	}
	formDoneMsg  struct{ req string }
	formAbortMsg struct{ req string }
)

// pendingApproval is an approval_needed waiting for an answer.
type pendingApproval struct {
	ev      api.ApprovalNeeded
	shown   time.Time // when its dialog opened
	sending bool
}

// pendingElicit is an elicitation_needed waiting for an answer.
type pendingElicit struct {
	ev      api.ElicitationNeeded
	fields  []*formField
	form    *huh.Form
	domain  string
	invalid error // the request cannot be shown faithfully; only decline
	shown   time.Time
	sending bool
}

// Model is the Bubble Tea model of the chat. Build it with New; Run runs it
// in a terminal. Its methods are called by one goroutine, the program's.
type Model struct {
	opts Options
	ctx  context.Context

	width, height int
	st            styles

	blocks  []*block
	vp      viewport.Model
	follow  bool // keep the viewport at the bottom
	content string
	footer  string

	input textinput.Model
	spin  spinner.Model

	busy      bool
	turn      string
	approvals []*pendingApproval
	elicits   []*pendingElicit

	model      string
	budget     *api.Budget
	costUSD    float64
	ctxTokens  int64
	ctxWindow  int64
	lastCtrlC  time.Time
	notice     string
	showTools  bool
	showReason bool
	closed     bool // the event stream ended
	quitting   bool

	md    *glamour.TermRenderer // for the width and style of mdKey
	mdKey string
}

// New returns the chat model for opts. ctx bounds its API calls and its
// wait for events.
func New(ctx context.Context, opts Options) *Model {
	in := textinput.New()
	in.Prompt = "› "
	in.Placeholder = "Ask anything; /help lists commands"
	in.CharLimit = 64 << 10
	in.Focus()
	m := &Model{
		opts:   opts,
		ctx:    ctx,
		width:  80,
		height: 24,
		st:     newStyles(true),
		vp:     viewport.New(viewport.WithWidth(80), viewport.WithHeight(20)),
		follow: true,
		input:  in,
		spin:   spinner.New(spinner.WithSpinner(spinner.MiniDot)),
		model:  opts.Session.Model,
	}
	m.note(fmt.Sprintf("session %s · workspace %s · mode %s", frontend.SanitizeLine(opts.Session.ID), frontend.SanitizeLine(opts.Session.Workspace), frontend.SanitizeLine(opts.Session.Mode)))
	m.relayout()
	return m
}

// Init implements tea.Model.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.waitEvent(), m.fetchBudget(), tea.RequestBackgroundColor)
}

// View implements tea.Model: the transcript above, the dialog or the input
// below, and the status line last, on the alternate screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.WindowTitle = "astrid"
	return v
}

// Render returns the screen as a string; View wraps it.
func (m *Model) Render() string {
	if m.quitting {
		return ""
	}
	return m.vp.View() + "\n" + m.footer
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.relayout()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 20), max(msg.Height, 8)
		m.invalidate()
		if e := m.activeElicit(); e != nil && e.form != nil {
			e.form = e.form.WithWidth(m.dialogWidth() - 4)
		}
		return nil
	case tea.BackgroundColorMsg:
		m.st = newStyles(msg.IsDark())
		m.invalidate()
		return nil
	case tea.KeyPressMsg:
		return m.key(msg)
	case tea.MouseWheelMsg:
		switch msg.Mouse().Button {
		case tea.MouseWheelUp:
			m.scroll(-3)
		case tea.MouseWheelDown:
			m.scroll(3)
		}
		return nil
	case eventMsg:
		return tea.Batch(m.event(msg.e), m.waitEvent())
	case eventsClosedMsg:
		m.closed = true
		m.busy = false
		m.errorNote("the connection to the daemon ended; quit and run astrid chat --session " + frontend.SanitizeLine(m.opts.Session.ID) + " to resume")
		return nil
	case sentMsg:
		if msg.err != nil {
			m.busy = false
			m.errorNote(frontend.SendError(msg.err))
			return nil
		}
		if m.turn == "" {
			m.turn = msg.turn
		}
		return nil
	case cancelledMsg:
		if msg.err != nil {
			m.errorNote("cancel failed: " + frontend.SanitizeLine(msg.err.Error()))
		} else if !msg.ok {
			m.busy = false
			m.notice = "no turn was running"
		}
		return nil
	case approvalSentMsg:
		return m.approvalSent(msg)
	case elicitSentMsg:
		return m.elicitSent(msg)
	case formDoneMsg, formAbortMsg:
		return m.formFinished(msg)
	case commandMsg:
		if msg.err != nil {
			m.errorNote(lineui.CommandError(msg.name, msg.err))
		} else {
			m.add(&block{kind: kindOutput, text: msg.out})
		}
		return nil
	case budgetMsg:
		if msg.err == nil {
			b := msg.b
			m.budget = &b
		}
		return nil
	case spinner.TickMsg:
		if !m.busy {
			return nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return cmd
	}
	// Anything else belongs to the open form, or to the input line.
	if e := m.activeElicit(); e != nil && e.form != nil {
		return m.updateForm(e, msg)
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return cmd
}

// key handles a key press.
func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "ctrl+c":
		return m.ctrlC()
	case "ctrl+y":
		return m.copyAnswer()
	case "ctrl+o":
		m.showTools = !m.showTools
		m.invalidate()
		return nil
	case "ctrl+t":
		m.showReason = !m.showReason
		m.invalidate()
		return nil
	case "pgup":
		m.scroll(-max(m.vp.Height()-1, 1))
		return nil
	case "pgdown":
		m.scroll(max(m.vp.Height()-1, 1))
		return nil
	}
	if a := m.activeApproval(); a != nil {
		return m.approvalKey(a, k)
	}
	if e := m.activeElicit(); e != nil {
		return m.elicitKey(e, k)
	}
	if k.String() == "enter" {
		return m.submit()
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return cmd
}

// ctrlC cancels the running turn; a second press within quitWindow quits.
func (m *Model) ctrlC() tea.Cmd {
	now := m.opts.Clock()
	if !m.lastCtrlC.IsZero() && now.Sub(m.lastCtrlC) < quitWindow {
		m.quitting = true
		return tea.Quit
	}
	m.lastCtrlC = now
	if m.busy {
		m.notice = "cancelling the turn… (Ctrl+C again to quit)"
		return m.call(func(ctx context.Context) tea.Msg {
			ok, err := m.opts.Client.CancelTurn(ctx, api.CancelTurnParams{Session: m.opts.Session.ID, Turn: m.turn})
			return cancelledMsg{ok: ok, err: err}
		})
	}
	m.input.Reset()
	m.notice = "press Ctrl+C again to quit"
	return nil
}

// copyAnswer puts the last answer on the clipboard with OSC 52.
func (m *Model) copyAnswer() tea.Cmd {
	ans := m.lastAnswer()
	if ans == "" {
		m.notice = "no answer to copy yet"
		return nil
	}
	m.notice = fmt.Sprintf("copied the last answer (%d characters) to the clipboard", len([]rune(ans)))
	return tea.SetClipboard(ans)
}

// lastAnswer is the text of the answer blocks of the last turn that has one.
func (m *Model) lastAnswer() string {
	turn, found := "", false
	var parts []string
	for i := len(m.blocks) - 1; i >= 0; i-- {
		b := m.blocks[i]
		if b.kind != kindAnswer {
			continue
		}
		if !found {
			turn, found = b.turn, true
		} else if b.turn != turn {
			break
		}
		parts = append(parts, b.text)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.TrimSpace(strings.Join(parts, "\n\n"))
}

// submit sends the input line, or runs it as a command.
func (m *Model) submit() tea.Cmd {
	line := strings.TrimSpace(m.input.Value())
	if line == "" {
		return nil
	}
	if name, arg, ok := lineui.ParseCommand(line); ok {
		m.input.Reset()
		return m.command(name, arg)
	}
	if m.closed {
		m.notice = "not connected to the daemon"
		return nil
	}
	if m.busy {
		m.notice = "a turn is running: wait for it, or Ctrl+C to cancel it"
		return nil
	}
	m.input.Reset()
	m.add(&block{kind: kindUser, text: line})
	m.busy, m.turn, m.notice = true, "", ""
	text := line
	return tea.Batch(m.spin.Tick, m.call(func(ctx context.Context) tea.Msg {
		turn, err := m.opts.Client.SendInput(ctx, m.opts.Session.ID, text)
		return sentMsg{turn: turn, err: err}
	}))
}

// command runs a slash command.
func (m *Model) command(name, arg string) tea.Cmd {
	m.add(&block{kind: kindUser, text: "/" + name + strings.TrimRight(" "+arg, " ")})
	switch name {
	case "help":
		m.add(&block{kind: kindOutput, text: lineui.HelpText(tuiKeys)})
		return nil
	case "clear":
		m.blocks = nil
		m.invalidate()
		return nil
	case "exit", "quit":
		m.quitting = true
		return tea.Quit
	}
	c, ok := lineui.LookupCommand(name)
	if !ok || c.Run == nil {
		m.errorNote(fmt.Sprintf("unknown command /%s; /help lists them", frontend.SanitizeLine(name)))
		return nil
	}
	return m.call(func(ctx context.Context) tea.Msg {
		out, err := c.Run(ctx, m.opts.Client, m.opts.Session, arg)
		return commandMsg{name: name, out: out, err: err}
	})
}

// tuiKeys are the keys /help lists.
var tuiKeys = [][2]string{
	{"enter", "send the line"},
	{"ctrl+c", "cancel the running turn; twice within 2 s: quit"},
	{"ctrl+y", "copy the last answer to the clipboard (OSC 52)"},
	{"ctrl+o", "show or hide tool output"},
	{"ctrl+t", "show or hide the model's reasoning"},
	{"pgup/pgdown", "scroll"},
	{"o s w a d", "in an approval dialog: allow once, session, workspace, always; deny"},
}

// call runs f as a command with a bounded context.
func (m *Model) call(f func(ctx context.Context) tea.Msg) tea.Cmd {
	parent, timeout := m.ctx, m.opts.Timeout()
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(parent, timeout)
		defer cancel()
		return f(ctx)
	}
}

// waitEvent waits for the next event.
func (m *Model) waitEvent() tea.Cmd {
	ch, ctx := m.opts.Events, m.ctx
	return func() tea.Msg {
		select {
		case e, ok := <-ch:
			if !ok {
				return eventsClosedMsg{}
			}
			return eventMsg{e}
		case <-ctx.Done():
			return nil
		}
	}
}

func (m *Model) fetchBudget() tea.Cmd {
	return m.call(func(ctx context.Context) tea.Msg {
		b, err := m.opts.Client.SessionBudget(ctx, m.opts.Session.ID)
		return budgetMsg{b: b, err: err}
	})
}

// event applies one daemon event.
func (m *Model) event(e api.Event) tea.Cmd {
	if e.Session != "" && e.Session != m.opts.Session.ID {
		return nil
	}
	switch e.Type {
	case api.EventTextDelta, api.EventReasoningDelta:
		var d api.TextDelta
		if e.Decode(&d) != nil {
			return nil
		}
		cmd := m.sawTurn(d.Turn)
		kind := kindAnswer
		if e.Type == api.EventReasoningDelta {
			kind = kindReasoning
		}
		m.appendText(kind, d.Turn, frontend.Sanitize(d.Text))
		return cmd
	case api.EventToolCallStart:
		var t api.ToolCallStart
		if e.Decode(&t) != nil {
			return nil
		}
		cmd := m.sawTurn(t.Turn)
		m.add(&block{kind: kindTool, turn: t.Turn, call: t.Call, tool: frontend.SanitizeLine(t.Tool),
			resource: frontend.SanitizeLine(t.Resource), args: frontend.ToolArgs(t.Arguments, 120)})
		return cmd
	case api.EventToolCallResult:
		var r api.ToolCallResult
		if e.Decode(&r) != nil {
			return nil
		}
		b := m.findTool(r.Call)
		if b == nil {
			b = &block{kind: kindTool, turn: r.Turn, call: r.Call, tool: frontend.SanitizeLine(r.Tool)}
			m.add(b)
		}
		b.done, b.status, b.truncated = true, r.Status, r.Truncated
		b.text = frontend.Sanitize(frontend.Clip(r.Output, maxBlockText))
		b.dirty()
		return nil
	case api.EventApprovalNeeded:
		var a api.ApprovalNeeded
		if e.Decode(&a) != nil {
			return nil
		}
		for _, p := range m.approvals {
			if p.ev.Request.ID == a.Request.ID {
				return nil
			}
		}
		p := &pendingApproval{ev: a}
		m.approvals = append(m.approvals, p)
		if len(m.approvals) == 1 {
			p.shown = m.opts.Clock()
		}
		return nil
	case api.EventApprovalResolved:
		var r api.ApprovalResolved
		if e.Decode(&r) != nil {
			return nil
		}
		if p := m.removeApproval(r.Request); p != nil {
			by := ""
			if r.Answer != nil && r.Answer.Frontend != "" {
				by = " in " + frontend.SanitizeLine(r.Answer.Frontend)
			}
			m.note(fmt.Sprintf("%s: %s%s", frontend.ApprovalTitle(p.ev.Request), lineui.DecisionText(r.Decision), by))
		}
		return nil
	case api.EventElicitationNeeded:
		var x api.ElicitationNeeded
		if e.Decode(&x) != nil {
			return nil
		}
		for _, p := range m.elicits {
			if p.ev.Request == x.Request {
				return nil
			}
		}
		m.elicits = append(m.elicits, &pendingElicit{ev: x})
		if len(m.elicits) == 1 {
			return m.openElicit()
		}
		return nil
	case api.EventUsage:
		var u api.Usage
		if e.Decode(&u) != nil {
			return nil
		}
		m.costUSD += u.CostUSD
		if u.ContextTokens > 0 {
			m.ctxTokens, m.ctxWindow = u.ContextTokens, u.ContextWindow
		}
		return m.fetchBudget()
	case api.EventBudgetWarning:
		var w api.BudgetWarning
		if e.Decode(&w) != nil {
			return nil
		}
		m.errorNote(fmt.Sprintf("budget warning: the %s has spent %s of %s", frontend.SanitizeLine(w.Account), frontend.USD(w.UsedUSD), frontend.USD(w.LimitUSD)))
		return nil
	case api.EventTurnComplete:
		var t api.TurnComplete
		if e.Decode(&t) != nil {
			return nil
		}
		if t.Turn == m.turn || m.turn == "" {
			m.busy, m.turn = false, ""
		}
		if t.StopReason != "" && t.StopReason != "end_turn" {
			m.note("turn ended: " + frontend.SanitizeLine(t.StopReason))
		}
		if m.notice == "cancelling the turn… (Ctrl+C again to quit)" {
			m.notice = ""
		}
		return m.fetchBudget()
	case api.EventError:
		var x api.ErrorEvent
		if e.Decode(&x) != nil {
			return nil
		}
		m.errorNote("error: " + frontend.SanitizeLine(x.Message))
		return nil
	case api.EventSessionSaved:
		var s api.SessionSaved
		if e.Decode(&s) == nil {
			m.notice = fmt.Sprintf("session saved (%d turns)", s.Turns)
		}
		return nil
	case api.EventLagged:
		var l api.Lagged
		_ = e.Decode(&l)
		m.errorNote(fmt.Sprintf("missed %d events (the screen fell behind); /approvals and /budget show the current state", l.Dropped))
		return m.fetchBudget()
	case api.EventCapsuleLoaded, api.EventCapsuleFailed, api.EventCapsuleUnloaded:
		var c api.CapsuleInfo
		if e.Decode(&c) != nil {
			return nil
		}
		s := fmt.Sprintf("capsule %s: %s", frontend.SanitizeLine(c.ID), frontend.SanitizeLine(c.State))
		if c.Error != "" {
			s += ": " + frontend.SanitizeLine(c.Error)
		}
		m.note(s)
		return nil
	}
	if s, ok := frontend.Notice(e); ok {
		m.note(s)
	}
	return nil
}

// sawTurn marks the session busy when output of a turn arrives (possibly one
// another frontend started).
func (m *Model) sawTurn(turn string) tea.Cmd {
	if m.busy {
		if m.turn == "" {
			m.turn = turn
		}
		return nil
	}
	m.busy, m.turn = true, turn
	return m.spin.Tick
}

// appendText streams text into the last block of its kind and turn.
func (m *Model) appendText(kind blockKind, turn, text string) {
	if n := len(m.blocks); n > 0 {
		if b := m.blocks[n-1]; b.kind == kind && b.turn == turn {
			if len(b.text)+len(text) <= maxBlockText {
				b.text += text
				b.dirty()
			}
			return
		}
	}
	m.add(&block{kind: kind, turn: turn, text: text})
}

func (m *Model) findTool(call string) *block {
	for i := len(m.blocks) - 1; i >= 0; i-- {
		if b := m.blocks[i]; b.kind == kindTool && b.call == call {
			return b
		}
	}
	return nil
}

func (m *Model) add(b *block) {
	m.blocks = append(m.blocks, b)
	if len(m.blocks) > maxBlocks {
		m.blocks = append([]*block(nil), m.blocks[len(m.blocks)-maxBlocks:]...)
	}
}

func (m *Model) note(s string)      { m.add(&block{kind: kindNote, text: s}) }
func (m *Model) errorNote(s string) { m.add(&block{kind: kindError, text: s}) }

// ---- approvals ----

func (m *Model) activeApproval() *pendingApproval {
	if len(m.approvals) == 0 {
		return nil
	}
	return m.approvals[0]
}

func (m *Model) removeApproval(id string) *pendingApproval {
	for i, p := range m.approvals {
		if p.ev.Request.ID == id {
			m.approvals = append(m.approvals[:i:i], m.approvals[i+1:]...)
			if i == 0 && len(m.approvals) > 0 {
				m.approvals[0].shown = m.opts.Clock()
			}
			return p
		}
	}
	return nil
}

// approvalKey answers the open approval dialog.
func (m *Model) approvalKey(p *pendingApproval, k tea.KeyPressMsg) tea.Cmd {
	if p.sending || m.opts.Clock().Sub(p.shown) < dialogGuard {
		return nil
	}
	d, ok := lineui.DecisionForKey(k.String())
	if !ok {
		m.notice = "answer with o, s, w, a or d"
		return nil
	}
	p.sending = true
	m.notice = ""
	params := api.ApprovalResponseParams{Session: m.opts.Session.ID, Request: p.ev.Request.ID, Decision: d}
	return m.call(func(ctx context.Context) tea.Msg {
		err := m.opts.Client.ApprovalResponse(ctx, params)
		return approvalSentMsg{req: params.Request, decision: d, err: err}
	})
}

func (m *Model) approvalSent(msg approvalSentMsg) tea.Cmd {
	var p *pendingApproval
	for _, x := range m.approvals {
		if x.ev.Request.ID == msg.req {
			p = x
		}
	}
	if p == nil {
		return nil // approval_resolved came first and said what happened
	}
	switch {
	case msg.err == nil:
		m.removeApproval(msg.req)
		m.note(fmt.Sprintf("%s: %s", frontend.ApprovalTitle(p.ev.Request), lineui.DecisionText(msg.decision)))
	case errors.Is(msg.err, api.ErrConflict), errors.Is(msg.err, api.ErrNotFound):
		m.removeApproval(msg.req)
		m.note(fmt.Sprintf("%s: already answered elsewhere, or no longer waiting", frontend.ApprovalTitle(p.ev.Request)))
	default:
		p.sending = false
		m.errorNote("the answer was not delivered: " + frontend.SanitizeLine(msg.err.Error()) + "; answer again")
	}
	return nil
}

// ---- elicitations ----

func (m *Model) activeElicit() *pendingElicit {
	if len(m.elicits) == 0 {
		return nil
	}
	return m.elicits[0]
}

// openElicit prepares the first elicitation for display.
func (m *Model) openElicit() tea.Cmd {
	e := m.activeElicit()
	if e == nil {
		return nil
	}
	e.shown = m.opts.Clock()
	switch e.ev.Mode {
	case "url":
		e.domain, e.invalid = frontend.URLDomain(e.ev.URL)
		return nil
	case "", "form":
		e.fields, e.invalid = parseSchema(e.ev.Schema)
		if e.invalid != nil {
			return nil
		}
		req := e.ev.Request
		e.form = newForm(e.fields, m.dialogWidth()-4)
		e.form.SubmitCmd = func() tea.Msg { return formDoneMsg{req: req} }
		e.form.CancelCmd = func() tea.Msg { return formAbortMsg{req: req} }
		return e.form.Init()
	default:
		e.invalid = fmt.Errorf("unknown elicitation mode %q", frontend.SanitizeLine(e.ev.Mode))
		return nil
	}
}

func (m *Model) updateForm(e *pendingElicit, msg tea.Msg) tea.Cmd {
	f, cmd := e.form.Update(msg)
	if hf, ok := f.(*huh.Form); ok {
		e.form = hf
	}
	return cmd
}

// elicitKey handles keys while an elicitation is open.
func (m *Model) elicitKey(e *pendingElicit, k tea.KeyPressMsg) tea.Cmd {
	if e.sending || m.opts.Clock().Sub(e.shown) < dialogGuard {
		return nil
	}
	if e.form != nil {
		return m.updateForm(e, k)
	}
	switch k.String() {
	case "esc":
		return m.answerElicit(e, api.ElicitCancel, nil)
	case "n", "d":
		return m.answerElicit(e, api.ElicitDecline, nil)
	case "y":
		if e.invalid != nil || e.ev.Mode != "url" {
			return nil
		}
		accept := m.answerElicit(e, api.ElicitAccept, nil)
		if m.opts.OpenURL == nil {
			m.note("open this URL yourself: " + frontend.SanitizeLine(e.ev.URL))
			return accept
		}
		u, open := e.ev.URL, m.opts.OpenURL
		m.notice = "opening " + e.domain + "…"
		return tea.Batch(func() tea.Msg {
			if err := open(u); err != nil {
				return commandMsg{name: "open", err: err}
			}
			return nil
		}, accept)
	}
	return nil
}

func (m *Model) formFinished(msg tea.Msg) tea.Cmd {
	e := m.activeElicit()
	switch msg := msg.(type) {
	case formDoneMsg:
		if e == nil || e.ev.Request != msg.req {
			return nil
		}
		content, err := formContent(e.fields)
		if err != nil {
			m.errorNote("the form is not valid: " + err.Error())
			return m.answerElicit(e, api.ElicitCancel, nil)
		}
		return m.answerElicit(e, api.ElicitAccept, content)
	case formAbortMsg:
		if e == nil || e.ev.Request != msg.req {
			return nil
		}
		return m.answerElicit(e, api.ElicitCancel, nil)
	}
	return nil
}

func (m *Model) answerElicit(e *pendingElicit, action string, content []byte) tea.Cmd {
	e.sending = true
	p := api.ElicitationResponseParams{Session: m.opts.Session.ID, Request: e.ev.Request, Action: action, Content: content}
	return m.call(func(ctx context.Context) tea.Msg {
		err := m.opts.Client.ElicitationResponse(ctx, p)
		return elicitSentMsg{req: p.Request, action: action, err: err}
	})
}

func (m *Model) elicitSent(msg elicitSentMsg) tea.Cmd {
	idx := -1
	for i, e := range m.elicits {
		if e.ev.Request == msg.req {
			idx = i
		}
	}
	if idx < 0 {
		return nil
	}
	e := m.elicits[idx]
	who := frontend.SanitizeLine(e.ev.Server)
	switch {
	case msg.err == nil:
		m.note(fmt.Sprintf("%s's request: %s", who, map[string]string{
			api.ElicitAccept: "accepted", api.ElicitDecline: "declined", api.ElicitCancel: "cancelled"}[msg.action]))
	case errors.Is(msg.err, api.ErrConflict), errors.Is(msg.err, api.ErrNotFound):
		m.note(fmt.Sprintf("%s's request was answered elsewhere, or no longer waits", who))
	default:
		m.errorNote(fmt.Sprintf("the answer to %s was not delivered: %s", who, frontend.SanitizeLine(msg.err.Error())))
	}
	m.elicits = append(m.elicits[:idx:idx], m.elicits[idx+1:]...)
	if idx == 0 {
		return m.openElicit()
	}
	return nil
}

// ---- layout ----

func (m *Model) scroll(n int) {
	if n < 0 {
		m.vp.ScrollUp(-n)
	} else {
		m.vp.ScrollDown(n)
	}
	m.follow = m.vp.AtBottom()
}

// invalidate drops every block's rendering (the width or a toggle changed).
func (m *Model) invalidate() {
	for _, b := range m.blocks {
		b.dirty()
	}
}

func (m *Model) dialogWidth() int { return min(m.width, 100) }

// relayout renders the footer and the transcript into the viewport; it runs
// after every Update, so that View only composes strings.
func (m *Model) relayout() {
	m.footer = m.renderFooter()
	h := max(m.height-lineCount(m.footer)-1, 1)
	m.vp.SetWidth(m.width)
	m.vp.SetHeight(h)
	m.content = m.renderTranscript()
	m.vp.SetContent(m.content)
	if m.follow {
		m.vp.GotoBottom()
	}
}

func lineCount(s string) int { return strings.Count(s, "\n") + 1 }
