package frontend_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
)

// fakeClient is a daemon: each input starts a turn whose events onInput
// sends; it records every call.
type fakeClient struct {
	mu          sync.Mutex
	calls       []any // the params of every call, in order
	approvalErr error
	onInput     func(turn, text string)
	onApproval  func(p api.ApprovalResponseParams)
}

func (c *fakeClient) record(p any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, p)
}

func (c *fakeClient) Calls() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]any(nil), c.calls...)
}

type sendInput struct{ Session, Text string }

func (c *fakeClient) SendInput(_ context.Context, session, text string) (string, error) {
	c.record(sendInput{session, text})
	turn := fmt.Sprintf("t%d", len(c.Calls()))
	if c.onInput != nil {
		c.onInput(turn, text)
	}
	return turn, nil
}

func (c *fakeClient) CancelTurn(_ context.Context, p api.CancelTurnParams) (bool, error) {
	c.record(p)
	return true, nil
}

func (c *fakeClient) ApprovalResponse(_ context.Context, p api.ApprovalResponseParams) error {
	c.record(p)
	if c.onApproval != nil {
		c.onApproval(p)
	}
	return c.approvalErr
}

func (c *fakeClient) ElicitationResponse(_ context.Context, p api.ElicitationResponseParams) error {
	c.record(p)
	return nil
}

// scripted is a Frontend with the core methods only: its inputs come
// from a channel (closed: the end), its prompts from functions.
type scripted struct {
	inputs  chan string
	approve func(ctx context.Context, req api.ApprovalNeeded) (frontend.Answer, error)
	showErr func(o frontend.Output) error

	mu    sync.Mutex
	shown []frontend.Output
	asked []any // what the prompts were given
}

func (s *scripted) Input(ctx context.Context) (string, error) {
	select {
	case in, ok := <-s.inputs:
		if !ok {
			return "", io.EOF
		}
		return in, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (s *scripted) Show(_ context.Context, o frontend.Output) error {
	s.mu.Lock()
	s.shown = append(s.shown, o)
	s.mu.Unlock()
	if s.showErr != nil {
		return s.showErr(o)
	}
	return nil
}

func (s *scripted) ask(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, v)
}

func (s *scripted) Approve(ctx context.Context, req api.ApprovalNeeded) (frontend.Answer, error) {
	s.ask(req)
	if s.approve == nil {
		return frontend.Answer{}, errors.New("no approvals here")
	}
	return s.approve(ctx, req)
}

// capable is scripted with every optional capability.
type capable struct {
	*scripted
	form       func(ctx context.Context, f frontend.Form) (frontend.FormAnswer, error)
	url        func(ctx context.Context, u frontend.URLRequest) (bool, error)
	interrupts chan struct{}
}

func (c *capable) ElicitForm(ctx context.Context, f frontend.Form) (frontend.FormAnswer, error) {
	c.ask(f)
	return c.form(ctx, f)
}

func (c *capable) ElicitURL(ctx context.Context, u frontend.URLRequest) (bool, error) {
	c.ask(u)
	return c.url(ctx, u)
}

func (c *capable) Interrupts() <-chan struct{} { return c.interrupts }

func newScripted(inputs ...string) *scripted {
	s := &scripted{inputs: make(chan string, len(inputs))}
	for _, in := range inputs {
		s.inputs <- in
	}
	close(s.inputs)
	return s
}

func ev(t *testing.T, typ api.EventType, data any) api.Event {
	t.Helper()
	e, err := api.NewEvent("s1", typ, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// harness runs f against the fake client until Run returns.
type harness struct {
	t      *testing.T
	c      *fakeClient
	events chan api.Event
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, c: &fakeClient{}, events: make(chan api.Event, 256)}
}

func (h *harness) send(typ api.EventType, data any) { h.events <- ev(h.t, typ, data) }

func (h *harness) run(f frontend.Frontend) error {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return frontend.Run(ctx, frontend.Options{Client: h.c, Events: h.events, Session: api.SessionInfo{ID: "s1"}}, f)
}

func (s *scripted) kinds() []frontend.Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	var k []frontend.Kind
	for _, o := range s.shown {
		k = append(k, o.Kind)
	}
	return k
}

func (s *scripted) find(k frontend.Kind) []frontend.Output {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []frontend.Output
	for _, o := range s.shown {
		if o.Kind == k {
			out = append(out, o)
		}
	}
	return out
}

// noEscapes fails when a string anywhere in v holds a control character
// other than newline and tab.
func noEscapes(t *testing.T, what string, v any) {
	t.Helper()
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			if strings.ContainsFunc(v.String(), func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r == 0x9b || r == 0x202e }) {
				t.Errorf("%s: unsanitized text %q", what, v.String())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				walk(k)
				walk(v.MapIndex(k))
			}
		case reflect.Interface, reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		}
	}
	walk(reflect.ValueOf(v))
}

