package runtime

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/llm"
)

// loopForever is a model that never stops calling tools.
func loopForever(req *llm.Request) llm.Response {
	return llm.Response{ToolCalls: []llm.ToolCall{tc(fmt.Sprint("c", len(req.Messages)), "list_directory", map[string]any{})}}
}

func TestAModelThatLoopsForeverIsStopped(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "[workspace]\nmode = \"guided\"\n[runtime]\nmax_turn_iterations = 5\n")
	p := &funcProvider{f: loopForever}
	w.useProvider(p)
	rec, err := w.rt.Create(context.Background(), CreateOptions{Workspace: w.ws})
	if err != nil {
		t.Fatal(err)
	}
	if stop := w.turn(rec.ID, "go"); stop != StopMaxIterations {
		t.Fatalf("stop %q, want %s", stop, StopMaxIterations)
	}
	if n := len(p.reqs); n != 5 {
		t.Errorf("%d model calls, want 5", n)
	}
}

func TestAModelThatBurnsTheBudgetIsStopped(t *testing.T) {
	// Each call reserves its estimate, $0.001, and costs $0.0005; the
	// session may spend $0.0035, so the call that would cross it is refused
	// before it is made.
	w := newWorld(t, `{"text":"x"}`, "[workspace]\nmode = \"guided\"\n[budget]\nsession_max_usd = 0.0035\nper_action_max_usd = 0.001\n")
	p := &funcProvider{f: loopForever}
	w.useProvider(p)
	rec, err := w.rt.Create(context.Background(), CreateOptions{Workspace: w.ws})
	if err != nil {
		t.Fatal(err)
	}
	if stop := w.turn(rec.ID, "go"); stop != StopError {
		t.Fatalf("stop %q, want %s", stop, StopError)
	}
	errs := w.ev.of(api.EventError)
	if len(errs) == 0 || !strings.Contains(string(errs[len(errs)-1].Data), "budget") {
		t.Fatalf("no budget error: %v", errs)
	}
	if n := len(p.reqs); n != 6 {
		t.Errorf("%d model calls made, want 6 (6 × $0.0005 + the next $0.001 reservation > $0.0035)", n)
	}
	if spent := w.core.Budget.Session(rec.ID).Spent; spent.USD() > 0.0035 {
		t.Errorf("spent $%.4f beyond the $0.0035 limit", spent.USD())
	}
}

func TestClipLineKeepsRunesWhole(t *testing.T) {
	// "é" is two bytes; a byte cut through it would leave invalid UTF-8.
	s := clipLine("ab\n\t  é and more", 5)
	if !utf8.ValidString(s) || len(s) > 5 {
		t.Fatalf("clipLine = %q (%d bytes), want valid UTF-8 of at most 5 bytes", s, len(s))
	}
	if got := clipLine("a \n b", 10); got != "a b" {
		t.Fatalf("clipLine collapses white space: got %q", got)
	}
}
