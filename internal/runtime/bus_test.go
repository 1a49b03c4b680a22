package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/mcp"
)

// drain returns the events received so far, by kind.
func drain(sub *events.Subscription) map[events.Kind][]events.Event {
	out := map[events.Kind][]events.Event{}
	for {
		select {
		case e := <-sub.C:
			out[e.Kind] = append(out[e.Kind], e)
		default:
			return out
		}
	}
}

// TestBusEvents checks that the runtime publishes each of its event kinds
// with its data.
func TestBusEvents(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "[workspace]\nmode = \"autonomous\"\n[budget]\nsession_max_usd = 0.01\nper_action_max_usd = 0.01\nwarn_at_percent = 1\n[subagents]\ntimeout_secs = 1\n")
	w.write("calc.go", "package calc\n")
	sub := w.rt.Bus().Subscribe(10000, nil)
	defer sub.Close()
	w.useProvider(&funcProvider{f: func(req *llm.Request) llm.Response {
		if strings.Contains(req.System, "sub-agent") {
			first := req.Messages[0].Parts[0].Text
			switch {
			case strings.Contains(first, "fail"):
				return llm.Response{} // no answer
			case strings.Contains(first, "hang"):
				time.Sleep(1500 * time.Millisecond) // past the task timeout
				return llm.Response{ToolCalls: []llm.ToolCall{tc("h1", "read_file", map[string]any{"file_path": "calc.go"})}}
			}
			if len(req.Messages) == 1 { // one tool round first: progress
				return llm.Response{ToolCalls: []llm.ToolCall{tc("s1", "read_file", map[string]any{"file_path": "calc.go"})}}
			}
			return llm.Response{Text: "sub done"}
		}
		last := req.Messages[len(req.Messages)-1]
		if len(last.Parts) > 0 && last.Parts[0].Kind == llm.PartText {
			return llm.Response{ToolCalls: []llm.ToolCall{
				tc("r1", "read_file", map[string]any{"file_path": "calc.go"}),
				tc("r2", "read_file", map[string]any{"file_path": "missing.go"}),
				tc("k1", "task", map[string]any{"description": "ok", "prompt": "work"}),
				tc("k2", "task", map[string]any{"description": "bad", "prompt": "fail please"}),
				tc("k3", "task", map[string]any{"description": "slow", "prompt": "hang please"}),
			}}
		}
		return llm.Response{Text: "done"}
	}})
	id := w.session("autonomous")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.answerApprovals(ctx, approval.AllowOnce) // starting a sub-agent asks
	if stop := w.turn(id, "hello"); stop != "end_turn" {
		t.Fatalf("stop %q", stop)
	}
	if err := w.rt.End(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := w.rt.Resume(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// A hook that blocks, and an error: a prompt blocked by UserPrompt.
	w.userHooks("[[hook]]\nname = \"stop\"\nevent = \"UserPrompt\"\ncommand = [\"./no.sh\"]\n",
		map[string]string{"no.sh": "#!/bin/sh\necho '{\"decision\":\"block\",\"reason\":\"closed\"}'\n"})
	w.turn(id, "blocked one")

	got := drain(sub)
	check := func(k events.Kind, ok func(e events.Event) bool) {
		t.Helper()
		for _, e := range got[k] {
			if e.Seq == 0 || e.Time.IsZero() {
				t.Errorf("%s: unstamped %+v", k, e)
			}
			if ok(e) {
				return
			}
		}
		t.Errorf("no %s event as expected; got %+v", k, got[k])
	}
	check(events.SessionCreated, func(e events.Event) bool {
		d := e.Data.(events.Session)
		return e.Session == id && d.Workspace == w.ws && d.Principal == "tester"
	})
	check(events.SessionSaved, func(e events.Event) bool { return e.Session == id })
	check(events.SessionEnded, func(e events.Event) bool { return e.Session == id && e.Data.(events.Session).Reason == "ended" })
	check(events.SessionResumed, func(e events.Event) bool { return e.Session == id })
	check(events.MessageReceived, func(e events.Event) bool { return e.Data.(events.Message).Chars == len("hello") })
	check(events.MessageProcessed, func(e events.Event) bool { return e.Data.(events.Message).StopReason == "end_turn" })
	check(events.LLMRequestStarted, func(e events.Event) bool { return e.Session == id && e.Data.(events.LLM).Model != "" })
	check(events.LLMStreamStarted, func(e events.Event) bool { return e.Data.(events.LLM).Turn != "" })
	check(events.LLMStreamCompleted, func(e events.Event) bool { return e.Data.(events.LLM).StopReason == "tool_use" })
	check(events.LLMUsage, func(e events.Event) bool { d := e.Data.(events.LLM); return d.InputTokens == 10 && d.OutputTokens == 5 })
	check(events.LLMRequestCompleted, func(e events.Event) bool {
		d := e.Data.(events.LLM)
		return d.StopReason == "end_turn" && d.Error == ""
	})
	check(events.ToolCallStarted, func(e events.Event) bool { return e.Data.(events.Tool).Call == "r1" })
	check(events.ToolCallCompleted, func(e events.Event) bool { d := e.Data.(events.Tool); return d.Call == "r1" && d.Status == "ok" })
	check(events.ToolCallFailed, func(e events.Event) bool {
		d := e.Data.(events.Tool)
		return d.Call == "r2" && d.Status == "error" && d.Error != ""
	})
	check(events.SubagentSpawned, func(e events.Event) bool { d := e.Data.(events.Subagent); return d.Parent == id && d.Depth == 1 })
	check(events.SubagentProgress, func(e events.Event) bool {
		d := e.Data.(events.Subagent)
		return d.Description == "ok" && d.Parent == id && d.Depth == 1 && d.Round == 1 && d.Tools == 1 && e.Session != id
	})
	check(events.SubagentCompleted, func(e events.Event) bool { return e.Data.(events.Subagent).Description == "ok" })
	check(events.SubagentFailed, func(e events.Event) bool { return e.Data.(events.Subagent).Description == "bad" })
	check(events.SubagentCancelled, func(e events.Event) bool { return e.Data.(events.Subagent).Description == "slow" })
	check(events.BudgetWarning, func(e events.Event) bool { d := e.Data.(events.Budget); return d.LimitUSD > 0 && d.UsedUSD > 0 })
	check(events.HookBlocked, func(e events.Event) bool {
		d := e.Data.(events.Hook)
		return d.Event == string(hooks.UserPrompt) && d.Hook == "stop" && d.Reason == "closed"
	})
	check(events.Error, func(e events.Event) bool {
		return strings.Contains(e.Data.(events.ErrorData).Message, "blocked by hook stop")
	})
	if sub.Lagged() != 0 {
		t.Errorf("lagged %d", sub.Lagged())
	}
}

func TestBusDaemonEvents(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "")
	bus := events.New(nil)
	sub := bus.Subscribe(100, nil)
	b, err := NewBackendWith(daemon.BackendDeps{Core: w.core, Config: w.rt.o.Config, Events: w.ev, Bus: bus, Logger: slog.New(slog.DiscardHandler)}, w.rt.o.Provider)
	if err != nil {
		t.Fatal(err)
	}
	if b.R.Bus() != bus {
		t.Fatal("the backend's runtime does not publish on the daemon's bus")
	}
	if got := drain(sub); len(got[events.DaemonStarted]) != 1 || len(got[events.DaemonStopped]) != 0 {
		t.Errorf("after start: %+v", got)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := drain(sub)
	if len(got[events.DaemonStopped]) != 1 || got[events.DaemonStopped][0].Data.(events.Daemon).Reason != "shutdown" {
		t.Errorf("daemon.stopped: %+v", got)
	}
}

// TestBusMCPAndCapsuleEvents checks the mapping of the MCP manager's and
// the capsule manager's notices (the closures NewBackendWith gives them
// call these) to typed events.
func TestBusMCPAndCapsuleEvents(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "")
	sub := w.rt.Bus().Subscribe(100, nil)
	w.rt.emitMCP(mcp.Event{Kind: "state", Server: "gh", State: mcp.StateStarting})
	w.rt.emitMCP(mcp.Event{Kind: "state", Server: "gh", State: mcp.StateRunning})
	w.rt.emitMCP(mcp.Event{Kind: "tools_changed", Server: "gh"})
	w.rt.emitMCP(mcp.Event{Kind: "state", Server: "gh", State: mcp.StateFailed, Error: "exit 1"})
	w.rt.emitMCP(mcp.Event{Kind: "state", Server: "gh", State: mcp.StateRunning})
	w.rt.emitCapsule(api.EventCapsuleLoaded, api.CapsuleInfo{ID: "notes", Version: "1.0.0"})
	w.rt.emitCapsule(api.EventCapsuleFailed, api.CapsuleInfo{ID: "bad", Error: "trap"})
	w.rt.emitCapsule(api.EventCapsuleUnloaded, api.CapsuleInfo{ID: "notes"})
	w.rt.emitMCP(mcp.Event{Kind: "tool_called", Server: "gh", Session: "s1", Tool: "mcp__gh__issue"})
	w.rt.emitMCP(mcp.Event{Kind: "tool_completed", Server: "gh", Session: "s1", Tool: "mcp__gh__issue", Error: "boom"})
	w.rt.emitMCP(mcp.Event{Kind: "health", Server: "gh", Error: "no pong", Duration: time.Millisecond})
	w.rt.emitCron("notes", "tally", nil)
	w.rt.emitCron("notes", "tally", errors.New("denied"))
	var got []string
	for {
		select {
		case e := <-sub.C:
			switch d := e.Data.(type) {
			case events.MCP:
				got = append(got, string(e.Kind)+":"+d.Server+":"+d.Error)
			case events.Capsule:
				got = append(got, string(e.Kind)+":"+d.ID+":"+d.Job+":"+d.Error)
			case events.Health:
				got = append(got, fmt.Sprint(string(e.Kind), ":", d.Component, ":", d.OK, ":", d.Error, ":", d.Duration))
			}
			if e.Kind == events.MCPToolCalled || e.Kind == events.MCPToolCompleted {
				got[len(got)-1] += ":" + e.Data.(events.MCP).Tool + ":" + e.Session
			}
			continue
		default:
		}
		break
	}
	want := "mcp.server_connected:gh: mcp.server_disconnected:gh:exit 1 mcp.server_connected:gh: mcp.server_restarted:gh: " +
		"capsule.loaded:notes:: capsule.failed:bad::trap capsule.unloaded:notes:: " +
		"mcp.tool_called:gh::mcp__gh__issue:s1 mcp.tool_completed:gh:boom:mcp__gh__issue:s1 health.check_completed:mcp:gh:false:no pong:1ms " +
		"capsule.cron_ran:notes:tally: capsule.cron_ran:notes:tally:denied"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("got  %s\nwant %s", g, want)
	}
}