const evil = "\x1b]52;c;aGk=\x07\x1b[2J\u202e"

// TestRunInputAndOutput: an input sends a turn; the turn's text, tool
// calls, notices and end reach the frontend in order, sanitized; a blank
// input is not sent; the end of the input ends Run once idle.
func TestRunInputAndOutput(t *testing.T) {
	h := newHarness(t)
	h.c.onInput = func(turn, text string) {
		h.send(api.EventTextDelta, api.TextDelta{Turn: turn, Text: "Hel" + evil + "lo\n"})
		h.send(api.EventToolCallStart, api.ToolCallStart{Turn: turn, Call: "c1", Tool: "bash" + evil, Resource: "exec://ls " + evil, Arguments: json.RawMessage(`{"command":"ls \u001b[2J"}`)})
		h.send(api.EventToolCallResult, api.ToolCallResult{Turn: turn, Call: "c1", Tool: "bash", Status: "ok", Output: "a\n" + evil + "b\n"})
		h.send(api.EventMCPProgress, api.MCPProgress{Server: "ev", Tool: "long", Progress: 1, Total: 2, Message: "half" + evil})
		h.send(api.EventError, api.ErrorEvent{Turn: turn, Message: "bad" + evil})
		h.send(api.EventReasoningDelta, api.TextDelta{Turn: turn, Text: "hmm"})
		h.send(api.EventTextDelta, api.TextDelta{Turn: turn, Text: ""})
		h.send(api.EventTurnComplete, api.TurnComplete{Turn: turn, StopReason: "end_turn"})
	}
	// An event of another session is not this frontend's.
	other, _ := api.NewEvent("s2", api.EventTextDelta, api.TextDelta{Text: "not mine"})
	h.events <- other
	f := newScripted("  ", "hello")
	if err := h.run(f); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{sendInput{"s1", "hello"}}, h.c.Calls()); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	want := []frontend.Kind{frontend.KindTurnStart, frontend.KindText, frontend.KindToolStart, frontend.KindToolResult, frontend.KindNotice, frontend.KindError, frontend.KindTurnEnd}
	if diff := cmp.Diff(want, f.kinds()); diff != "" {
		t.Fatalf("output kinds (-want +got):\n%s", diff)
	}
	noEscapes(t, "output", f.shown)
	if got := f.find(frontend.KindText)[0].Text; got != "Hello\n" {
		t.Errorf("text = %q", got)
	}
	if tc := f.find(frontend.KindToolStart)[0].Tool; tc.Tool != "bash" || tc.Resource != "exec://ls " || tc.Args != `command="ls \x1b[2J"` {
		t.Errorf("tool start = %+v", tc)
	}
	if tc := f.find(frontend.KindToolResult)[0].Tool; tc.Status != "ok" || tc.Lines != 2 || tc.Output != "a\nb\n" {
		t.Errorf("tool result = %+v", tc)
	}
	if n := f.find(frontend.KindNotice)[0].Text; n != "[progress] long: 1/2 half" {
		t.Errorf("notice = %q", n)
	}
	if o := f.find(frontend.KindTurnEnd)[0]; o.Turn != "t1" || o.Text != "end_turn" {
		t.Errorf("turn end = %+v", o)
	}
}

