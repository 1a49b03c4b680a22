package mcp

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// TestWorkspaceServers is the attack of a repository that adds MCP
// servers in its .astrid/config.toml: one named like the user's server,
// one claiming trusted and auto_start. The first is refused; the second
// never starts on its own, is untrusted whatever it claims (every call
// asks, even after "allow for the session" in autonomous mode), offers
// its tools only to that workspace's sessions, and sees that workspace
// only as its roots.
func TestWorkspaceServers(t *testing.T) {
	user := selfServer(t, "good", true)
	e := newEnv(t, map[string]config.Server{"good": user})
	e.start("good")

	// A name the user's configuration uses is refused, and the user's
	// server is untouched.
	if err := e.m.SetWorkspaceServers(e.ws, map[string]config.Server{"good": selfServer(t, "good", false)}); err == nil || !strings.Contains(err.Error(), "configured by the user") {
		t.Fatalf("clashing workspace server: %v", err)
	}
	if info := e.m.List(); len(info) != 1 || info[0].State != StateRunning || info[0].Workspace != "" {
		t.Fatalf("servers after the clash = %+v", info)
	}

	claims := selfServer(t, "good", true)
	claims.AutoStart = true
	if err := e.m.SetWorkspaceServers(e.ws, map[string]config.Server{"repo": claims}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.StartAutoStart(context.Background()); err != nil {
		t.Fatal(err)
	}
	info := e.m.List()
	if len(info) != 2 || info[1].Name != "repo" || info[1].Workspace != e.ws || info[1].State != StateStopped {
		t.Fatalf("auto_start started a workspace server: %+v", info)
	}
	// Start is by workspace: the global name space does not have it.
	if _, err := e.m.Start(context.Background(), "repo"); err == nil {
		t.Error("a workspace server started without its workspace")
	}
	wsReg, other := newRegistry(), newRegistry()
	defer e.m.AttachWorkspace(wsReg, e.ws)()
	defer e.m.AttachWorkspace(other, e.dir)()
	if _, err := e.m.StartIn(context.Background(), e.ws, "repo"); err != nil {
		t.Fatal(err)
	}
	names := func(r *tools.Registry) []string {
		var out []string
		for _, s := range r.Specs() {
			out = append(out, s.Name)
		}
		return out
	}
	if !slices.Contains(names(wsReg), "mcp__repo__echo") || !slices.Contains(names(wsReg), "mcp__good__echo") {
		t.Errorf("workspace registry lacks tools: %v", names(wsReg))
	}
	if slices.Contains(names(other), "mcp__repo__echo") || slices.Contains(names(e.reg), "mcp__repo__echo") {
		t.Error("a workspace server's tools reached another workspace's registry")
	}

	// Every call asks, even after "allow for the session", in autonomous
	// mode; the risk is high.
	e.reg = wsReg
	e.answer = approval.AllowSession
	before := e.askedCount()
	for i := 0; i < 3; i++ {
		e.ok("mcp__repo__peek", map[string]any{})
	}
	if n := e.askedCount() - before; n != 3 {
		t.Errorf("asked %d times for 3 calls of a workspace server", n)
	}
	if r := e.asked[len(e.asked)-1]; r.Risk != "high" {
		t.Errorf("risk = %s", r.Risk)
	}
	// Its roots are its workspace only, not every session's.
	e.answer = approval.AllowOnce
	if got := e.ok("mcp__repo__roots", map[string]any{}); got != "file://"+e.ws {
		t.Errorf("roots of a workspace server = %q", got)
	}

	// Removing it from the workspace stops it and withdraws its tools.
	if err := e.m.SetWorkspaceServers(e.ws, nil); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names(wsReg), "mcp__repo__echo") || len(e.m.List()) != 1 {
		t.Errorf("after removal: tools %v, servers %+v", names(wsReg), e.m.List())
	}
}
