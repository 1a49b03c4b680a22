package tui

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/lineui"
	"github.com/astrid-runtime/astrid/internal/lineui/lineuitest"
)

// The fake daemon client and event helpers are shared with package lineui.
type fakeClient = lineuitest.FakeClient

var (
	ev            = lineuitest.Event
	approvalEvent = lineuitest.ApprovalEvent
)

func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

func TestStreamingText(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.typeText("hello")
	h.until("sendInput", func() bool { return len(h.fc.Inputs()) == 1 })
	if got := h.fc.Inputs(); !cmp.Equal(got, []string{"hello"}) {
		t.Fatalf("inputs = %q", got)
	}
	h.mustShow("› hello", "working…")
	h.event(ev(t, api.EventTextDelta, api.TextDelta{Turn: "t1", Text: "The answer is "}))
	h.mustShow("The answer is")
	h.event(ev(t, api.EventTextDelta, api.TextDelta{Turn: "t1", Text: "**forty-two**."}))
	h.mustShow("The answer is forty-two.")
	h.mustNotShow("**")
	h.event(ev(t, api.EventTurnComplete, api.TurnComplete{Turn: "t1", StopReason: "end_turn"}))
	h.mustNotShow("working…")
	if h.m.busy {
		t.Error("still busy after turn_complete")
	}
}

func TestReasoningFolds(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(ev(t, api.EventReasoningDelta, api.TextDelta{Turn: "t1", Text: "first I look at the files"}))
	h.mustShow("▸ thinking · 6 words (ctrl+t shows)")
	h.mustNotShow("first I look")
	h.key("ctrl+t")
	h.mustShow("▾ thinking", "first I look at the files")
}

func TestToolCallBlock(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(ev(t, api.EventToolCallStart, api.ToolCallStart{Turn: "t1", Call: "c1", Tool: "read_file",
		Resource: "file:///work/project/main.go", Arguments: rawJSON(`{"file_path":"main.go","limit":20}`)}))
	h.mustShow("⚙ read_file  file:///work/project/main.go", `file_path="main.go" limit=20`, "… running")
	h.event(ev(t, api.EventToolCallResult, api.ToolCallResult{Turn: "t1", Call: "c1", Tool: "read_file",
		Status: "ok", Output: "package main\n\nfunc main() {}\n"}))
	h.mustShow("✓ ok · 3 lines (ctrl+o shows)")
	h.mustNotShow("package main", "running")
	h.key("ctrl+o")
	h.mustShow("│ package main", "│ func main() {}")
	h.golden("tool_call")
}

func TestToolCallDenied(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(ev(t, api.EventToolCallStart, api.ToolCallStart{Turn: "t1", Call: "c1", Tool: "bash", Resource: "exec://sudo ls"}))
	h.event(ev(t, api.EventToolCallResult, api.ToolCallResult{Turn: "t1", Call: "c1", Tool: "bash", Status: "denied"}))
	h.mustShow("⊘ denied · no output")
}

func TestApprovalKeys(t *testing.T) {
	for _, tc := range []struct{ key, decision string }{
		{"o", api.DecisionAllowOnce},
		{"s", api.DecisionAllowSession},
		{"w", api.DecisionAllowWorkspace},
		{"a", api.DecisionAllowAlways},
		{"d", api.DecisionDeny},
	} {
		t.Run(tc.key, func(t *testing.T) {
			h := newHarness(t, &fakeClient{})
			h.event(approvalEvent(t, "r1"))
			h.mustShow("Approval needed: run rm -rf build/", "exec://rm -rf build/", "high")
			h.clock = h.clock.Add(time.Second)
			h.key(tc.key)
			h.until("approvalResponse", func() bool { return len(h.fc.Approvals()) == 1 })
			want := []api.ApprovalResponseParams{{Session: "s1", Request: "r1", Decision: tc.decision}}
			if diff := cmp.Diff(want, h.fc.Approvals()); diff != "" {
				t.Fatalf("approvalResponse (-want +got):\n%s", diff)
			}
			h.until("the dialog to close", func() bool { return h.m.activeApproval() == nil })
			h.mustNotShow("Approval needed")
			h.mustShow("run rm -rf build/: " + lineui.DecisionText(tc.decision))
		})
	}
}