// approvalTurn makes each input ask approval r1, with untrusted text in
// the request.
func (h *harness) approvalTurn() {
	h.c.onInput = func(turn, text string) {
		h.send(api.EventToolCallStart, api.ToolCallStart{Turn: turn, Call: "c1", Tool: "bash"})
		h.send(api.EventApprovalNeeded, api.ApprovalNeeded{Request: api.ApprovalRequest{
			ID: "r1", Session: "s1", Kind: "exec", Resource: "exec://rm -rf build/" + evil, Risk: "high", Reason: "deletes" + evil, Summary: "run rm",
		}})
	}
}

// endTurn ends turn t1.
func (h *harness) endTurn() {
	h.send(api.EventTurnComplete, api.TurnComplete{Turn: "t1", StopReason: "end_turn"})
}

// TestRunApprovalAnswered: the frontend is asked (risk, exact resource,
// sanitized) and its answer is sent, then shown.
func TestRunApprovalAnswered(t *testing.T) {
	h := newHarness(t)
	h.approvalTurn()
	h.c.onApproval = func(api.ApprovalResponseParams) { h.endTurn() }
	f := newScripted("go")
	f.approve = func(_ context.Context, req api.ApprovalNeeded) (frontend.Answer, error) {
		return frontend.Answer{Decision: api.DecisionAllowSession, Reason: "fine"}, nil
	}
	if err := h.run(f); err != nil {
		t.Fatal(err)
	}
	want := []any{sendInput{"s1", "go"}, api.ApprovalResponseParams{Session: "s1", Request: "r1", Decision: api.DecisionAllowSession, Reason: "fine"}}
	if diff := cmp.Diff(want, h.c.Calls()); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	req := f.asked[0].(api.ApprovalNeeded).Request
	if req.Resource != "exec://rm -rf build/" || req.Risk != "high" {
		t.Errorf("asked %+v", req)
	}
	noEscapes(t, "approval request", f.asked)
	got := f.find(frontend.KindApproval)
	if len(got) != 1 || got[0].Decision != api.DecisionAllowSession || got[0].Elsewhere {
		t.Errorf("approval output = %+v", got)
	}
}

// TestRunApprovalResolvedElsewhere: another frontend answers while this
// one asks: the prompt's context is cancelled, nothing is sent, and the
// frontend is told who answered what.
func TestRunApprovalResolvedElsewhere(t *testing.T) {
	h := newHarness(t)
	h.approvalTurn()
	f := newScripted("go")
	f.approve = func(ctx context.Context, _ api.ApprovalNeeded) (frontend.Answer, error) {
		h.send(api.EventApprovalResolved, api.ApprovalResolved{Request: "r1", Decision: api.DecisionAllowOnce,
			Answer: &api.ApprovalAnswer{Decision: api.DecisionAllowOnce, Frontend: "telegram"}})
		<-ctx.Done() // until Run cancels the prompt
		h.endTurn()
		return frontend.Answer{Decision: api.DecisionAllowAlways}, ctx.Err()
	}
	if err := h.run(f); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{sendInput{"s1", "go"}}, h.c.Calls()); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	got := f.find(frontend.KindApproval)
	if len(got) != 1 || !got[0].Elsewhere || got[0].Decision != api.DecisionAllowOnce || got[0].By != "telegram" {
		t.Errorf("approval output = %+v", got)
	}
	if e := f.find(frontend.KindError); len(e) != 0 {
		t.Errorf("errors shown: %+v", e)
	}
}

