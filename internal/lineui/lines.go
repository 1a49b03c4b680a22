package lineui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
)

// maxLine bounds one input line in line mode.
const maxLine = 1 << 20

// ErrConnectionLost is returned by RunLines when the event stream ends
// before the input does.
var ErrConnectionLost = frontend.ErrConnectionLost

// noAnswer is the reason of the denial sent for an approval the input
// ended before answering.
const noAnswer = "no answer: the input ended"

// lineFrontend is line mode as a frontend.Frontend: lines of input are
// turns, slash commands or the answers to approvals, and the output goes
// through a Printer.
type lineFrontend struct {
	opts  Options
	lines <-chan string // closed at the end of the input

	mu      sync.Mutex // guards p, eof and readErr
	p       *Printer
	eof     bool  // no more input: lines closed, or /exit
	readErr error // why the input ended, when not at its end
	errp    *error
}

var (
	_ frontend.Frontend     = (*lineFrontend)(nil)
	_ frontend.FormEliciter = (*lineFrontend)(nil)
	_ frontend.URLEliciter  = (*lineFrontend)(nil)
)

// RunLines runs the chat in line mode: each line of in is one input (or a
// slash command), and the answer is printed to out as it streams. It returns
// nil at the end of the input once the last turn has finished, ctx's error if
// ctx ends (after asking the daemon to cancel the running turn), and
// ErrConnectionLost if the event stream ends first.
//
// Line mode is a frontend.Frontend driven by frontend.Run: lines are read
// as input only between turns; while a turn runs they wait, and an
// approval takes the next line as its answer (o, s, w, a or d). An
// approval the input ends before answering is denied, because a missing
// answer is a "no". An MCP server's form (and the form of a sampling
// request) is asked field by field, a line each; a URL to open is shown
// with its domain and a y/n question. A form or URL the input ends before
// answering is cancelled or declined: nothing is shared.
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
	f := &lineFrontend{opts: opts, lines: lines, p: NewPrinter(out, out), errp: &readErr}
	f.printf("astrid: session %s (workspace %s, mode %s)\n", frontend.SanitizeLine(opts.Session.ID), frontend.SanitizeLine(opts.Session.Workspace), frontend.SanitizeLine(opts.Session.Mode))
	return frontend.Run(ctx, frontend.Options{
		Client: opts.Client, Events: opts.Events, Session: opts.Session, CallTimeout: opts.Timeout(), Turns: opts.Turns,
	}, f)
}

func (f *lineFrontend) printf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.p.Notef(format, args...)
}

// next returns the next line; ok is false at the end of the input.
func (f *lineFrontend) next(ctx context.Context) (line string, ok bool, err error) {
	f.mu.Lock()
	eof := f.eof
	f.mu.Unlock()
	if eof {
		return "", false, nil
	}
	select {
	case <-ctx.Done():
		return "", false, ctx.Err()
	case line, ok := <-f.lines:
		if !ok {
			f.mu.Lock()
			// The reader wrote *errp before closing lines.
			f.eof, f.readErr = true, *f.errp
			f.mu.Unlock()
		}
		return line, ok, nil
	}
}

// Input returns the next line that is neither blank nor a slash command;
// it runs the commands it reads.
func (f *lineFrontend) Input(ctx context.Context) (string, error) {
	for {
		line, ok, err := f.next(ctx)
		if err != nil {
			return "", err
		}
		if !ok {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.readErr != nil {
				return "", fmt.Errorf("reading the input: %w", f.readErr)
			}
			return "", io.EOF
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, arg, isCmd := ParseCommand(line)
		if !isCmd {
			return line, nil
		}
		if f.command(ctx, name, arg) {
			return "", io.EOF
		}
	}
}

// command runs a slash command; it reports whether the user is done.
func (f *lineFrontend) command(ctx context.Context, name, arg string) (exit bool) {
	switch name {
	case "help":
		f.printf("%s\n", HelpText(nil))
		return false
	case "clear":
		return false
	case "exit", "quit":
		f.mu.Lock()
		f.eof = true
		f.mu.Unlock()
		return true
	}
	c, ok := LookupCommand(name)
	if !ok || c.Run == nil {
		f.printf("unknown command /%s; /help lists them\n", frontend.SanitizeLine(name))
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, f.opts.Timeout())
	defer cancel()
	out, err := c.Run(cctx, f.opts.Client, f.opts.Session, arg)
	if err != nil {
		f.printf("%s\n", CommandError(name, err))
		return false
	}
	f.printf("%s\n", out)
	return false
}

// Show prints the output.
func (f *lineFrontend) Show(_ context.Context, o frontend.Output) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o.Kind == frontend.KindApproval && !o.Elsewhere && o.Reason == noAnswer {
		f.p.Notef("%s; denying\n", noAnswer)
	}
	f.p.Show(o)
	return nil
}

// Approve prints the request and reads its answer from the next lines; at
// the end of the input it denies.
func (f *lineFrontend) Approve(ctx context.Context, req api.ApprovalNeeded) (frontend.Answer, error) {
	f.mu.Lock()
	f.p.Approval(req.Request)
	f.p.Notef("answer: o = allow once, s = session, w = workspace, a = always, d = deny\n")
	f.mu.Unlock()
	for {
		line, ok, err := f.next(ctx)
		if err != nil {
			return frontend.Answer{}, err
		}
		if !ok {
			return frontend.Answer{Decision: api.DecisionDeny, Reason: noAnswer}, nil
		}
		if d, ok := DecisionForKey(line); ok {
			return frontend.Answer{Decision: d}, nil
		}
		f.printf("answer with o, s, w, a or d\n")
	}
}

