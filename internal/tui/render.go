package tui

import (
	"fmt"
	"strconv"
	"strings"

	"charm.land/glamour/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/astrid-runtime/astrid/internal/frontend"
	"github.com/astrid-runtime/astrid/internal/lineui"
)

// blockKind is the kind of a transcript block.
type blockKind int

const (
	kindUser      blockKind = iota // what the user typed
	kindAnswer                     // the model's answer (markdown)
	kindReasoning                  // the model's reasoning
	kindTool                       // a tool call and its outcome
	kindNote                       // a remark of the UI
	kindError                      // an error or a warning
	kindOutput                     // a slash command's output
)

// block is one entry of the transcript. Its text is already sanitized.
type block struct {
	kind blockKind
	turn string
	text string // the answer, reasoning, note, or a tool's output

	// Tool calls.
	call, tool, resource, args string
	status                     string
	done, truncated            bool

	cache string // the rendering; empty when it must be redone
}

func (b *block) dirty() { b.cache = "" }

// styles are the UI's lipgloss styles.
type styles struct {
	dark                                            bool
	user, dim, reason, tool, ok, bad, warn, note    lipgloss.Style
	dialog, dialogTitle, label, key, status, notice lipgloss.Style
	glamourStyle                                    string
}

func newStyles(dark bool) styles {
	accent, faint, red, green, yellow := lipgloss.Color("12"), lipgloss.Color("8"), lipgloss.Color("9"), lipgloss.Color("10"), lipgloss.Color("11")
	s := styles{dark: dark, glamourStyle: "dark"}
	if !dark {
		s.glamourStyle = "light"
		accent, green, yellow = lipgloss.Color("4"), lipgloss.Color("2"), lipgloss.Color("3")
	}
	s.user = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.dim = lipgloss.NewStyle().Foreground(faint)
	s.reason = lipgloss.NewStyle().Foreground(faint).Italic(true)
	s.tool = lipgloss.NewStyle().Bold(true)
	s.ok = lipgloss.NewStyle().Foreground(green)
	s.bad = lipgloss.NewStyle().Foreground(red)
	s.warn = lipgloss.NewStyle().Foreground(yellow)
	s.note = lipgloss.NewStyle().Foreground(faint)
	s.dialog = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(yellow).Padding(0, 1)
	s.dialogTitle = lipgloss.NewStyle().Bold(true).Foreground(yellow)
	s.label = lipgloss.NewStyle().Foreground(faint)
	s.key = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.status = lipgloss.NewStyle().Foreground(faint)
	s.notice = lipgloss.NewStyle().Foreground(yellow)
	return s
}

// markdown renders an answer with glamour, syntax highlighting code blocks
// with chroma; plain wrapped text if glamour fails.
func (m *Model) markdown(text string) string {
	key := m.st.glamourStyle + "/" + strconv.Itoa(m.width)
	if m.md == nil || m.mdKey != key {
		r, err := glamour.NewTermRenderer(glamour.WithStandardStyle(m.st.glamourStyle), glamour.WithWordWrap(max(m.width-4, 10)))
		if err != nil {
			return lipgloss.NewStyle().Width(m.width).Render(text)
		}
		m.md, m.mdKey = r, key
	}
	if r := m.md; r != nil {
		if out, err := r.Render(text); err == nil {
			return strings.Trim(out, "\n")
		}
	}
	return lipgloss.NewStyle().Width(m.width).Render(text)
}

// renderTranscript renders every block, reusing the cached ones.
func (m *Model) renderTranscript() string {
	parts := make([]string, 0, len(m.blocks))
	for _, b := range m.blocks {
		if b.cache == "" {
			b.cache = m.renderBlock(b)
		}
		parts = append(parts, b.cache)
	}
	return strings.Join(parts, "\n")
}

func (m *Model) wrap(st lipgloss.Style, s string) string {
	return st.Width(m.width).Render(s)
}

