package capsule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"

	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/tools"
	"github.com/astrid-runtime/astrid/sdk"
)

// Capsule is a loaded capsule. Its methods are safe for concurrent use;
// calls into its module are serialised (a module instance is
// single-threaded).
type Capsule struct {
	m   *Manager
	id  string
	dir string
	// workspace is the root of a workspace capsule, "" for the user's.
	workspace string
	man       *capsulepkg.Manifest
	// caps are the capabilities in force: the manifest's, which Load
	// checked are within what the user granted at install.
	caps capsulepkg.Capabilities
	env  map[string]string
	mod  wazero.CompiledModule // nil for a capsule without a component
	// stamp identifies the files it was loaded from (Manager.Rescan).
	stamp string
	// stage is the copy of dir its MCP servers run in; servers are their
	// names (mcp.go). Set by load, cleared by unload.
	stage   string
	servers []string
	// grant is what the user granted at install (the hashes of local MCP
	// server commands).
	grant capsulepkg.Grant

	mu     sync.Mutex
	inst   *instance // guarded by mu; nil until the first call and after a trap
	closed bool      // guarded by mu
}

// ID returns the capsule's id (its package name).
func (c *Capsule) ID() string { return c.id }

// Manifest returns the capsule's manifest. Treat it as read-only.
func (c *Capsule) Manifest() *capsulepkg.Manifest { return c.man }

// GuestError is a failure the capsule's code reported (a handler returned
// an error); Msg is its text, untrusted.
type GuestError struct {
	Capsule string
	Msg     string
}

func (e *GuestError) Error() string { return e.Msg }

// ErrUnloaded is returned for a call into a capsule that was unloaded.
var ErrUnloaded = errors.New("capsule: unloaded")

// result is the outcome of one call into a capsule: its output, and
// whether the guest reported it as an error.
type result struct {
	out    []byte
	failed bool
}

// call calls the capsule and turns a guest-reported error into a
// *GuestError.
func (c *Capsule) call(ctx context.Context, s security.Session, kind uint32, name string, input []byte) ([]byte, error) {
	r, err := c.invoke(ctx, s, kind, name, input)
	if err != nil {
		return nil, err
	}
	if r.failed {
		return nil, &GuestError{Capsule: c.id, Msg: string(r.out)}
	}
	return r.out, nil
}

// invoke calls the capsule's astrid_call export with a fresh call state
// for session s, within the call timeout. Any failure of the module
// (trap, exit, deadline, a host function ending the call) discards the
// instance; the next call starts a fresh one.
func (c *Capsule) invoke(ctx context.Context, s security.Session, kind uint32, name string, input []byte) (result, error) {
	if c.mod == nil {
		return result{}, fmt.Errorf("capsule %s has no component", c.id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return result{}, ErrUnloaded
	}
	lim := c.m.eng.limits
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	if c.inst == nil {
		inst, err := c.m.eng.instantiate(ctx, c.mod, c.id)
		if err != nil {
			return result{}, err
		}
		c.inst = inst
	}
	cs := &callState{c: c, sess: s}
	cctx := context.WithValue(ctx, callKey{}, cs)
	r, err := c.callLocked(cctx, cs, kind, name, input)
	if err != nil {
		c.inst.close(ctx)
		c.inst = nil
		var ke *killError
		if errors.As(err, &ke) {
			return result{}, fmt.Errorf("capsule %s was stopped: %s", c.id, ke.reason)
		}
		return result{}, fmt.Errorf("capsule %s failed: %w", c.id, describeExit(err, lim))
	}
	return r, nil
}

func (c *Capsule) callLocked(ctx context.Context, cs *callState, kind uint32, name string, input []byte) (result, error) {
	n := len(name) + len(input)
	res, err := c.inst.alloc.Call(ctx, uint64(n))
	if err != nil {
		return result{}, err
	}
	buf := make([]byte, 0, n)
	buf = append(append(buf, name...), input...)
	if n > 0 && !c.inst.mod.Memory().Write(uint32(res[0]), buf) {
		return result{}, &killError{reason: "astrid_alloc returned a buffer outside memory"}
	}
	res, err = c.inst.call.Call(ctx, uint64(kind), uint64(len(name)), uint64(len(input)))
	if err != nil {
		return result{}, err
	}
	if !cs.outputSet {
		return result{}, &killError{reason: "the call returned without output"}
	}
	return result{out: cs.output, failed: res[0] != 0}, nil
}

// close unloads: later calls fail with ErrUnloaded.
func (c *Capsule) close(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.inst != nil {
		c.inst.close(ctx)
		c.inst = nil
	}
	if c.mod != nil {
		_ = c.mod.Close(ctx)
	}
}

// tool adapts a [[tool]] of a capsule to tools.Tool.
type tool struct {
	c    *Capsule
	decl capsulepkg.ToolDecl
}

var _ tools.Tool = tool{}

// Spec implements tools.Tool.
func (t tool) Spec() tools.Spec {
	return tools.Spec{
		Name:        t.decl.Name,
		Description: strings.TrimSpace(t.decl.Description) + " (from capsule " + t.c.id + ")",
		InputSchema: t.decl.Schema,
		ReadOnly:    t.decl.ReadOnly,
	}
}

// Prepare implements tools.Tool. The action is capsule://<id>/tool.<name>
// with the raw arguments; the executor calls the capsule with the
// action's arguments and session. Every host call the capsule makes
// during the call is judged again on its own.
func (t tool) Prepare(s security.Session, args json.RawMessage) (security.Action, security.Executor, error) {
	if t.c.workspace != "" && s.Workspace != t.c.workspace {
		return security.Action{}, nil, fmt.Errorf("capsule %s belongs to workspace %s; it serves no session of %q", t.c.id, t.c.workspace, s.Workspace)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil || obj == nil {
		return security.Action{}, nil, &tools.ArgError{Tool: t.decl.Name, Msg: "arguments must be a JSON object"}
	}
	a, err := capsuleAction(t.c.id, s, "tool."+t.decl.Name, args, "tool "+t.decl.Name)
	if err != nil {
		return security.Action{}, nil, err
	}
	ex := security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return t.c.call(ctx, a.Session, sdk.KindTool, t.decl.Name, a.Args)
	})
	return a, ex, nil
}
