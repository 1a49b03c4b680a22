package capsule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/tools"
	"github.com/astrid-runtime/astrid/sdk"
)

// ToolSink is where a Manager registers the tools of the capsules it
// loads and removes them at unload; *tools.Registry implements it.
type ToolSink interface {
	Unregister(name string) bool
	// Replace withdraws the tools named old and offers new in one step
	// (tools.Registry.Replace).
	Replace(old []string, new []tools.Tool) error
}

// Uplink delivers a capsule's message to the user of a session through
// that session's frontend. The runtime implements it.
type Uplink interface {
	Send(ctx context.Context, s security.Session, capsule, text string) error
}

// Elicitor asks the user of a session a question on a capsule's behalf
// and returns the answer. The runtime implements it.
type Elicitor interface {
	Elicit(ctx context.Context, s security.Session, capsule string, req sdk.ElicitRequest) (string, error)
}

// Options configure a Manager. Interceptor, Audit, KV and Dir are
// required.
type Options struct {
	// Home is $ASTRID_HOME. The user layer of installed capsules is
	// Home/capsules (capsulepkg.UserStore); workspace layers keep their
	// grants under it too.
	Home string
	// Sealer opens the [env] secrets of grants (and seals them at
	// install); nil fails to load a capsule that has one.
	Sealer *capsulepkg.Sealer
	// Trust says which workspaces the user trusted; nil trusts none
	// (LoadWorkspace refuses).
	Trust WorkspaceTrust
	// Interceptor judges every gated host call, tool call and cron run.
	Interceptor *security.Interceptor
	// Audit receives the refusals the capsule runtime decides itself (see
	// RuleGrant); the same log as the interceptor's.
	Audit security.Auditor
	// Tokens issues the grant token at install and revokes it at remove;
	// nil makes Install and Remove fail.
	Tokens *capability.Service
	// KV persists the capsules' key-value stores.
	KV KV
	// Tools receives the tools of loaded capsules; nil registers them
	// nowhere (Tools still lists them).
	Tools ToolSink
	// Limits bound each capsule ([capsules] in the user configuration).
	Limits Limits
	// CacheDir holds wazero's compilation cache; "" compiles every load.
	CacheDir string
	// Uplink and Elicit serve uplink_send and elicit; nil fails those
	// calls.
	Uplink Uplink
	Elicit Elicitor
	Logger *slog.Logger
	// Now is the clock of the cron scheduler; nil means time.Now.
	Now func() time.Time
	// Deferred is the interceptor's queue of deferred approvals: a
	// capsule's deferred host call runs once its approval is granted
	// (deferred.go). Nil: deferred calls are never resumed.
	Deferred approval.DeferredStore
	// MCP runs the capsules' [[mcp_server]] entries (mcp.go); nil fails
	// the load of a capsule that has one.
	MCP MCPHost
	// StageRoot holds the copies of capsule directories their MCP servers
	// run in; it must lie outside Home. "" means a directory in the
	// system's temp dir.
	StageRoot string
	// Notify, if set, is told of every load (api.EventCapsuleLoaded),
	// failed load (api.EventCapsuleFailed) and unload
	// (api.EventCapsuleUnloaded), for the daemon to publish. It must not
	// block.
	Notify func(t api.EventType, info api.CapsuleInfo)
	// OnCron, if set, is told of every cron run once it ended: the
	// capsule, the job, and the error when the run was refused or
	// failed. It must not block.
	OnCron func(id, job string, err error)
}