func (m *Model) renderBlock(b *block) string {
	switch b.kind {
	case kindUser:
		return "\n" + m.wrap(m.st.user, "› "+b.text)
	case kindAnswer:
		return m.markdown(b.text)
	case kindReasoning:
		if !m.showReason {
			return m.st.reason.Render(fmt.Sprintf("▸ thinking · %d words (ctrl+t shows)", len(strings.Fields(b.text))))
		}
		return m.st.reason.Render("▾ thinking") + "\n" + m.wrap(m.st.reason.PaddingLeft(2), strings.TrimSpace(b.text))
	case kindTool:
		return m.renderTool(b)
	case kindNote:
		return m.wrap(m.st.note, "· "+b.text)
	case kindError:
		return m.wrap(m.st.bad, "! "+b.text)
	case kindOutput:
		return b.text
	}
	return b.text
}

// maxToolLines bounds the tool output shown unfolded.
const maxToolLines = 40

func (m *Model) renderTool(b *block) string {
	head := m.st.tool.Render("⚙ "+b.tool) + "  " + b.resource
	if b.args != "" {
		head += "  " + m.st.dim.Render(b.args)
	}
	lines := []string{m.wrap(lipgloss.NewStyle(), head)}
	if !b.done {
		return strings.Join(append(lines, m.st.dim.Render("  … running")), "\n")
	}
	st := m.st.ok
	if b.status != "ok" {
		st = m.st.bad
	}
	n := frontend.CountLines(b.text)
	sum := "  " + st.Render(lineui.StatusMark(b.status))
	switch {
	case n == 0:
		sum += m.st.dim.Render(" · no output")
	case !m.showTools:
		sum += m.st.dim.Render(fmt.Sprintf(" · %d lines (ctrl+o shows)", n))
	default:
		sum += m.st.dim.Render(fmt.Sprintf(" · %d lines", n))
	}
	if b.truncated {
		sum += m.st.dim.Render(" · truncated for the model")
	}
	lines = append(lines, sum)
	if m.showTools && n > 0 {
		out := strings.Split(strings.TrimRight(b.text, "\n"), "\n")
		more := 0
		if len(out) > maxToolLines {
			more, out = len(out)-maxToolLines, out[:maxToolLines]
		}
		for _, l := range out {
			lines = append(lines, m.st.dim.Render("  │ ")+ansiClip(strings.ReplaceAll(l, "\t", "    "), m.width-4))
		}
		if more > 0 {
			lines = append(lines, m.st.dim.Render(fmt.Sprintf("  │ … %d more lines", more)))
		}
	}
	return strings.Join(lines, "\n")
}