// ask prints the question and reads lines until one is among answers (as
// typed, case aside); ok is false at the end of the input.
func (f *lineFrontend) ask(ctx context.Context, question string, answers ...string) (answer string, ok bool, err error) {
	f.printf("%s\n", question)
	for {
		line, ok, err := f.next(ctx)
		if err != nil || !ok {
			return "", ok, err
		}
		line = strings.ToLower(strings.TrimSpace(line))
		if slices.Contains(answers, line) {
			return line, true, nil
		}
		f.printf("answer with %s\n", strings.Join(answers, ", "))
	}
}

// ElicitForm asks whether to fill in the form, then asks for each field
// on a line of its own: a blank line keeps the default (or leaves an
// optional field out), a choice is its number or its value, several
// choices are separated by commas, and /cancel abandons the form. A value
// that does not fit is asked again, saying why.
func (f *lineFrontend) ElicitForm(ctx context.Context, form frontend.Form) (frontend.FormAnswer, error) {
	cancelled := frontend.FormAnswer{Action: api.ElicitCancel}
	if form.Sampling {
		f.printf("[sampling] %s asks to use the model; filling in the form approves it:\n%s\n", form.Server, form.Message)
	} else {
		f.printf("[input] %s asks:\n%s\n", form.Server, form.Message)
	}
	switch a, ok, err := f.ask(ctx, "fill it in? y = yes, d = decline, c = cancel", "y", "d", "c"); {
	case err != nil:
		return frontend.FormAnswer{}, err
	case !ok || a == "c":
		return cancelled, nil
	case a == "d":
		return frontend.FormAnswer{Action: api.ElicitDecline}, nil
	}
	values := map[string]any{}
	for _, fd := range form.Fields {
		f.printf("%s\n", fieldPrompt(fd))
		for {
			line, ok, err := f.next(ctx)
			if err != nil {
				return frontend.FormAnswer{}, err
			}
			line = strings.TrimSpace(line)
			if !ok || line == "/cancel" {
				return cancelled, nil
			}
			v := any(pickChoices(fd, line))
			if line == "" {
				v = fd.Default
			}
			if _, err := fd.Value(v); err != nil {
				f.printf("%s: %s\n", fd.Title, err)
				continue
			}
			if line != "" {
				values[fd.Name] = v
			}
			break
		}
	}
	return frontend.FormAnswer{Action: api.ElicitAccept, Values: values}, nil
}

// fieldPrompt is the line that asks for one field.
func fieldPrompt(fd frontend.Field) string {
	var b strings.Builder
	b.WriteString(fd.Title)
	if fd.Description != "" {
		b.WriteString(" (" + fd.Description + ")")
	}
	var hints []string
	switch {
	case len(fd.Choices) > 0:
		var cs []string
		for i, c := range fd.Choices {
			cs = append(cs, fmt.Sprintf("%d) %s", i+1, c.Label))
		}
		hint := "one of " + strings.Join(cs, "  ")
		if fd.Type == "array" {
			hint = "any of " + strings.Join(cs, "  ") + ", separated by commas"
		}
		hints = append(hints, hint)
	case fd.Type == "boolean":
		hints = append(hints, "y or n")
	case fd.Format != "":
		hints = append(hints, fd.Format)
	case fd.Type != "string":
		hints = append(hints, fd.Type)
	}
	switch d := fd.Default.(type) {
	case nil:
		if fd.Required {
			hints = append(hints, "required")
		}
	case []string:
		hints = append(hints, "blank for "+strings.Join(d, ", "))
	default:
		hints = append(hints, fmt.Sprintf("blank for %v", d))
	}
	if len(hints) > 0 {
		b.WriteString(" [" + strings.Join(hints, "; ") + "]")
	}
	b.WriteString(":")
	return b.String()
}

// pickChoices turns the numbers of a choice field's typed line into the
// choices' values (a choice whose value is what was typed is taken as it
// is); anything else stays as typed.
func pickChoices(fd frontend.Field, line string) string {
	if len(fd.Choices) == 0 {
		return line
	}
	pick := func(p string) string {
		p = strings.TrimSpace(p)
		if slices.ContainsFunc(fd.Choices, func(c frontend.Choice) bool { return c.Value == p }) {
			return p
		}
		if n, err := strconv.Atoi(p); err == nil && n >= 1 && n <= len(fd.Choices) {
			return fd.Choices[n-1].Value
		}
		return p
	}
	if fd.Type != "array" {
		return pick(line)
	}
	parts := strings.Split(line, ",")
	for i, p := range parts {
		parts[i] = pick(p)
	}
	return strings.Join(parts, ",")
}

// ElicitURL shows the URL whole and its domain apart, and asks whether
// the user opens it.
func (f *lineFrontend) ElicitURL(ctx context.Context, u frontend.URLRequest) (bool, error) {
	f.printf("[input] %s asks you to open a page on %s:\n%s\n%s\n", u.Server, u.Domain, u.Message, u.URL)
	a, ok, err := f.ask(ctx, "open it in your browser? y = I open it, n = no", "y", "n")
	return ok && a == "y", err
}