// Manager loads, runs and unloads capsules. It is safe for concurrent
// use. The daemon's Backend methods map onto it one to one: ListCapsules
// → List, LoadCapsule → Load, UnloadCapsule → Unload.
type Manager struct {
	o   Options
	ic  *security.Interceptor
	kv  KV
	log *slog.Logger
	eng *engine
	bus *bus
	now func() time.Time

	audit security.Auditor

	mu     sync.Mutex
	loaded map[string]*Capsule // guarded by mu; by id
	failed map[string]string   // guarded by mu; id -> why the last load failed
	// failedStamp is the stamp of the files of a failed load, so that
	// Rescan retries only after they change.
	failedStamp map[string]string   // guarded by mu
	uplinks     map[string]string   // guarded by mu; uplink name -> capsule id
	jobs        map[string]*cronJob // guarded by mu; "<id>/<name>"
	// workspaces are the layers LoadWorkspace registered, by the suffix
	// of their capsules' ids ("ws-<digest>").
	workspaces map[string]*capsulepkg.Store // guarded by mu

	user *capsulepkg.Store

	// hf are the host functions (deferred calls are replayed through
	// them); resumeMu serialises the resumption of deferred calls.
	hf       *hostFuncs
	resumeMu sync.Mutex

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New returns a Manager. Close releases it.
func New(ctx context.Context, o Options) (*Manager, error) {
	switch {
	case o.Interceptor == nil:
		return nil, errors.New("capsule: no interceptor")
	case o.Audit == nil:
		return nil, errors.New("capsule: no audit log")
	case o.KV == nil:
		return nil, errors.New("capsule: no kv store")
	case o.Home == "" || !filepath.IsAbs(o.Home):
		return nil, errors.New("capsule: the home directory must be absolute")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Notify == nil {
		o.Notify = func(api.EventType, api.CapsuleInfo) {}
	}
	m := &Manager{o: o, ic: o.Interceptor, kv: o.KV, audit: o.Audit, log: o.Logger, bus: newBus(), now: o.Now,
		loaded: map[string]*Capsule{}, failed: map[string]string{}, failedStamp: map[string]string{}, uplinks: map[string]string{}, jobs: map[string]*cronJob{}, workspaces: map[string]*capsulepkg.Store{}}
	m.hf = newHostFuncs(m)
	eng, err := newEngine(ctx, o.Limits, o.CacheDir, m.hf, o.Logger)
	if err != nil {
		return nil, err
	}
	m.eng = eng
	m.user = m.newStore(capsulepkg.UserStore(o.Home))
	return m, nil
}

// Start runs the cron scheduler until ctx ends or Close. It returns at
// once.
func (m *Manager) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.stop = cancel
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastDeferred := time.Now(), time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.Tick(ctx, m.now())
				if m.o.Deferred != nil && time.Since(lastDeferred) >= deferredInterval {
					m.ResumeDeferred(ctx)
					lastDeferred = time.Now()
				}
				if time.Since(last) >= RescanInterval {
					m.Rescan(ctx)
					last = time.Now()
				}
			}
		}
	}()
}

// Close stops the scheduler, unloads every capsule and closes the engine.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	stop := m.stop
	ids := make([]string, 0, len(m.loaded))
	for id := range m.loaded {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	if stop != nil {
		stop()
	}
	m.wg.Wait()
	for _, id := range ids {
		_ = m.Unload(ctx, id)
	}
	return m.eng.close(ctx)
}

// Load loads an installed capsule by id: it reads the manifest, checks
// that its capabilities are within the grant recorded at install, checks
// the component's hash, compiles it, and registers its tools and cron
// jobs. Loading a loaded capsule reloads it (changes on disk are picked
// up). A failure leaves the capsule unloaded and is reported by List.
func (m *Manager) Load(ctx context.Context, id string) (api.CapsuleInfo, error) {
	info, err := m.load(ctx, id)
	if err != nil {
		st := m.stamp(id)
		m.mu.Lock()
		m.failedStamp[id] = st
		m.mu.Unlock()
		m.o.Notify(api.EventCapsuleFailed, info)
	} else {
		m.o.Notify(api.EventCapsuleLoaded, info)
	}
	return info, err
}