// ansiClip cuts a plain line to n cells.
func ansiClip(s string, n int) string {
	if lipgloss.Width(s) <= n {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && lipgloss.Width(string(r))+1 > n {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

// renderFooter renders what sits below the transcript: the approval dialog,
// the elicitation, or the spinner and input line; then the notice and the
// status line.
func (m *Model) renderFooter() string {
	var parts []string
	switch {
	case m.activeApproval() != nil:
		parts = append(parts, m.renderApproval(m.activeApproval()))
	case m.activeElicit() != nil:
		parts = append(parts, m.renderElicit(m.activeElicit()))
	default:
		if m.busy {
			parts = append(parts, m.spin.View()+" "+m.st.dim.Render("working… (ctrl+c cancels)"))
		}
		m.input.SetWidth(max(m.width-3, 10))
		parts = append(parts, m.input.View())
	}
	if m.notice != "" {
		parts = append(parts, m.wrap(m.st.notice, m.notice))
	}
	parts = append(parts, m.renderStatus())
	return strings.Join(parts, "\n")
}

// renderApproval renders the approval dialog: everything a human needs to
// decide, and the five keys.
func (m *Model) renderApproval(p *pendingApproval) string {
	w := m.dialogWidth() - 4 // border and padding
	r := p.ev.Request
	title := "Approval needed: " + frontend.ApprovalTitle(r)
	if n := len(m.approvals); n > 1 {
		title += fmt.Sprintf("  (1 of %d)", n)
	}
	lines := []string{m.st.dialogTitle.Width(w).Render(title)}
	for _, f := range lineui.ApprovalFields(r) {
		label := m.st.label.Render(fmt.Sprintf("%-16s", f[0]))
		lines = append(lines, lipgloss.NewStyle().Width(w).Render(label+f[1]))
	}
	if !p.ev.Deadline.IsZero() {
		lines = append(lines, m.st.label.Render(fmt.Sprintf("%-16s", "deferred after"))+p.ev.Deadline.Local().Format("15:04:05"))
	}
	var keys []string
	for _, a := range lineui.ApprovalKeys {
		keys = append(keys, m.st.key.Render("["+a.Key+"]")+" "+a.Label)
	}
	lines = append(lines, "", packLine(keys, "  ", w))
	if p.sending {
		lines = append(lines, m.st.dim.Render("sending the answer…"))
	}
	return m.st.dialog.Width(w + 4).Render(strings.Join(lines, "\n"))
}

// renderElicit renders an MCP server's request for input.
func (m *Model) renderElicit(e *pendingElicit) string {
	w := m.dialogWidth() - 4
	title := frontend.SanitizeLine(e.ev.Server) + " asks for input"
	if e.ev.Sampling {
		title = frontend.SanitizeLine(e.ev.Server) + " asks to use the model (sampling: accepting approves it)"
	}
	lines := []string{m.st.dialogTitle.Width(w).Render(title), lipgloss.NewStyle().Width(w).Render(frontend.Sanitize(e.ev.Message))}
	switch {
	case e.invalid != nil:
		lines = append(lines, m.st.bad.Width(w).Render("cannot show this request: "+e.invalid.Error()),
			"", m.st.key.Render("[d]")+" decline  "+m.st.key.Render("[esc]")+" cancel")
	case e.ev.Mode == "url":
		lines = append(lines,
			m.st.label.Render(fmt.Sprintf("%-8s", "domain"))+m.st.warn.Render(e.domain),
			m.st.label.Render(fmt.Sprintf("%-8s", "url"))+lipgloss.NewStyle().Width(w-8).Render(frontend.SanitizeLine(e.ev.URL)),
			"", m.st.key.Render("[y]")+" open it  "+m.st.key.Render("[n]")+" decline  "+m.st.key.Render("[esc]")+" cancel")
	case e.form != nil:
		lines = append(lines, "", e.form.View())
	}
	if e.sending {
		lines = append(lines, m.st.dim.Render("sending the answer…"))
	}
	return m.st.dialog.Width(w + 4).Render(strings.Join(lines, "\n"))
}

// renderStatus renders the status line: model, session, budget, context.
func (m *Model) renderStatus() string {
	var parts []string
	if m.model != "" {
		parts = append(parts, frontend.SanitizeLine(m.model))
	}
	parts = append(parts, "session "+frontend.SanitizeLine(m.opts.Session.ID))
	if m.opts.Session.Mode != "" {
		parts = append(parts, frontend.SanitizeLine(m.opts.Session.Mode))
	}
	if b := m.budget; b != nil {
		s := frontend.USD(b.SpentUSD) + " spent"
		if b.SessionLimitUSD > 0 {
			s += " · " + frontend.USD(max(b.SessionLimitUSD-b.SpentUSD-b.ReservedUSD, 0)) + " left"
		}
		parts = append(parts, s)
	} else if m.costUSD > 0 {
		parts = append(parts, frontend.USD(m.costUSD)+" spent")
	}
	if m.ctxTokens > 0 {
		s := "context " + kilo(m.ctxTokens)
		if m.ctxWindow > 0 {
			s += fmt.Sprintf("/%s (%d%%)", kilo(m.ctxWindow), m.ctxTokens*100/m.ctxWindow)
		}
		parts = append(parts, s)
	}
	if m.closed {
		parts = append(parts, "disconnected")
	}
	return m.st.status.Render(ansi.Truncate(strings.Join(parts, " · "), m.width, "…"))
}

// kilo writes a token count briefly: 950, 12.3k, 200k.
func kilo(n int64) string {
	switch {
	case n < 1000:
		return strconv.FormatInt(n, 10)
	case n < 100000:
		return strconv.FormatFloat(float64(n)/1000, 'f', 1, 64) + "k"
	}
	return strconv.FormatInt(n/1000, 10) + "k"
}

// packLine joins items with sep into lines at most w cells wide, never
// breaking an item (an item wider than w gets a line of its own).
func packLine(items []string, sep string, w int) string {
	var lines []string
	cur := ""
	for _, it := range items {
		switch {
		case cur == "":
			cur = it
		case lipgloss.Width(cur+sep+it) <= w:
			cur += sep + it
		default:
			lines = append(lines, cur)
			cur = it
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return strings.Join(lines, "\n")
}