// TestRunApprovalAnsweredElsewhereFirst: the answer given elsewhere is
// already in the event stream when the frontend answers: it is not sent.
func TestRunApprovalAnsweredElsewhereFirst(t *testing.T) {
	h := newHarness(t)
	h.approvalTurn()
	f := newScripted("go")
	f.approve = func(ctx context.Context, _ api.ApprovalNeeded) (frontend.Answer, error) {
		h.send(api.EventApprovalResolved, api.ApprovalResolved{Request: "r1", Decision: api.DecisionDeny})
		h.endTurn()
		return frontend.Answer{Decision: api.DecisionAllowOnce}, nil
	}
	if err := h.run(f); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{sendInput{"s1", "go"}}, h.c.Calls()); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
}

// TestRunApprovalConflict: the answer loses the race: told, not an error.
func TestRunApprovalConflict(t *testing.T) {
	h := newHarness(t)
	h.approvalTurn()
	h.c.approvalErr = fmt.Errorf("approvalResponse: %w", api.ErrConflict)
	h.c.onApproval = func(api.ApprovalResponseParams) { h.endTurn() }
	f := newScripted("go")
	f.approve = func(context.Context, api.ApprovalNeeded) (frontend.Answer, error) {
		return frontend.Answer{Decision: api.DecisionDeny}, nil
	}
	if err := h.run(f); err != nil {
		t.Fatal(err)
	}
	got := f.find(frontend.KindApproval)
	if len(got) != 1 || !got[0].Elsewhere || got[0].Decision != "" {
		t.Errorf("approval output = %+v", got)
	}
	if e := f.find(frontend.KindError); len(e) != 0 {
		t.Errorf("errors shown: %+v", e)
	}
}

// TestRunApprovalFrontendErrorSendsNothing: a failing prompt, or an answer
// that is not one of the five, sends no answer (the daemon defers) and is
// shown as an error; Run goes on.
func TestRunApprovalFrontendErrorSendsNothing(t *testing.T) {
	for name, answer := range map[string]func() (frontend.Answer, error){
		"error": func() (frontend.Answer, error) {
			return frontend.Answer{Decision: api.DecisionAllowOnce}, errors.New("chat unreachable")
		},
		"invalid": func() (frontend.Answer, error) { return frontend.Answer{Decision: "yes"}, nil },
		"empty":   func() (frontend.Answer, error) { return frontend.Answer{}, nil },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.approvalTurn()
			f := newScripted("go")
			f.approve = func(context.Context, api.ApprovalNeeded) (frontend.Answer, error) {
				h.endTurn()
				return answer()
			}
			if err := h.run(f); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]any{sendInput{"s1", "go"}}, h.c.Calls()); diff != "" {
				t.Fatalf("calls (-want +got):\n%s", diff)
			}
			e := f.find(frontend.KindError)
			if len(e) != 1 || !strings.Contains(e[0].Text, "no answer was sent") {
				t.Errorf("errors shown: %+v", e)
			}
		})
	}
}

// TestRunOneApprovalAtATime: a second request waits for the first prompt
// to close, and is dropped unasked if it is resolved meanwhile.
func TestRunOneApprovalAtATime(t *testing.T) {
	h := newHarness(t)
	h.c.onInput = func(turn, _ string) {
		for _, id := range []string{"r1", "r2", "r3"} {
			h.send(api.EventApprovalNeeded, api.ApprovalNeeded{Request: api.ApprovalRequest{ID: id, Kind: "exec", Resource: "exec://" + id}})
		}
		h.send(api.EventApprovalResolved, api.ApprovalResolved{Request: "r2", Decision: "deferred"})
	}
	f := newScripted("go")
	var mu sync.Mutex
	open := 0
	f.approve = func(_ context.Context, req api.ApprovalNeeded) (frontend.Answer, error) {
		mu.Lock()
		open++
		n := open
		mu.Unlock()
		defer func() { mu.Lock(); open--; mu.Unlock() }()
		if n > 1 {
			t.Errorf("%d prompts open at once", n)
		}
		if req.Request.ID == "r3" {
			h.endTurn()
		}
		time.Sleep(10 * time.Millisecond)
		return frontend.Answer{Decision: api.DecisionDeny}, nil
	}
	if err := h.run(f); err != nil {
		t.Fatal(err)
	}
	var answered []string
	for _, c := range h.c.Calls() {
		if p, ok := c.(api.ApprovalResponseParams); ok {
			answered = append(answered, p.Request)
		}
	}
	if diff := cmp.Diff([]string{"r1", "r3"}, answered); diff != "" {
		t.Errorf("answered (-want +got):\n%s", diff)
	}
	if n := f.find(frontend.KindNotice); len(n) != 2 || !strings.Contains(n[0].Text, "another request waits") {
		t.Errorf("notices = %+v", n)
	}
}