func (m *Manager) load(ctx context.Context, id string) (api.CapsuleInfo, error) {
	if m.o.Tokens != nil {
		// The grant token may have been issued by another process (astrid
		// capsule install while the daemon runs).
		if err := m.o.Tokens.Reload(ctx); err != nil {
			return api.CapsuleInfo{ID: id, Name: id, State: "failed", Error: err.Error()}, err
		}
	}
	c, err := m.open(ctx, id)
	if err != nil {
		if errors.Is(err, capsulepkg.ErrHashMismatch) || errors.Is(err, capsulepkg.ErrUnhashed) || errors.Is(err, capsulepkg.ErrBadModule) || errors.Is(err, capsulepkg.ErrSecretTampered) {
			m.refuseLoad(ctx, id, err)
		}
		m.mu.Lock()
		m.failed[id] = err.Error()
		m.mu.Unlock()
		return api.CapsuleInfo{ID: id, Name: id, State: "failed", Error: err.Error()}, err
	}
	if err := m.Unload(ctx, id); err != nil && !errors.Is(err, api.ErrNotFound) {
		c.close(ctx)
		return api.CapsuleInfo{ID: id, Name: id, State: "failed", Error: err.Error()}, err
	}
	var registered []string
	if m.o.Tools != nil {
		for _, d := range c.man.Tools {
			if err := m.register(c, tool{c: c, decl: d}); err != nil {
				for _, n := range registered {
					m.o.Tools.Unregister(n)
				}
				c.close(ctx)
				err = fmt.Errorf("capsule %s: tool %s: %w", id, d.Name, err)
				m.mu.Lock()
				m.failed[id] = err.Error()
				m.mu.Unlock()
				return api.CapsuleInfo{ID: id, Name: id, State: "failed", Error: err.Error()}, err
			}
			registered = append(registered, d.Name)
		}
	}
	if err := m.startServers(ctx, c); err != nil {
		for _, n := range registered {
			m.o.Tools.Unregister(n)
		}
		c.close(ctx)
		m.mu.Lock()
		m.failed[id] = err.Error()
		m.mu.Unlock()
		return api.CapsuleInfo{ID: id, Name: id, State: "failed", Error: err.Error()}, err
	}
	m.mu.Lock()
	m.loaded[id] = c
	delete(m.failed, id)
	delete(m.failedStamp, id)
	for _, j := range c.man.Cron {
		m.addJobLocked(id, j.Name, j.Schedule, j.Action, false)
	}
	m.mu.Unlock()
	m.log.Info("capsule loaded", "capsule", id, "version", c.man.Package.Version, "tools", len(c.man.Tools))
	return c.info(), nil
}

// RuleHash is the audit rule of a load refused because the component is
// not the one the manifest pins (or pins none, or breaks the ABI).
const RuleHash = "capsule_hash"

// refuseLoad records a refused load in the audit log.
func (m *Manager) refuseLoad(ctx context.Context, id string, why error) {
	cs := &callState{c: &Capsule{m: m, id: id}, sess: security.Session{ID: "capsule:" + id + ":load", Principal: "capsule:" + id, Frontend: "daemon"}}
	res, err := security.CapsuleURI(id, "load")
	if err != nil {
		return
	}
	_ = cs.refuse(ctx, security.Capsule, res, nil, RuleHash, "load refused: "+why.Error())
}

// open reads, checks and compiles an installed capsule.
func (m *Manager) open(ctx context.Context, id string) (*Capsule, error) {
	st, name, err := m.storeOf(id)
	if err != nil {
		return nil, err
	}
	if st.Workspace != "" && !m.trusted(st.Workspace) {
		return nil, fmt.Errorf("capsule %s: %w: %s", id, ErrUntrusted, st.Workspace)
	}
	g, err := st.ReadGrant(name)
	if err != nil {
		return nil, err
	}
	dir := st.CapsuleDir(name)
	man, err := capsulepkg.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if man.Package.Name != name {
		return nil, fmt.Errorf("capsule %s: the manifest names %q", id, man.Package.Name)
	}
	var wasm []byte
	if man.Component != nil {
		if wasm, err = capsulepkg.ReadBounded(filepath.Join(dir, filepath.FromSlash(man.Component.Entrypoint)), capsulepkg.MaxModuleSize); err != nil {
			return nil, fmt.Errorf("capsule %s: %w", id, err)
		}
	}
	if err := st.Verify(g, man, wasm); err != nil {
		return nil, fmt.Errorf("capsule %s: %w", id, err)
	}
	env, err := m.o.Sealer.OpenEnv(id, g)
	if err != nil {
		return nil, err
	}
	c := &Capsule{m: m, id: id, dir: dir, workspace: st.Workspace, man: man, caps: man.Capabilities, env: env, stamp: m.stamp(id), grant: g}
	if man.Component != nil {
		if c.mod, err = m.eng.compile(ctx, wasm, man.Component.Hash); err != nil {
			return nil, fmt.Errorf("capsule %s: %w", id, err)
		}
	}
	return c, nil
}