func TestApprovalDialogView(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(approvalEvent(t, "r1"))
	h.mustShow("action", "exec", "resource", "risk", "reason", "deletes files in the workspace",
		"an allow covers", "exec://rm -rf build/*",
		"[o] allow once", "[s] allow for this session", "[w] allow for this workspace", "[a] allow always", "[d] deny")
	h.golden("approval_dialog")
}

// A key pressed just as the dialog opens is typing, not an answer.
func TestApprovalGuardsAgainstTyping(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(approvalEvent(t, "r1"))
	h.key("s")
	h.settle()
	if n := len(h.fc.Approvals()); n != 0 {
		t.Fatalf("a key within %v of the dialog answered it (%d calls)", dialogGuard, n)
	}
	h.clock = h.clock.Add(dialogGuard)
	h.key("x")
	h.mustShow("answer with o, s, w, a or d", "Approval needed")
	if n := len(h.fc.Approvals()); n != 0 {
		t.Fatalf("an unknown key answered (%d calls)", n)
	}
}

func TestApprovalResolvedElsewhere(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(approvalEvent(t, "r1"))
	h.mustShow("Approval needed")
	h.event(ev(t, api.EventApprovalResolved, api.ApprovalResolved{Request: "r1", Decision: api.DecisionAllowSession,
		Answer: &api.ApprovalAnswer{Decision: api.DecisionAllowSession, Frontend: "telegram"}}))
	h.mustNotShow("Approval needed")
	h.mustShow("run rm -rf build/: allowed for the session in telegram")
	h.clock = h.clock.Add(time.Second)
	h.key("d")
	if n := len(h.fc.Approvals()); n != 0 {
		t.Fatalf("a key answered a closed dialog (%d calls)", n)
	}
}

func TestApprovalConflictDropsDialog(t *testing.T) {
	h := newHarness(t, &fakeClient{ApprovalErr: fmt.Errorf("%w: answered", api.ErrConflict)})
	h.event(approvalEvent(t, "r1"))
	h.event(approvalEvent(t, "r2"))
	h.mustShow("(1 of 2)")
	h.clock = h.clock.Add(time.Second)
	h.key("o")
	h.until("the first dialog to close", func() bool { return len(h.m.approvals) == 1 })
	h.mustShow("already answered elsewhere", "Approval needed")
	h.mustNotShow("(1 of 2)")
}

func TestApprovalErrorKeepsDialog(t *testing.T) {
	h := newHarness(t, &fakeClient{ApprovalErr: errors.New("connection reset")})
	h.event(approvalEvent(t, "r1"))
	h.clock = h.clock.Add(time.Second)
	h.key("o")
	h.until("the error", func() bool { return strings.Contains(h.screen(), "not delivered") })
	h.mustShow("Approval needed")
}

func TestCtrlCCancelsThenQuits(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.typeText("long task")
	h.event(ev(t, api.EventTextDelta, api.TextDelta{Turn: "t1", Text: "working on it"}))
	h.key("ctrl+c")
	h.until("cancelTurn", func() bool { return strings.Contains(strings.Join(h.fc.Calls(), " "), "cancelTurn") })
	if h.quit() {
		t.Fatal("the first Ctrl+C quit")
	}
	h.mustShow("cancelling the turn")
	h.clock = h.clock.Add(time.Second)
	h.key("ctrl+c")
	if !h.quit() {
		t.Fatal("a second Ctrl+C within 2 s did not quit")
	}
}

func TestCtrlCSlowSecondPressDoesNotQuit(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.key("ctrl+c")
	h.mustShow("press Ctrl+C again to quit")
	h.clock = h.clock.Add(3 * time.Second)
	h.key("ctrl+c")
	if h.quit() {
		t.Fatal("Ctrl+C 3 s apart quit")
	}
	for _, c := range h.fc.Calls() {
		if c == "cancelTurn" {
			t.Fatal("cancelTurn called with no turn running")
		}
	}
	h.clock = h.clock.Add(time.Second)
	h.key("ctrl+c")
	if !h.quit() {
		t.Fatal("did not quit")
	}
}

