package lineui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/lineui"
	"github.com/astrid-runtime/astrid/internal/lineui/lineuitest"
)

// script is a fake daemon for line mode: each input starts a turn whose
// events are sent by the function for that input, given the turn id.
type script struct {
	t      *testing.T
	fc     *lineuitest.FakeClient
	events chan api.Event
}

func newScript(t *testing.T, turns map[string]func(turn string) []api.Event) *script {
	s := &script{t: t, fc: &lineuitest.FakeClient{}, events: make(chan api.Event, 256)}
	s.fc.OnInput = func(n int, text string) string {
		turn := "t" + string(rune('0'+n))
		for _, e := range turns[text](turn) {
			s.events <- e
		}
		return turn
	}
	return s
}

func (s *script) run(input string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := lineui.RunLines(ctx, lineui.Options{Client: s.fc, Events: s.events, Session: api.SessionInfo{ID: "s1", Workspace: "/w", Mode: "safe"}},
		strings.NewReader(input), &out)
	return out.String(), err
}

var (
	ev            = lineuitest.Event
	approvalEvent = lineuitest.ApprovalEvent
)

func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

func reply(t *testing.T, text string) func(string) []api.Event {
	return func(turn string) []api.Event {
		return []api.Event{
			ev(t, api.EventTextDelta, api.TextDelta{Turn: turn, Text: text[:len(text)/2]}),
			ev(t, api.EventTextDelta, api.TextDelta{Turn: turn, Text: text[len(text)/2:]}),
			ev(t, api.EventTurnComplete, api.TurnComplete{Turn: turn, StopReason: "end_turn"}),
		}
	}
}

// approvalTurn asks one approval; the rest of the turn follows the answer
// (the fake client's ApprovalResponse pushes it through answered).
func approvalTurn(t *testing.T, s *script) func(string) []api.Event {
	return func(turn string) []api.Event {
		return []api.Event{
			ev(t, api.EventToolCallStart, api.ToolCallStart{Turn: turn, Call: "c1", Tool: "bash", Resource: "exec://make test",
				Arguments: rawJSON(`{"command":"make test"}`)}),
			approvalEvent(t, "r1"),
		}
	}
}

// finishAfterAnswer makes the fake daemon end the turn once answered.
func (s *script) finishAfterAnswer(t *testing.T) {
	s.fc.OnApproval = func(p api.ApprovalResponseParams) {
		s.events <- ev(t, api.EventApprovalResolved, api.ApprovalResolved{Request: p.Request, Decision: p.Decision})
		status := "ok"
		if p.Decision == api.DecisionDeny {
			status = "denied"
		}
		s.events <- ev(t, api.EventToolCallResult, api.ToolCallResult{Turn: "t1", Call: "c1", Tool: "bash", Status: status, Output: "PASS\n"})
		s.events <- ev(t, api.EventTextDelta, api.TextDelta{Turn: "t1", Text: "finished"})
		s.events <- ev(t, api.EventTurnComplete, api.TurnComplete{Turn: "t1", StopReason: "end_turn"})
	}
}

func TestLinesStreamsAnswers(t *testing.T) {
	s := newScript(t, map[string]func(string) []api.Event{
		"hello":  reply(t, "Hello, human!"),
		"thanks": reply(t, "You're welcome."),
	})
	out, err := s.run("hello\n\nthanks\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "astrid: session s1 (workspace /w, mode safe)\nHello, human!\nYou're welcome.\n"
	if out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
	if got := s.fc.Inputs(); !cmp.Equal(got, []string{"hello", "thanks"}) {
		t.Fatalf("inputs = %q", got)
	}
}

func TestLinesApproval(t *testing.T) {
	for _, tc := range []struct{ answer, decision, status string }{
		{"o", api.DecisionAllowOnce, "✓ ok"},
		{"s", api.DecisionAllowSession, "✓ ok"},
		{"w", api.DecisionAllowWorkspace, "✓ ok"},
		{"a", api.DecisionAllowAlways, "✓ ok"},
		{"d", api.DecisionDeny, "⊘ denied"},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			s := newScript(t, nil)
			s.fc.OnInput = func(n int, text string) string {
				for _, e := range approvalTurn(t, s)("t1") {
					s.events <- e
				}
				return "t1"
			}
			s.finishAfterAnswer(t)
			// "maybe" is not an answer: asked again, then the real one.
			out, err := s.run("run the tests\nmaybe\n" + tc.answer + "\n")
			if err != nil {
				t.Fatal(err)
			}
			want := []api.ApprovalResponseParams{{Session: "s1", Request: "r1", Decision: tc.decision}}
			if diff := cmp.Diff(want, s.fc.Approvals()); diff != "" {
				t.Fatalf("approvalResponse (-want +got):\n%s", diff)
			}
			for _, sub := range []string{
				`[tool] bash exec://make test command="make test"`,
				"[approval] run rm -rf build/",
				"  resource        exec://rm -rf build/",
				"  risk            high",
				"  an allow covers exec://rm -rf build/*",
				"answer: o = allow once, s = session, w = workspace, a = always, d = deny",
				"answer with o, s, w, a or d",
				"[approval] run rm -rf build/: " + lineui.DecisionText(tc.decision),
				"[tool] bash: " + tc.status + " (1 lines of output)",
				"finished\n",
			} {
				if !strings.Contains(out, sub) {
					t.Errorf("output lacks %q:\n%s", sub, out)
				}
			}
		})
	}
}