// Unload stops a capsule: its tools and cron jobs are removed, its
// subscriptions dropped and its module closed. An unknown id wraps
// api.ErrNotFound.
func (m *Manager) Unload(ctx context.Context, id string) error {
	m.mu.Lock()
	c, ok := m.loaded[id]
	if ok {
		delete(m.loaded, id)
		for k, j := range m.jobs {
			if j.capsule == id {
				delete(m.jobs, k)
			}
		}
		for n, owner := range m.uplinks {
			if owner == id {
				delete(m.uplinks, n)
			}
		}
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: capsule %q is not loaded", api.ErrNotFound, id)
	}
	if m.o.Tools != nil {
		for _, d := range c.man.Tools {
			m.o.Tools.Unregister(d.Name)
		}
	}
	m.stopServers(ctx, c)
	m.bus.drop(id)
	c.close(ctx)
	m.log.Info("capsule unloaded", "capsule", id)
	info := c.info()
	info.State = "unloaded"
	m.o.Notify(api.EventCapsuleUnloaded, info)
	return nil
}

// ListCapsules, LoadCapsule and UnloadCapsule are the daemon API's
// methods (daemon.Backend) over the Manager.

// ListCapsules implements astrid.listCapsules.
func (m *Manager) ListCapsules() api.ListCapsulesResult {
	return api.ListCapsulesResult{Capsules: m.List()}
}

// LoadCapsule implements astrid.loadCapsule: by id, or by the path of an
// installed capsule's directory. A directory that is not installed is
// refused (api.ErrInvalidParams): installing is where the user grants
// capabilities.
func (m *Manager) LoadCapsule(ctx context.Context, p api.LoadCapsuleParams) (api.CapsuleInfo, error) {
	id := p.ID
	if p.Path != "" {
		dir := filepath.Clean(p.Path)
		if filepath.Dir(dir) != filepath.Clean(m.user.Dir) || !capsulepkg.ValidName(filepath.Base(dir)) {
			return api.CapsuleInfo{}, fmt.Errorf("%w: %s is not an installed capsule; install it first (astrid capsule install %s)", api.ErrInvalidParams, p.Path, p.Path)
		}
		id = filepath.Base(dir)
	}
	return m.Load(ctx, id)
}

// UnloadCapsule implements astrid.unloadCapsule.
func (m *Manager) UnloadCapsule(ctx context.Context, p api.UnloadCapsuleParams) (api.Empty, error) {
	return api.Empty{}, m.Unload(ctx, p.ID)
}

