// Package runtime is the agent loop: user input → model → proposed tool
// calls → the interceptor → execution → results back to the model → … until
// the model ends its turn.
//
// A Runtime holds the live sessions of one daemon. A turn streams the
// model's output to the session's events as it arrives; tool calls run only
// through tools.Registry.Run, which runs each through
// security.Interceptor; the read-only calls of one model response run in
// parallel, writes and commands in order. Tool results go back to the
// model tagged as untrusted data, and denials go back as tool errors that
// name the step and rule. Every model call reserves its estimated cost
// against the session's budget first and charges the real cost after.
//
// Sessions are saved to the store after every turn and survive a daemon
// restart (Resume). When the conversation outgrows the model's context,
// older messages are replaced by a summary that is sent with every later
// request (never dropped), keeping the most recent messages verbatim and
// never separating a tool call from its result.
package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/mcp"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/session"
	"github.com/astrid-runtime/astrid/internal/tools"
	"github.com/astrid-runtime/astrid/sdk"
)

// Publisher delivers events to the frontends watching a session; the
// daemon implements it. Publish must not block.
type Publisher interface {
	Publish(e api.Event) api.Event
}

// Options configure a Runtime.
type Options struct {
	Core     *core.Core
	Config   *config.Config
	Provider llm.Provider
	Store    session.Store
	Events   Publisher
	Logger   *slog.Logger
	// Bash is the shell tool; nil leaves it out (no sandbox).
	Bash *tools.Bash
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HookStageRoot is a private directory outside $ASTRID_HOME where
	// hooks directories are staged for their commands; empty means
	// $TMPDIR/astrid-hooks-<uid>.
	HookStageRoot string
	// Bus receives the runtime's typed events (package events); nil means
	// a Bus of the Runtime's own (Runtime.Bus).
	Bus *events.Bus
}

// Runtime runs agent sessions. It is safe for concurrent use.
type Runtime struct {
	o   Options
	log *slog.Logger
	sub *subagents
	// mcp manages the MCP servers whose tools join every registry (nil:
	// none). Set once, before the first registry is built.
	mcp *mcp.Manager
	// shared holds the capsule tools every registry offers.
	shared *sharedTools

	trust *hooks.Trust // workspaces whose hooks the user trusted
	// hooksCfg is the [hooks] section in force (a reload replaces it).
	hooksCfg atomic.Pointer[config.Hooks]
	// capsuleHook calls the loaded capsules' [[interceptor]] exports
	// (capsule.Manager.Hook); nil: none. Set once, before the first turn.
	capsuleHook func(ctx context.Context, s security.Session, ev sdk.HookEvent) (sdk.HookVerdict, error)
	// capsuleWorkspace loads a trusted workspace's own capsules
	// (capsule.Manager.LoadWorkspace) before a model call there; nil:
	// none. Set once, before the first turn.
	capsuleWorkspace func(ctx context.Context, workspace string) error

	persona func() string // the spark persona for the system prompt
	extra   []tools.Tool  // tools added to every registry (task, spark)
	turns   sync.WaitGroup

	// storeMu orders loading saved sessions (read) against deleting them
	// (write), so that a session being deleted is never loaded again from
	// a record read before the deletion.
	storeMu sync.RWMutex

	mu       sync.Mutex
	sessions map[string]*live               // guarded by mu; loaded sessions
	regs     map[string]*tools.Registry     // guarded by mu; by workspace root
	pending  map[string]*pendingApproval    // guarded by mu; by request id
	elicits  map[string]*pendingElicitation // guarded by mu; by request id
	hooks    map[string]*hooks.Set          // guarded by mu; by workspace root
	closing  bool                           // guarded by mu
	mcpSeen  map[string]bool                // guarded by mu; MCP servers that were connected
}