// The input ends before the approval is answered: a missing answer is a no.
func TestLinesEOFDeniesPendingApproval(t *testing.T) {
	s := newScript(t, nil)
	s.fc.OnInput = func(n int, text string) string {
		for _, e := range approvalTurn(t, s)("t1") {
			s.events <- e
		}
		return "t1"
	}
	s.finishAfterAnswer(t)
	out, err := s.run("run the tests\n")
	if err != nil {
		t.Fatal(err)
	}
	got := s.fc.Approvals()
	if len(got) != 1 || got[0].Decision != api.DecisionDeny || got[0].Reason == "" {
		t.Fatalf("approvalResponse = %+v, want one deny with a reason", got)
	}
	if !strings.Contains(out, "no answer: the input ended; denying") || !strings.Contains(out, "finished") {
		t.Fatalf("output:\n%s", out)
	}
}

// Another frontend answers while line mode waits for a line.
func TestLinesApprovalResolvedElsewhere(t *testing.T) {
	s := newScript(t, nil)
	s.fc.OnInput = func(n int, text string) string {
		for _, e := range approvalTurn(t, s)("t1") {
			s.events <- e
		}
		s.events <- ev(t, api.EventApprovalResolved, api.ApprovalResolved{Request: "r1", Decision: api.DecisionAllowOnce,
			Answer: &api.ApprovalAnswer{Decision: api.DecisionAllowOnce, Frontend: "telegram"}})
		s.events <- ev(t, api.EventTurnComplete, api.TurnComplete{Turn: "t1", StopReason: "end_turn"})
		return "t1"
	}
	out, err := s.run("go\n")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.fc.Approvals()); n != 0 {
		t.Fatalf("answered an approval resolved elsewhere (%d calls)", n)
	}
	if !strings.Contains(out, "[approval] run rm -rf build/: allowed once") {
		t.Fatalf("output:\n%s", out)
	}
}