func TestCopyLastAnswer(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(ev(t, api.EventTextDelta, api.TextDelta{Turn: "t1", Text: "old answer"}))
	h.event(ev(t, api.EventTurnComplete, api.TurnComplete{Turn: "t1", StopReason: "end_turn"}))
	h.event(ev(t, api.EventTextDelta, api.TextDelta{Turn: "t2", Text: "part one"}))
	h.event(ev(t, api.EventToolCallStart, api.ToolCallStart{Turn: "t2", Call: "c1", Tool: "glob"}))
	h.event(ev(t, api.EventTextDelta, api.TextDelta{Turn: "t2", Text: "part two"}))
	h.key("ctrl+y")
	var got []string
	for _, m := range h.out {
		if typeName(m) == "tea.setClipboardMsg" {
			got = append(got, fmt.Sprint(m))
		}
	}
	if want := []string{"part one\n\npart two"}; !cmp.Equal(got, want) {
		t.Fatalf("clipboard = %q, want %q", got, want)
	}
	h.mustShow("copied the last answer")
}

// Escape sequences in model output never reach the terminal.
func TestUntrustedTextSanitized(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(ev(t, api.EventTextDelta, api.TextDelta{Turn: "t1", Text: "hi\x1b]52;c;cm0gLXJmIH4=\x07 there\x1b[2J\x1b[H\x9b31m"}))
	h.event(ev(t, api.EventToolCallStart, api.ToolCallStart{Turn: "t1", Call: "c1", Tool: "bash\x1b[31m", Resource: "exec://ls\rfake"}))
	raw := h.m.Render()
	for _, bad := range []string{"]52;", "\x1b[2J", "\x1b[H", "\x9b", "\r"} {
		if strings.Contains(raw, bad) {
			t.Errorf("rendered view contains %q", bad)
		}
	}
	h.mustShow("hi there", "⚙ bash  exec://lsfake")
}

func TestSlashCommands(t *testing.T) {
	fc := &fakeClient{Tools: []api.ToolInfo{{Name: "read_file", Source: "builtin", Description: "Read a file\nmore"}},
		ServerErr: fmt.Errorf("%w: MCP servers: no runtime", api.ErrUnavailable)}
	h := newHarness(t, fc)
	h.typeText("/tools")
	h.until("the tool list", func() bool { return strings.Contains(h.screen(), "read_file  builtin") })
	h.mustShow("NAME", "Read a file")
	h.typeText("/servers")
	h.until("the error", func() bool { return strings.Contains(h.screen(), "/servers: not available in this daemon") })
	h.typeText("/nope")
	h.mustShow("unknown command /nope")
	h.typeText("/help")
	h.mustShow("/allowances", "/approvals", "ctrl+y")
	if n := len(fc.Inputs()); n != 0 {
		t.Fatalf("a command was sent as input: %q", fc.Inputs())
	}
	h.typeText("/clear")
	h.mustNotShow("read_file")
	h.typeText("/exit")
	if !h.quit() {
		t.Fatal("/exit did not quit")
	}
}

func TestStatusLine(t *testing.T) {
	h := newHarness(t, &fakeClient{Budget: api.Budget{Session: "s1", SpentUSD: 0.25, SessionLimitUSD: 2}})
	h.until("the budget", func() bool { return h.m.budget != nil })
	h.send(tea.WindowSizeMsg{Width: 120, Height: 24})
	h.event(ev(t, api.EventUsage, api.Usage{Turn: "t1", InputTokens: 1000, OutputTokens: 50, CostUSD: 0.01,
		ContextTokens: 12345, ContextWindow: 200000}))
	h.mustShow("claude-test · session s1 · guided · $0.2500 spent · $1.7500 left · context 12.3k/200k (6%)")
}

func TestBusyRefusesSecondInput(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.typeText("one")
	h.until("sendInput", func() bool { return len(h.fc.Inputs()) == 1 })
	h.typeText("two")
	h.mustShow("a turn is running")
	if n := len(h.fc.Inputs()); n != 1 {
		t.Fatalf("%d inputs sent while busy", n)
	}
}