// New returns a Runtime.
func New(o Options) (*Runtime, error) {
	switch {
	case o.Core == nil:
		return nil, errors.New("runtime: no core")
	case o.Config == nil:
		return nil, errors.New("runtime: no config")
	case o.Provider == nil:
		return nil, errors.New("runtime: no model provider")
	case o.Store == nil:
		return nil, errors.New("runtime: no session store")
	case o.Events == nil:
		return nil, errors.New("runtime: no event publisher")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Bus == nil {
		o.Bus = events.New(o.Now)
	}
	if o.HookStageRoot == "" {
		o.HookStageRoot = defaultHookStageRoot()
	}
	r := &Runtime{o: o, log: o.Logger, sessions: map[string]*live{}, regs: map[string]*tools.Registry{}, pending: map[string]*pendingApproval{}, elicits: map[string]*pendingElicitation{},
		hooks: map[string]*hooks.Set{}, trust: hooks.NewTrust(o.Core.Home.Path())}
	hc := o.Config.Hooks
	r.hooksCfg.Store(&hc)
	r.sub = newSubagents(o.Config.Subagents)
	r.shared = &sharedTools{r: r, tools: map[string]tools.Tool{}}
	sp, err := newSpark(o.Core.Home.Path() + "/spark.toml")
	if err != nil {
		return nil, err
	}
	r.persona = sp.persona
	r.extra = []tools.Tool{sp, &taskTool{r: r}}
	return r, nil
}

// live is a loaded session.
type live struct {
	mu     sync.Mutex
	rec    *session.Record // guarded by mu
	depth  int             // sub-agent depth: 0 for a user's session
	parent *live           // the session whose human answers approvals
	busy   bool            // guarded by mu; a turn runs
	// deleted (guarded by mu) marks a session deleted while loaded: it is
	// never saved again and starts no turn.
	deleted bool
	// saveMu makes each save (check deleted, write) one step against a
	// deletion.
	saveMu sync.Mutex
	turn   string // guarded by mu; the running turn's id
	cancel context.CancelFunc
	// queued are deferred approvals answered while the session was busy,
	// settled when it is let go (deferred.go).
	queued []approval.Deferred // guarded by mu
}

func newID(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return prefix + hex.EncodeToString(b[:])
}

// registry returns the tool registry of a workspace: the built-in tools
// with a path filter from that workspace's policy.
func (r *Runtime) registry(workspace string) (*tools.Registry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reg, ok := r.regs[workspace]; ok {
		return reg, nil
	}
	prof, err := r.o.Core.Profile(workspace)
	if err != nil {
		return nil, err
	}
	rules := prof.Rules
	reg := tools.New(tools.Options{PathFilter: func(p string) bool { return rules.Path(p, false) == nil }})
	if r.o.Bash != nil {
		if err := reg.Register(r.o.Bash); err != nil {
			return nil, err
		}
	}
	for _, t := range r.extra {
		if err := reg.Register(t); err != nil {
			return nil, err
		}
	}
	if r.mcp != nil {
		// The servers the workspace's own configuration adds are
		// untrusted: the Manager never starts them on its own, every call
		// asks, and only this workspace's registry offers their tools.
		servers, err := r.o.Core.WorkspaceServers(workspace)
		if err != nil {
			return nil, err
		}
		if len(servers) > 0 {
			if err := r.mcp.SetWorkspaceServers(workspace, servers); err != nil {
				return nil, err
			}
		}
		r.mcp.AttachWorkspace(reg, workspace) // MCP tools come and go with their servers
	}
	// NOTE: r.mu is held; the shared tools take their own lock only.
	if err := r.shared.addTo(reg, workspace); err != nil {
		return nil, err
	}
	r.regs[workspace] = reg
	return reg, nil
}

// asker returns the Asker of a session: approvals go to the frontends
// watching the top-level session (a sub-agent's human is its parent's).
func (r *Runtime) asker(l *live) approval.Asker {
	for l.parent != nil {
		l = l.parent
	}
	top := l
	return sessionAsker{r: r, session: top.rec.ID, Asker: r.hookAsker(top, approval.AskerFunc(func(ctx context.Context, req approval.Request) (approval.Answer, error) {
		return r.waitApproval(ctx, top.rec.ID, req)
	}))}
}

// sessionAsker is a session's Asker (PreApproval hooks, then a frontend's
// answer) and an approval.Registrar: the interceptor registers each
// request before it announces it, so a frontend's answer that comes at
// once is kept until the question is asked.
type sessionAsker struct {
	approval.Asker
	r       *Runtime
	session string
}

// Register implements approval.Registrar.
func (s sessionAsker) Register(req approval.Request) func() {
	p := &pendingApproval{session: s.session, answer: make(chan approval.Answer, 1)}
	s.r.mu.Lock()
	s.r.pending[req.ID] = p
	s.r.mu.Unlock()
	return func() {
		s.r.mu.Lock()
		if s.r.pending[req.ID] == p {
			delete(s.r.pending, req.ID)
		}
		s.r.mu.Unlock()
	}
}

// pendingApproval is a question waiting for a frontend's answer.
type pendingApproval struct {
	session  string
	answer   chan approval.Answer // buffered 1; receives the first answer
	answered bool                 // guarded by Runtime.mu; an answer was sent
}

// waitApproval waits for the answer to req: registered by the interceptor
// (sessionAsker.Register), or registered here for the time of the wait.
func (r *Runtime) waitApproval(ctx context.Context, session string, req approval.Request) (approval.Answer, error) {
	r.mu.Lock()
	p := r.pending[req.ID]
	if p == nil {
		p = &pendingApproval{session: session, answer: make(chan approval.Answer, 1)}
		r.pending[req.ID] = p
		defer func() {
			r.mu.Lock()
			delete(r.pending, req.ID)
			r.mu.Unlock()
		}()
	}
	r.mu.Unlock()
	// The daemon publishes approval_needed from the interceptor's notice.
	select {
	case a := <-p.answer:
		return a, nil
	case <-ctx.Done():
		return approval.Answer{}, ctx.Err()
	}
}

// Answer delivers a frontend's answer to a waiting approval request. The
// first answer wins; a later one gets api.ErrConflict, an unknown request
// api.ErrNotFound.
func (r *Runtime) Answer(session, request string, a approval.Answer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pending[request]
	if !ok || p.session != session {
		return fmt.Errorf("%w: no approval request %s is waiting in session %s", api.ErrNotFound, request, session)
	}
	if p.answered {
		return fmt.Errorf("%w: request %s was already answered", api.ErrConflict, request)
	}
	p.answered = true
	p.answer <- a // buffered: the one answer never blocks
	return nil
}

// publish sends one event of a session.
func (r *Runtime) publish(session string, typ api.EventType, data any) {
	e, err := api.NewEvent(session, typ, data)
	if err != nil {
		r.log.Error("cannot encode event", "type", typ, "err", err)
		return
	}
	r.o.Events.Publish(e)
}

// Bus is the Runtime's event bus.
func (r *Runtime) Bus() *events.Bus { return r.o.Bus }

// emit publishes a typed event on the bus.
func (r *Runtime) emit(kind events.Kind, session string, data any) {
	r.o.Bus.Publish(kind, session, data)
}

// emitMCP publishes an MCP server's state changes, tool calls and health
// checks on the bus, and shows progress, task status, URL elicitation
// completions and resource updates to the frontends of the session they
// belong to (daemon-wide when none).
func (r *Runtime) emitMCP(ev mcp.Event) {
	switch ev.Kind {
	case "tool_called":
		r.emit(events.MCPToolCalled, ev.Session, events.MCP{Server: ev.Server, Tool: ev.Tool})
		return
	case "tool_completed":
		r.emit(events.MCPToolCompleted, ev.Session, events.MCP{Server: ev.Server, Tool: ev.Tool, Error: ev.Error})
		return
	case "health":
		r.emit(events.HealthCheckCompleted, "", events.Health{Component: "mcp:" + ev.Server, OK: ev.Error == "", Error: ev.Error, Duration: ev.Duration})
		return
	case "progress":
		if ev.Session != "" {
			r.publish(ev.Session, api.EventMCPProgress, api.MCPProgress{Server: ev.Server, Tool: ev.Tool, Progress: ev.Progress, Total: ev.Total, Message: ev.Message})
		}
		return
	case "task":
		if ev.Session != "" {
			r.publish(ev.Session, api.EventMCPTask, api.MCPTask{Server: ev.Server, Tool: ev.Tool, Task: ev.ID, Status: ev.State, Message: ev.Message})
		}
		return
	case "elicitation_complete":
		r.publish(ev.Session, api.EventElicitationCompleted, api.ElicitationCompleted{Server: ev.Server, ElicitationID: ev.ID})
		return
	case "resource_updated":
		r.publish(ev.Session, api.EventMCPResourceUpdated, api.MCPResourceUpdated{Server: ev.Server, URI: ev.ID})
		return
	case "state":
	default:
		return
	}
	d := events.MCP{Server: ev.Server, State: ev.State, Error: ev.Error}
	switch ev.State {
	case mcp.StateRunning:
		r.mu.Lock()
		again := r.mcpSeen[ev.Server]
		if r.mcpSeen == nil {
			r.mcpSeen = map[string]bool{}
		}
		r.mcpSeen[ev.Server] = true
		r.mu.Unlock()
		r.emit(events.MCPServerConnected, "", d)
		if again {
			r.emit(events.MCPServerRestarted, "", d)
		}
	case mcp.StateStopped, mcp.StateFailed:
		r.emit(events.MCPServerDisconnected, "", d)
	}
}

// emitCapsule publishes a capsule's load, failure or unload.
func (r *Runtime) emitCapsule(t api.EventType, info api.CapsuleInfo) {
	d := events.Capsule{ID: info.ID, Version: info.Version, Error: info.Error}
	switch t {
	case api.EventCapsuleLoaded:
		r.emit(events.CapsuleLoaded, "", d)
	case api.EventCapsuleFailed:
		r.emit(events.CapsuleFailed, "", d)
	case api.EventCapsuleUnloaded:
		r.emit(events.CapsuleUnloaded, "", d)
	}
}

// emitCron publishes a capsule's cron run (capsule.Options.OnCron).
func (r *Runtime) emitCron(id, job string, err error) {
	d := events.Capsule{ID: id, Job: job}
	if err != nil {
		d.Error = err.Error()
	}
	r.emit(events.CapsuleCronRan, "", d)
}