// The reply splits an OSC 52 sequence across two deltas: no part of it may
// reach the output as an escape sequence.
func TestLinesCommandsAndSanitizing(t *testing.T) {
	s := newScript(t, map[string]func(string) []api.Event{
		"x": reply(t, "a\x1b]52;c;aGk=\x07b\x1b[2Jc"),
	})
	s.fc.ServerErr = errors.New("boom")
	out, err := s.run("/servers\n/budget\n/nope\nx\n/exit\nnever sent\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"/servers failed: boom", "session spent", "unknown command /nope", "bc\n"} {
		if !strings.Contains(out, sub) {
			t.Errorf("output lacks %q:\n%s", sub, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("an escape sequence reached the output: %q", out)
	}
	if got := s.fc.Inputs(); !cmp.Equal(got, []string{"x"}) {
		t.Fatalf("inputs = %q", got)
	}
}

func TestLinesConnectionLost(t *testing.T) {
	s := newScript(t, nil)
	s.fc.OnInput = func(int, string) string {
		close(s.events)
		return "t1"
	}
	_, err := s.run("hi\n")
	if !errors.Is(err, lineui.ErrConnectionLost) {
		t.Fatalf("err = %v, want lineui.ErrConnectionLost", err)
	}
}

func TestLinesContextCancelCancelsTurn(t *testing.T) {
	s := newScript(t, nil)
	started := make(chan struct{})
	s.fc.OnInput = func(int, string) string {
		close(started)
		return "t1"
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	err := lineui.RunLines(ctx, lineui.Options{Client: s.fc, Events: s.events, Session: api.SessionInfo{ID: "s1"}}, strings.NewReader("hi\n"), &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(strings.Join(s.fc.Calls(), " "), "cancelTurn") {
		t.Fatalf("calls = %v: the running turn was not cancelled", s.fc.Calls())
	}
}

// elicitTurn is a turn in which server ev asks for input (form or URL);
// the turn ends once the answer is sent.
func elicitTurn(t *testing.T, s *script, need api.ElicitationNeeded) {
	s.fc.OnInput = func(n int, text string) string {
		s.events <- ev(t, api.EventElicitationNeeded, need)
		return "t1"
	}
	s.fc.OnElicit = func(api.ElicitationResponseParams) {
		s.events <- ev(t, api.EventTurnComplete, api.TurnComplete{Turn: "t1", StopReason: "end_turn"})
	}
}

const lineForm = `{"type":"object","properties":{
	"name":{"type":"string","title":"Name"},
	"color":{"type":"string","title":"Colour","oneOf":[{"const":"r","title":"Red"},{"const":"g","title":"Green"}]},
	"count":{"type":"integer","title":"Count","minimum":1,"maximum":9,"default":3},
	"tags":{"type":"array","title":"Tags","items":{"type":"string","enum":["a","b","c"]}},
	"ok":{"type":"boolean","title":"Agree"}},
	"required":["name"]}`

// TestLinesForm: line mode asks a form field by field: a required field
// left blank and a value out of range are asked again; choices go by
// number; a blank line keeps the default.
func TestLinesForm(t *testing.T) {
	s := newScript(t, nil)
	elicitTurn(t, s, api.ElicitationNeeded{Request: "e1", Server: "ev", Mode: "form", Message: "Tell me", Schema: rawJSON(lineForm)})
	out, err := s.run("go\nmaybe\ny\n\nAda\n2\n12\n\n1, 3\nyes\n")
	if err != nil {
		t.Fatal(err)
	}
	got := s.fc.Elicits()
	if len(got) != 1 || got[0].Action != api.ElicitAccept {
		t.Fatalf("answers %+v\n%s", got, out)
	}
	if want := `{"color":"g","count":3,"name":"Ada","ok":true,"tags":["a","c"]}`; string(got[0].Content) != want {
		t.Errorf("content %s, want %s", got[0].Content, want)
	}
	for _, w := range []string{"[input] ev asks:\nTell me\n", "fill it in? y = yes, d = decline, c = cancel", "answer with y, d, c",
		"Name [required]:", "Name: required", "Colour [one of 1) Red  2) Green]:", "Count [integer; blank for 3]:",
		"Count: a number from 1 to 9, please", "Tags [any of 1) a  2) b  3) c, separated by commas]:", "Agree [y or n]:"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestLinesFormEnds: declined, cancelled mid-way, or cut short by the end
// of the input: nothing of the form is sent.
func TestLinesFormEnds(t *testing.T) {
	for input, want := range map[string]string{
		"go\nd\n":               api.ElicitDecline,
		"go\nc\n":               api.ElicitCancel,
		"go\ny\nAda\n/cancel\n": api.ElicitCancel,
		"go\ny\nAda\n":          api.ElicitCancel,
	} {
		s := newScript(t, nil)
		elicitTurn(t, s, api.ElicitationNeeded{Request: "e1", Server: "ev", Mode: "form", Message: "Tell me", Schema: rawJSON(lineForm)})
		if _, err := s.run(input); err != nil {
			t.Fatal(err)
		}
		if got := s.fc.Elicits(); len(got) != 1 || got[0].Action != want || got[0].Content != nil {
			t.Errorf("%q: answers %+v, want %s", input, got, want)
		}
	}
}

func TestLinesURL(t *testing.T) {
	for input, want := range map[string]string{"go\ny\n": api.ElicitAccept, "go\nn\n": api.ElicitDecline, "go\n": api.ElicitDecline} {
		s := newScript(t, nil)
		elicitTurn(t, s, api.ElicitationNeeded{Request: "e1", Server: "gh", Mode: "url", Message: "Log in", URL: "https://github.com/login/device?x=1"})
		out, err := s.run(input)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.fc.Elicits(); len(got) != 1 || got[0].Action != want {
			t.Errorf("%q: answers %+v, want %s", input, got, want)
		}
		if !strings.Contains(out, "[input] gh asks you to open a page on github.com:\nLog in\nhttps://github.com/login/device?x=1\n") {
			t.Errorf("output:\n%s", out)
		}
	}
}

func TestLinesSamplingForm(t *testing.T) {
	s := newScript(t, nil)
	elicitTurn(t, s, api.ElicitationNeeded{Request: "e1", Server: "ev", Mode: "form", Sampling: true, Message: "MCP server ev asks the model",
		Schema: rawJSON(`{"type":"object","properties":{"prompt":{"type":"string","default":"hi"}}}`)})
	out, err := s.run("go\ny\n\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "[sampling] ev asks to use the model; filling in the form approves it:\nMCP server ev asks the model\n") {
		t.Errorf("output:\n%s", out)
	}
	if got := s.fc.Elicits(); len(got) != 1 || got[0].Action != api.ElicitAccept || string(got[0].Content) != `{"prompt":"hi"}` {
		t.Errorf("answers %+v", got)
	}
}
