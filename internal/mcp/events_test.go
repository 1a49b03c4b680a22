package mcp

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/config"
)

// TestToolCallAndHealthEvents: an authorised call is announced
// (tool_called) and its answer reported (tool_completed, with the error of
// a failed call); a refused call reaches neither; the health pings of a
// running server are reported.
func TestToolCallAndHealthEvents(t *testing.T) {
	e := newEnv(t, map[string]config.Server{"good": selfServer(t, "good", true)}, func(o *Options) { o.HealthInterval = 50 * time.Millisecond })
	e.answer = approval.AllowOnce
	e.start("good")
	e.ok("mcp__good__echo", map[string]any{"text": "hi"})
	e.call("mcp__good__fail", map[string]any{"text": "x"})
	e.mu.Lock()
	e.answer = approval.Deny
	e.mu.Unlock()
	e.call("mcp__good__add", map[string]any{"a": 1, "b": 2})

	var got []string
	for _, ev := range append(e.eventsOf("tool_called"), e.eventsOf("tool_completed")...) {
		if ev.Server != "good" || ev.Session != "s1" {
			t.Errorf("event %+v", ev)
		}
		got = append(got, ev.Kind+":"+ev.Tool+":"+map[bool]string{true: "err", false: "ok"}[ev.Error != ""])
	}
	want := []string{"tool_called:mcp__good__echo:ok", "tool_called:mcp__good__fail:ok", "tool_completed:mcp__good__echo:ok", "tool_completed:mcp__good__fail:err"}
	if !slices.Equal(got, want) {
		t.Errorf("tool events\n got %v\nwant %v", got, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(e.eventsOf("health")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no health event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h := e.eventsOf("health")[0]; h.Server != "good" || h.Error != "" || h.Duration <= 0 {
		t.Errorf("health %+v", h)
	}
}

// TestReconfigure: removed servers stop and disappear, changed ones are
// replaced, new auto_start trusted ones start, unchanged ones keep
// running; an invalid set changes nothing.
func TestReconfigure(t *testing.T) {
	keep := withAuto(selfServer(t, "good", true))
	gone := withAuto(selfServer(t, "good", true))
	moved := withAuto(selfServer(t, "good", true))
	e := newEnv(t, map[string]config.Server{"keep": keep, "gone": gone, "moved": moved})
	if err := e.m.StartAutoStart(context.Background()); err != nil {
		t.Fatal(err)
	}
	keepConn := e.m.server("keep").current()
	bad := map[string]config.Server{"keep": keep, "x": {Transport: "carrier-pigeon"}}
	if _, err := e.m.Reconfigure(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("invalid set: %v", err)
	}
	if len(e.m.List()) != 3 || e.m.server("gone").current() == nil {
		t.Fatal("an invalid set changed the servers")
	}
	moved2 := moved
	moved2.Args = append(slices.Clone(moved.Args), "--changed")
	added := selfServer(t, "good", true) // not auto_start: stays stopped
	changes, err := e.m.Reconfigure(context.Background(), map[string]config.Server{"keep": keep, "moved": moved2, "added": added})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gone": ServerRemoved, "moved": ServerChanged, "added": ServerAdded}
	if !maps.Equal(changes, want) {
		t.Errorf("changes %v, want %v", changes, want)
	}
	var names []string
	for _, s := range e.m.List() {
		names = append(names, s.Name+"="+s.State)
	}
	if w := []string{"added=stopped", "keep=running", "moved=running"}; !slices.Equal(names, w) {
		t.Errorf("servers %v, want %v", names, w)
	}
	if e.m.server("keep").current() != keepConn {
		t.Error("an unchanged server was restarted")
	}
	if got := e.m.server("moved").cfg.Args; !slices.Contains(got, "--changed") {
		t.Errorf("moved runs with %v", got)
	}
	for _, n := range e.toolNames() {
		if strings.HasPrefix(n, "mcp__gone__") {
			t.Errorf("a removed server's tool is still offered: %s", n)
		}
	}
}