func elicitTurn(h *harness, x api.ElicitationNeeded) {
	h.c.onInput = func(turn, _ string) {
		h.send(api.EventElicitationNeeded, x)
	}
}

func (h *harness) elicits() []api.ElicitationResponseParams {
	var out []api.ElicitationResponseParams
	for _, c := range h.c.Calls() {
		if p, ok := c.(api.ElicitationResponseParams); ok {
			out = append(out, p)
		}
	}
	return out
}

const schema = `{"type":"object","properties":{
	"name":{"type":"string","title":"Your name` + "\\u001b[2J" + `"},
	"count":{"type":"integer","default":3},
	"color":{"type":"string","enum":["red","green"],"default":"green"},
	"agree":{"type":"boolean","default":true},
	"note":{"type":"string"}},
	"required":["name","count"]}`

// TestRunFormElicitation: the form reaches the frontend parsed and
// sanitized; the accepted values are sent with the schema's defaults for
// the omitted fields; decline is sent as is; values that do not fit the
// schema, or a failing prompt, are answered cancel.
func TestRunFormElicitation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  frontend.FormAnswer
		err     error
		action  string
		content string
	}{
		{"accept", frontend.FormAnswer{Action: api.ElicitAccept, Values: map[string]any{"name": "Ada", "note": "  "}}, nil,
			api.ElicitAccept, `{"agree":true,"color":"green","count":3,"name":"Ada"}`},
		{"typed", frontend.FormAnswer{Action: api.ElicitAccept, Values: map[string]any{"name": "Ada", "count": "7", "agree": "false", "color": "red"}}, nil,
			api.ElicitAccept, `{"agree":false,"color":"red","count":7,"name":"Ada"}`},
		{"decline", frontend.FormAnswer{Action: api.ElicitDecline}, nil, api.ElicitDecline, ""},
		{"missing required", frontend.FormAnswer{Action: api.ElicitAccept, Values: map[string]any{"count": 2}}, nil, api.ElicitCancel, ""},
		{"not a choice", frontend.FormAnswer{Action: api.ElicitAccept, Values: map[string]any{"name": "A", "color": "blue"}}, nil, api.ElicitCancel, ""},
		{"not a field", frontend.FormAnswer{Action: api.ElicitAccept, Values: map[string]any{"name": "A", "password": "x"}}, nil, api.ElicitCancel, ""},
		{"not a whole number", frontend.FormAnswer{Action: api.ElicitAccept, Values: map[string]any{"name": "A", "count": 2.5}}, nil, api.ElicitCancel, ""},
		{"error", frontend.FormAnswer{Action: api.ElicitAccept}, errors.New("chat gone"), api.ElicitCancel, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			elicitTurn(h, api.ElicitationNeeded{Request: "e1", Server: "ev" + evil, Mode: "form", Message: "Who?" + evil, Schema: json.RawMessage(schema)})
			f := &capable{scripted: newScripted("go")}
			f.form = func(context.Context, frontend.Form) (frontend.FormAnswer, error) {
				h.endTurn()
				return tc.answer, tc.err
			}
			if err := h.run(f); err != nil {
				t.Fatal(err)
			}
			got := h.elicits()
			if len(got) != 1 || got[0].Action != tc.action || string(got[0].Content) != tc.content || got[0].Request != "e1" {
				t.Fatalf("elicitationResponse = %+v, want %s %s", got, tc.action, tc.content)
			}
			if tc.action == api.ElicitCancel && len(f.find(frontend.KindError)) != 1 {
				t.Errorf("the failure was not shown: %+v", f.shown)
			}
			form := f.asked[0].(frontend.Form)
			noEscapes(t, "form", form)
			if form.Server != "ev" || form.Fields[0].Title != "Your name" || len(form.Fields) != 5 || !form.Fields[0].Required || form.Fields[2].Choices[1].Value != "green" {
				t.Errorf("form = %+v", form)
			}
		})
	}
}

