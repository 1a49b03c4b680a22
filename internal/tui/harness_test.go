package tui

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/api"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	// chroma's regexp engine keeps a clock goroutine that stops by itself
	// a while after the last match.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/dlclark/regexp2.runClock"))
}

// harness drives a Model the way a Bubble Tea program does, without a
// terminal: commands run on goroutines and their messages come back to
// Update on the test's goroutine.
type harness struct {
	t      *testing.T
	m      *Model
	fc     *fakeClient
	clock  time.Time
	events chan api.Event
	msgs   chan tea.Msg
	// out holds the messages meant for the program itself (quit,
	// clipboard, terminal queries), in order.
	out []tea.Msg
}

func newHarness(t *testing.T, fc *fakeClient) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, fc: fc, clock: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		events: make(chan api.Event, 64), msgs: make(chan tea.Msg, 1024)}
	t.Cleanup(cancel)
	h.m = New(ctx, Options{
		Client:  fc,
		Events:  h.events,
		Session: api.SessionInfo{ID: "s1", Workspace: "/work/project", Mode: "guided", Model: "claude-test"},
		Now:     func() time.Time { return h.clock },
	})
	h.run(h.m.Init())
	h.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	h.settle()
	return h
}

// run runs cmd as the program would: on its own goroutine.
func (h *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() { h.msgs <- cmd() }()
}

// send delivers msg to Update and runs the command it returns.
func (h *harness) send(msg tea.Msg) {
	h.t.Helper()
	_, cmd := h.m.Update(msg)
	h.run(cmd)
}

// handle routes a command's message: batches run, the model's own messages
// go to Update, spinner ticks are dropped (they would tick forever), and the
// rest is for the program.
func (h *harness) handle(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil, spinner.TickMsg:
	case tea.BatchMsg:
		for _, c := range msg {
			h.run(c)
		}
	case eventMsg, eventsClosedMsg, sentMsg, cancelledMsg, approvalSentMsg, elicitSentMsg,
		commandMsg, budgetMsg, formDoneMsg, formAbortMsg:
		h.send(msg)
	default:
		if strings.HasPrefix(typeName(msg), "tea.") {
			h.out = append(h.out, msg)
			return
		}
		h.send(msg) // the form's own messages
	}
}

func typeName(v any) string {
	return strings.TrimPrefix(strings.TrimPrefix(fmtType(v), "*"), "v2.")
}

// settle handles messages until none arrives for a while.
func (h *harness) settle() {
	h.t.Helper()
	for {
		select {
		case msg := <-h.msgs:
			h.handle(msg)
		case <-time.After(40 * time.Millisecond):
			return
		}
	}
}

// until handles messages until cond holds, failing after 5 s.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for !cond() {
		select {
		case msg := <-h.msgs:
			h.handle(msg)
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s; screen:\n%s", what, h.screen())
		}
	}
	h.settle()
}

// event streams e to the model through its event channel.
func (h *harness) event(e api.Event) {
	h.t.Helper()
	h.events <- e
	h.until("the event to be taken", func() bool { return len(h.events) == 0 })
}

// key presses a key: a printable rune, or a named key ("enter", "ctrl+c").
func (h *harness) key(k string) {
	h.t.Helper()
	h.send(keyMsg(k))
	h.settle()
}

// typeText types s and presses enter.
func (h *harness) typeText(s string) {
	h.t.Helper()
	for _, r := range s {
		h.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	h.send(keyMsg("enter"))
	h.settle()
}

func keyMsg(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEsc}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	}
	if c, ok := strings.CutPrefix(k, "ctrl+"); ok {
		return tea.KeyPressMsg{Code: rune(c[0]), Mod: tea.ModCtrl}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// screen is the rendered view without colours, trailing spaces trimmed.
func (h *harness) screen() string {
	lines := strings.Split(ansi.Strip(h.m.Render()), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func (h *harness) mustShow(subs ...string) {
	h.t.Helper()
	s := h.screen()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			h.t.Fatalf("screen lacks %q:\n%s", sub, s)
		}
	}
}

func (h *harness) mustNotShow(subs ...string) {
	h.t.Helper()
	s := h.screen()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			h.t.Fatalf("screen shows %q:\n%s", sub, s)
		}
	}
}

// golden compares the screen with testdata/name.golden (-update rewrites it).
func (h *harness) golden(name string) {
	h.t.Helper()
	got := h.screen() + "\n"
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		h.t.Errorf("screen differs from %s (go test -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// quit reports whether the model asked the program to quit.
func (h *harness) quit() bool {
	for _, m := range h.out {
		if _, ok := m.(tea.QuitMsg); ok {
			return true
		}
	}
	return false
}

func fmtType(v any) string { return fmt.Sprintf("%T", v) }
