package runtime

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// stubTool is a capsule tool that is only ever listed.
type stubTool string

func (s stubTool) Spec() tools.Spec {
	return tools.Spec{Name: string(s), Description: "stub", InputSchema: json.RawMessage(`{"type":"object"}`)}
}

func (s stubTool) Prepare(security.Session, json.RawMessage) (security.Action, security.Executor, error) {
	return security.Action{}, nil, errors.New("not callable")
}

// TestSharedTools: capsule tools reach every workspace's registry, or one
// workspace's only, including registries made later; a replacement is
// one step; a name another tool holds is refused and never taken over.
func TestSharedTools(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "")
	other := filepath.Join(w.dir, "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	reg := func(ws string) *tools.Registry {
		t.Helper()
		r, err := w.rt.registry(ws)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := reg(w.ws), reg(other)
	s := w.rt.shared
	if err := s.Replace(nil, []tools.Tool{stubTool("cap_all")}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceIn(w.ws, nil, []tools.Tool{stubTool("cap_ws")}); err != nil {
		t.Fatal(err)
	}
	if !a.Has("cap_all") || !b.Has("cap_all") || !a.Has("cap_ws") || b.Has("cap_ws") {
		t.Errorf("offered: a %v %v, b %v %v", a.Has("cap_all"), a.Has("cap_ws"), b.Has("cap_all"), b.Has("cap_ws"))
	}
	// A name a built-in holds is refused, and its removal does not
	// remove the built-in.
	if err := s.Replace(nil, []tools.Tool{stubTool("read_file")}); err == nil || !strings.Contains(err.Error(), `"read_file" registered twice`) {
		t.Errorf("taking read_file: %v", err)
	}
	if s.Unregister("read_file") || !a.Has("read_file") {
		t.Error("the sink removed a built-in it never held")
	}
	// Refreshed: the tool in both lists stays, the other goes.
	if err := s.ReplaceIn(w.ws, []string{"cap_ws"}, []tools.Tool{stubTool("cap_ws"), stubTool("cap_ws2")}); err != nil {
		t.Fatal(err)
	}
	if !a.Has("cap_ws") || !a.Has("cap_ws2") || b.Has("cap_ws2") {
		t.Error("refresh")
	}
	// A registry made later gets what is in scope.
	third := filepath.Join(w.dir, "third")
	os.MkdirAll(third, 0o755)
	c := reg(third)
	if !c.Has("cap_all") || c.Has("cap_ws") {
		t.Errorf("later registry: %v %v", c.Has("cap_all"), c.Has("cap_ws"))
	}
	if !s.Unregister("cap_all") || a.Has("cap_all") || b.Has("cap_all") || c.Has("cap_all") || s.Unregister("cap_all") {
		t.Error("unregister")
	}
}