// TestRunElicitationNotSupported: a frontend without forms or URLs is not
// asked; the request is declined and the user told.
func TestRunElicitationNotSupported(t *testing.T) {
	for _, x := range []api.ElicitationNeeded{
		{Request: "e1", Server: "ev", Mode: "form", Message: "Who?", Schema: json.RawMessage(schema)},
		{Request: "e1", Server: "ev", Mode: "url", Message: "Log in", URL: "https://example.com/login"},
	} {
		h := newHarness(t)
		h.c.onInput = func(turn, _ string) {
			h.send(api.EventElicitationNeeded, x)
			h.endTurn()
		}
		f := newScripted("go")
		if err := h.run(f); err != nil {
			t.Fatal(err)
		}
		if got := h.elicits(); len(got) != 1 || got[0].Action != api.ElicitDecline {
			t.Errorf("%s: elicitationResponse = %+v", x.Mode, got)
		}
		if n := f.find(frontend.KindNotice); len(n) != 1 || !strings.Contains(n[0].Text, "declined") {
			t.Errorf("%s: notices = %+v", x.Mode, n)
		}
	}
}

// TestRunURLElicitation: the URL and its domain reach the frontend; the
// user's accept or decline is sent; a URL that is not http(s) is declined
// unasked; the server saying the interaction is complete closes the
// prompt, and nothing is sent for it.
func TestRunURLElicitation(t *testing.T) {
	x := api.ElicitationNeeded{Request: "e1", Server: "ev", Mode: "url", Message: "Log in" + evil, URL: "https://login.example.com/a?b=c", Domain: "evil.test", ElicitationID: "el-1"}
	for _, tc := range []struct {
		name   string
		x      api.ElicitationNeeded
		opened bool
		want   []string
		asked  bool
	}{
		{"accept", x, true, []string{api.ElicitAccept}, true},
		{"decline", x, false, []string{api.ElicitDecline}, true},
		{"bad scheme", func() api.ElicitationNeeded { y := x; y.URL = "javascript:alert(1)"; return y }(), true, []string{api.ElicitDecline}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.c.onInput = func(turn, _ string) {
				h.send(api.EventElicitationNeeded, tc.x)
				if !tc.asked {
					h.endTurn()
				}
			}
			f := &capable{scripted: newScripted("go")}
			f.url = func(context.Context, frontend.URLRequest) (bool, error) {
				h.endTurn()
				return tc.opened, nil
			}
			if err := h.run(f); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range h.elicits() {
				got = append(got, p.Action)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if !tc.asked {
				if len(f.asked) != 0 {
					t.Errorf("asked %+v", f.asked)
				}
				return
			}
			u := f.asked[0].(frontend.URLRequest)
			if u.Domain != "login.example.com" || u.URL != x.URL || u.Message != "Log in" {
				t.Errorf("asked %+v", u)
			}
		})
	}
	t.Run("completed", func(t *testing.T) {
		h := newHarness(t)
		h.c.onInput = func(turn, _ string) { h.send(api.EventElicitationNeeded, x) }
		f := &capable{scripted: newScripted("go")}
		f.url = func(ctx context.Context, _ frontend.URLRequest) (bool, error) {
			h.send(api.EventElicitationCompleted, api.ElicitationCompleted{Server: "ev", ElicitationID: "el-1"})
			<-ctx.Done()
			h.endTurn()
			return true, ctx.Err()
		}
		if err := h.run(f); err != nil {
			t.Fatal(err)
		}
		if got := h.elicits(); len(got) != 0 {
			t.Errorf("elicitationResponse = %+v", got)
		}
	})
}