func TestEventsOfOtherSessionsIgnored(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	e := ev(t, api.EventTextDelta, api.TextDelta{Turn: "t9", Text: "not for us"})
	e.Session = "s2"
	h.event(e)
	h.mustNotShow("not for us")
}

func TestConnectionLost(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	close(h.events)
	h.until("the note", func() bool { return h.m.closed })
	h.mustShow("connection to the daemon ended", "disconnected")
}

func TestElicitationURL(t *testing.T) {
	var opened []string
	h := newHarness(t, &fakeClient{})
	h.m.opts.OpenURL = func(u string) error { opened = append(opened, u); return nil }
	h.event(ev(t, api.EventElicitationNeeded, api.ElicitationNeeded{Request: "e1", Server: "github", Mode: "url",
		Message: "Sign in to continue", URL: "https://github.com/login/device?code=1"}))
	h.mustShow("github asks for input", "Sign in to continue", "domain  github.com", "https://github.com/login/device?code=1", "[y] open it")
	h.clock = h.clock.Add(time.Second)
	h.key("y")
	h.until("elicitationResponse", func() bool { return len(h.fc.Elicits()) == 1 })
	want := []api.ElicitationResponseParams{{Session: "s1", Request: "e1", Action: api.ElicitAccept}}
	if diff := cmp.Diff(want, h.fc.Elicits()); diff != "" {
		t.Fatalf("elicitationResponse (-want +got):\n%s", diff)
	}
	if !cmp.Equal(opened, []string{"https://github.com/login/device?code=1"}) {
		t.Fatalf("opened %q", opened)
	}
	h.until("the dialog to close", func() bool { return h.m.activeElicit() == nil })
	h.mustShow("github's request: accepted")
}

func TestElicitationURLDecline(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(ev(t, api.EventElicitationNeeded, api.ElicitationNeeded{Request: "e1", Server: "x", Mode: "url",
		Message: "open", URL: "javascript:alert(1)"}))
	h.mustShow("cannot show this request", "[d] decline")
	h.clock = h.clock.Add(time.Second)
	h.key("y") // refused: the URL is not http(s)
	h.key("d")
	h.until("elicitationResponse", func() bool { return len(h.fc.Elicits()) == 1 })
	if got := h.fc.Elicits()[0].Action; got != api.ElicitDecline {
		t.Fatalf("action = %q", got)
	}
}