// LoadInstalled loads every installed capsule (at daemon start). It
// returns the failures joined; the others are loaded.
func (m *Manager) LoadInstalled(ctx context.Context) error {
	all, err := m.InstalledCapsules()
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range all {
		if _, err := m.Load(ctx, in.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Rescan picks up changes on disk: a loaded capsule whose manifest,
// module or grant changed is reloaded (and checked again), one that was
// removed is unloaded, and a newly installed one is loaded. Start calls
// it every RescanInterval.
func (m *Manager) Rescan(ctx context.Context) {
	all, err := m.InstalledCapsules()
	if err != nil {
		m.log.Warn("capsule rescan failed", "err", err)
		return
	}
	installed := map[string]bool{}
	for _, in := range all {
		id := in.ID
		installed[id] = true
		st := m.stamp(id)
		m.mu.Lock()
		c, loaded := m.loaded[id]
		fst, failed := m.failedStamp[id]
		m.mu.Unlock()
		switch {
		case failed && fst == st:
			// Nothing changed since the last failed attempt.
		case loaded && c.stamp == st:
		default:
			if _, err := m.Load(ctx, id); err != nil {
				m.log.Warn("capsule reload failed", "capsule", id, "err", err)
			}
		}
	}
	m.mu.Lock()
	var gone []string
	for id := range m.loaded {
		if !installed[id] {
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		_ = m.Unload(ctx, id)
	}
}

// RescanInterval is how often Start looks for changes on disk.
const RescanInterval = 5 * time.Second

// stamp identifies the files of an installed capsule as they are now:
// the BLAKE3 hashes of its grant, manifest and module (a few
// milliseconds for a Go module; modification times can be too coarse).
func (m *Manager) stamp(id string) string {
	st, name, err := m.storeOf(id)
	if err != nil {
		return ""
	}
	dir := st.CapsuleDir(name)
	files := []string{st.GrantFile(name), filepath.Join(dir, capsulepkg.ManifestFile)}
	if man, err := capsulepkg.ReadManifest(dir); err == nil && man.Component != nil {
		files = append(files, filepath.Join(dir, filepath.FromSlash(man.Component.Entrypoint)))
	}
	var b []byte
	for _, f := range files {
		if data, err := capsulepkg.ReadBounded(f, capsulepkg.MaxModuleSize); err == nil {
			b = append(b, capsulepkg.Hash(data)...)
		}
		b = append(b, ';')
	}
	return string(b)
}

// register offers a capsule's tool: to every session, or for a
// workspace capsule to its workspace's sessions only.
func (m *Manager) register(c *Capsule, t tools.Tool) error {
	return m.replace(c, nil, []tools.Tool{t})
}

// replace withdraws the tools named old and offers new, in one step, where
// c's tools go: every session, or the sessions of c's workspace only.
func (m *Manager) replace(c *Capsule, old []string, new []tools.Tool) error {
	if c.workspace == "" {
		return m.o.Tools.Replace(old, new)
	}
	ws, ok := m.o.Tools.(WorkspaceToolSink)
	if !ok {
		return errors.New("this runtime cannot scope tools to a workspace")
	}
	return ws.ReplaceIn(c.workspace, old, new)
}

// List describes the loaded capsules and those whose last load failed,
// sorted by id.
func (m *Manager) List() []api.CapsuleInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.CapsuleInfo, 0, len(m.loaded)+len(m.failed))
	for id, c := range m.loaded {
		in := c.info()
		if why, ok := m.failed[id]; ok {
			in.Error = "reload failed; the previous version still runs: " + why
		}
		out = append(out, in)
	}
	for id, why := range m.failed {
		if _, ok := m.loaded[id]; !ok {
			out = append(out, api.CapsuleInfo{ID: id, Name: id, State: "failed", Error: why})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Capsule returns a loaded capsule.
func (m *Manager) Capsule(id string) (*Capsule, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.loaded[id]
	return c, ok
}

// Tools returns the tools of the loaded capsules, for a runtime that
// builds registries itself instead of giving a ToolSink.
func (m *Manager) Tools() []tools.Tool {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tools.Tool
	for _, c := range m.loaded {
		for _, d := range c.man.Tools {
			out = append(out, tool{c: c, decl: d})
		}
	}
	slices.SortFunc(out, func(a, b tools.Tool) int {
		x, y := a.Spec().Name, b.Spec().Name
		if x < y {
			return -1
		}
		if x > y {
			return 1
		}
		return 0
	})
	return out
}

func (c *Capsule) info() api.CapsuleInfo {
	engine := "static"
	switch {
	case c.mod != nil:
		engine = "wasm"
	case len(c.man.MCPServers) > 0:
		engine = "mcp"
	}
	return api.CapsuleInfo{ID: c.id, Name: c.man.Package.Name, Version: c.man.Package.Version, Engine: engine, State: "loaded"}
}