// TestRunInterruptCancelsTurn: the user's interrupt (Ctrl+C) cancels the
// running turn.
func TestRunInterruptCancelsTurn(t *testing.T) {
	h := newHarness(t)
	f := &capable{scripted: newScripted("go"), interrupts: make(chan struct{})}
	h.c.onInput = func(turn, _ string) {
		h.send(api.EventTextDelta, api.TextDelta{Turn: turn, Text: "thinking"})
		go func() { f.interrupts <- struct{}{} }()
	}
	done := make(chan error, 1)
	go func() { done <- h.run(f) }()
	deadline := time.After(5 * time.Second)
	for {
		if calls := h.c.Calls(); len(calls) == 2 {
			if diff := cmp.Diff(api.CancelTurnParams{Session: "s1", Turn: "t1"}, calls[1]); diff != "" {
				t.Fatalf("cancel (-want +got):\n%s", diff)
			}
			break
		}
		select {
		case <-deadline:
			t.Fatalf("no cancelTurn: %+v", h.c.Calls())
		case <-time.After(5 * time.Millisecond):
		}
	}
	h.send(api.EventTurnComplete, api.TurnComplete{Turn: "t1", StopReason: "cancelled"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if o := f.find(frontend.KindTurnEnd); len(o) != 1 || o[0].Text != "cancelled" {
		t.Errorf("turn end = %+v", o)
	}
}

// TestRunContextEndsCancelsTurn: Run ending with its context cancels the
// running turn and waits for the open prompt to return.
func TestRunContextEndsCancelsTurn(t *testing.T) {
	h := newHarness(t)
	h.approvalTurn()
	ctx, cancel := context.WithCancel(context.Background())
	returned := false
	f := newScripted("go")
	f.approve = func(pctx context.Context, _ api.ApprovalNeeded) (frontend.Answer, error) {
		cancel()
		<-pctx.Done()
		time.Sleep(10 * time.Millisecond)
		returned = true // raced on if Run did not wait
		return frontend.Answer{Decision: api.DecisionAllowOnce}, nil
	}
	err := frontend.Run(ctx, frontend.Options{Client: h.c, Events: h.events, Session: api.SessionInfo{ID: "s1"}}, f)
	if !errors.Is(err, context.Canceled) || !returned {
		t.Fatalf("err = %v, prompt returned = %v", err, returned)
	}
	want := []any{sendInput{"s1", "go"}, api.CancelTurnParams{Session: "s1", Turn: "t1"}}
	if diff := cmp.Diff(want, h.c.Calls()); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
}

// TestRunConnectionLost and a failing Show: a Show error is shown as an
// error and Run goes on; the end of the event stream ends Run.
func TestRunConnectionLostAndShowError(t *testing.T) {
	h := newHarness(t)
	h.c.onInput = func(turn, _ string) {
		h.send(api.EventTextDelta, api.TextDelta{Turn: turn, Text: "x"})
		close(h.events)
	}
	f := newScripted("go")
	f.showErr = func(o frontend.Output) error {
		if o.Kind == frontend.KindText {
			return errors.New("message too long")
		}
		return nil
	}
	if err := h.run(f); !errors.Is(err, frontend.ErrConnectionLost) {
		t.Fatalf("err = %v", err)
	}
	if e := f.find(frontend.KindError); len(e) != 1 || !strings.Contains(e[0].Text, "message too long") {
		t.Errorf("errors shown = %+v", e)
	}
}

// TestRunInputError: an input that fails ends the input; Run returns the
// error once the turn has finished.
func TestRunInputError(t *testing.T) {
	h := newHarness(t)
	f := &failingInput{scripted: newScripted()}
	if err := h.run(f); err == nil || !strings.Contains(err.Error(), "socket closed") {
		t.Fatalf("err = %v", err)
	}
}

type failingInput struct{ *scripted }

func (failingInput) Input(context.Context) (string, error) { return "", errors.New("socket closed") }
