package mcp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// ownerSink records the tools an owned server hands its owner.
type ownerSink struct {
	mu    sync.Mutex
	tools map[string]tools.Tool
}

func (o *ownerSink) swap(old, new []tools.Tool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range old {
		delete(o.tools, t.Spec().Name)
	}
	for _, t := range new {
		o.tools[t.Spec().Name] = t
	}
}

func (o *ownerSink) names() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for n := range o.tools {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func TestOwnedServer(t *testing.T) {
	e := newEnv(t, map[string]config.Server{"good": selfServer(t, "good", true)})
	reg := tools.New(tools.Options{})
	defer e.m.Attach(reg)()
	sink := &ownerSink{tools: map[string]tools.Tool{}}
	var profiled []string
	owned := func(name string, trusted bool) Owned {
		srv := selfServer(t, "good", trusted)
		return Owned{Name: name, Owner: "capsule:test", Server: srv, Tools: sink.swap,
			Profile: func(base sandbox.Profile, bin string) (sandbox.Profile, error) {
				profiled = append(profiled, bin)
				// The base grants no working directory and nothing of the
				// arguments.
				if len(base.ReadWrite) != 0 || base.Network.Unrestricted || len(base.Network.ConnectTCP) != 0 {
					t.Errorf("base profile grants too much: %+v", base)
				}
				return base, nil
			}}
	}
	ctx := context.Background()

	// A configured server's name is refused.
	if _, err := e.m.AddOwned(ctx, owned("good", true)); !errors.Is(err, ErrNameTaken) || !strings.Contains(err.Error(), "[servers.good]") {
		t.Fatalf("AddOwned(good) = %v, want ErrNameTaken naming the configured server", err)
	}
	// A profile that refuses the binary stops the start.
	bad := owned("capsule-x-refused", true)
	bad.Profile = func(sandbox.Profile, string) (sandbox.Profile, error) {
		return sandbox.Profile{}, errors.New("not in the capsule")
	}
	if _, err := e.m.AddOwned(ctx, bad); err == nil || !strings.Contains(err.Error(), "not in the capsule") {
		t.Fatalf("AddOwned with a refusing profile = %v", err)
	}
	if e.m.server("capsule-x-refused") != nil {
		t.Fatal("a server that failed to start stayed registered")
	}

	info, err := e.m.AddOwned(ctx, owned("capsule-x-srv", false))
	if err != nil || info.State != StateRunning {
		t.Fatalf("AddOwned = %+v, %v", info, err)
	}
	if len(profiled) == 0 {
		t.Fatal("Profile was not called")
	}
	// Its tools went to the owner, not to the attached registry.
	if got := sink.names(); !slices.Contains(got, "mcp__capsule-x-srv__echo") {
		t.Fatalf("owner's tools = %v", got)
	}
	for _, sp := range reg.Specs() {
		if strings.HasPrefix(sp.Name, "mcp__capsule-x-srv__") {
			t.Fatalf("owned tool %s reached the attached registry", sp.Name)
		}
	}
	if e.m.Owner("capsule-x-srv") != "capsule:test" || e.m.Owner("good") != "" {
		t.Error("Owner")
	}
	// An untrusted owned server's calls always ask, through the interceptor.
	own := tools.New(tools.Options{})
	for _, tl := range sink.tools {
		if err := own.Register(tl); err != nil {
			t.Fatal(err)
		}
	}
	before := e.askedCount()
	res, err := own.Run(ctx, e.core.Interceptor, e.sess, "mcp__capsule-x-srv__echo", []byte(`{"text":"hi"}`))
	if err != nil || res.IsError || res.Text != "echo: hi" {
		t.Fatalf("echo = %+v, %v", res, err)
	}
	if e.askedCount() != before+1 {
		t.Error("a call of an untrusted owned server's tool did not ask")
	}
	// A second owner cannot take the name.
	if _, err := e.m.AddOwned(ctx, owned("capsule-x-srv", true)); !errors.Is(err, ErrNameTaken) || !strings.Contains(err.Error(), "capsule:test") {
		t.Fatalf("second AddOwned = %v", err)
	}

	pid := e.m.PID("capsule-x-srv")
	if pid <= 0 {
		t.Fatal("no pid")
	}
	// A configuration reload leaves the capsule's server alone, and a
	// reloaded configuration cannot take its name.
	changes, err := e.m.Reconfigure(ctx, map[string]config.Server{"good": selfServer(t, "good", true), "capsule-x-srv": selfServer(t, "good", true)})
	if !errors.Is(err, ErrNameTaken) || changes["capsule-x-srv"] != "" {
		t.Fatalf("Reconfigure over an owned name = %v, %v", changes, err)
	}
	if e.m.Owner("capsule-x-srv") != "capsule:test" || e.m.PID("capsule-x-srv") != pid {
		t.Fatal("a reload replaced or stopped the capsule's server")
	}
	if err := e.m.RemoveOwned(ctx, "capsule-x-srv"); err != nil {
		t.Fatal(err)
	}
	if got := sink.names(); len(got) != 0 {
		t.Errorf("tools left with the owner after RemoveOwned: %v", got)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after RemoveOwned: %v", pid, err)
	}
	for _, s := range e.m.List() {
		if s.Name == "capsule-x-srv" {
			t.Error("removed server still listed")
		}
	}
	if err := e.m.RemoveOwned(ctx, "good"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("RemoveOwned(configured) = %v", err)
	}
}