func TestElicitationForm(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	schema := `{"type":"object","properties":{
		"name":{"type":"string","title":"Your name"},
		"age":{"type":"integer","title":"Age"},
		"color":{"type":"string","title":"Colour","enum":["red","green"]},
		"subscribe":{"type":"boolean","title":"Subscribe?","default":true}},
		"required":["name","color"]}`
	h.event(ev(t, api.EventElicitationNeeded, api.ElicitationNeeded{Request: "e1", Server: "survey", Mode: "form",
		Message: "Tell us about you", Schema: rawJSON(schema)}))
	h.mustShow("survey asks for input", "Tell us about you", "Your name")
	h.clock = h.clock.Add(time.Second)
	for _, r := range "Ada" {
		h.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	h.key("enter")
	h.mustShow("Age")
	for _, r := range "36" {
		h.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	h.key("enter")
	h.key("down") // green
	h.key("enter")
	h.key("enter") // subscribe: the default, yes
	h.until("elicitationResponse", func() bool { return len(h.fc.Elicits()) == 1 })
	got := h.fc.Elicits()[0]
	if got.Action != api.ElicitAccept {
		t.Fatalf("action = %q", got.Action)
	}
	var content map[string]any
	if err := json.Unmarshal(got.Content, &content); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "Ada", "age": 36.0, "color": "green", "subscribe": true}
	if diff := cmp.Diff(want, content); diff != "" {
		t.Fatalf("content (-want +got):\n%s", diff)
	}
}

// TestElicitationFormChoices: titled choices show their titles and send
// their values; a multi-select starts at its default and sends the
// values picked.
func TestElicitationFormChoices(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.send(tea.WindowSizeMsg{Width: 80, Height: 40})
	schema := `{"type":"object","properties":{
		"hero":{"type":"string","title":"Hero","oneOf":[{"const":"hero-1","title":"Superman"},{"const":"hero-2","title":"Green Lantern"}]},
		"fish":{"type":"array","title":"Fish","maxItems":2,"items":{"anyOf":[{"const":"fish-1","title":"Tuna"},{"const":"fish-2","title":"Salmon"},{"const":"fish-3","title":"Trout"}]},"default":["fish-1"]}},
		"required":["hero"]}`
	h.event(ev(t, api.EventElicitationNeeded, api.ElicitationNeeded{Request: "e1", Server: "everything", Mode: "form",
		Message: "Choose", Schema: rawJSON(schema)}))
	h.mustShow("everything asks for input", "Superman", "Green Lantern")
	h.mustNotShow("hero-1")
	h.clock = h.clock.Add(time.Second)
	h.key("down") // Green Lantern
	h.key("enter")
	h.mustShow("Tuna", "Salmon", "Trout")
	h.key("down") // Salmon
	h.key("x")    // picked, with Tuna from the default
	h.key("enter")
	h.until("elicitationResponse", func() bool { return len(h.fc.Elicits()) == 1 })
	got := h.fc.Elicits()[0]
	if got.Action != api.ElicitAccept {
		t.Fatalf("action = %q", got.Action)
	}
	if string(got.Content) != `{"fish":["fish-1","fish-2"],"hero":"hero-2"}` {
		t.Errorf("content %s", got.Content)
	}
}

// TestSamplingFormTitle: the form of a sampling request says that
// accepting it approves the use of the model.
func TestSamplingFormTitle(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(ev(t, api.EventElicitationNeeded, api.ElicitationNeeded{Request: "e1", Server: "ev", Mode: "form", Sampling: true,
		Message: "MCP server ev asks the model", Schema: rawJSON(`{"type":"object","properties":{"prompt":{"type":"string","default":"hi"}}}`)}))
	h.mustShow("ev asks to use the model (sampling: accepting approves it)")
	h.mustNotShow("asks for input")
}

func TestElicitationFormEscCancels(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(ev(t, api.EventElicitationNeeded, api.ElicitationNeeded{Request: "e1", Server: "s", Mode: "form",
		Message: "m", Schema: rawJSON(`{"type":"object","properties":{"q":{"type":"string"}}}`)}))
	h.clock = h.clock.Add(time.Second)
	h.key("esc")
	h.until("elicitationResponse", func() bool { return len(h.fc.Elicits()) == 1 })
	if got := h.fc.Elicits()[0].Action; got != api.ElicitCancel {
		t.Fatalf("action = %q", got)
	}
}

func TestGoldenStreamingAnswer(t *testing.T) {
	h := newHarness(t, &fakeClient{Budget: api.Budget{SpentUSD: 0.5, SessionLimitUSD: 5}})
	h.typeText("show me go")
	h.until("sendInput", func() bool { return len(h.fc.Inputs()) == 1 })
	h.event(ev(t, api.EventTextDelta, api.TextDelta{Turn: "t1", Text: "# Example\n\nA *tiny* program:\n\n```go\npackage main\n\nfunc main() { println(\"hi\") }\n```\n"}))
	h.event(ev(t, api.EventTurnComplete, api.TurnComplete{Turn: "t1", StopReason: "end_turn"}))
	h.golden("answer")
}

func TestMCPProgressTaskAndDeferredNotes(t *testing.T) {
	h := newHarness(t, &fakeClient{})
	h.event(ev(t, api.EventMCPProgress, api.MCPProgress{Server: "ev", Tool: "mcp__ev__long", Progress: 2, Total: 5}))
	h.mustShow("[progress] mcp__ev__long: 2/5")
	h.event(ev(t, api.EventMCPTask, api.MCPTask{Server: "ev", Tool: "mcp__ev__research", Task: "t-9", Status: "input_required"}))
	h.mustShow("input_required, the server waits for an answer")
	h.event(ev(t, api.EventDeferredResult, api.DeferredResult{ID: "d1", Tool: "bash", Resource: "exec://make", Decision: "deny", By: "ada", Status: "denied"}))
	h.mustShow("[deferred] bash exec://make (approval d1, deny by ada): denied")
}
