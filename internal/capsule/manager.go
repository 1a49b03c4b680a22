package capsule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/tools"
	"github.com/astrid-runtime/astrid/sdk"
)

// ToolSink is where a Manager registers the tools of the capsules it
// loads and removes them at unload; *tools.Registry implements it.
type ToolSink interface {
	Register(t tools.Tool) error
	Unregister(name string) bool
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
	// Dir holds the installed capsules: Dir/<name>/ and Dir/<name>.grant.json
	// ($ASTRID_HOME/capsules).
	Dir string
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
	case o.Dir == "" || !filepath.IsAbs(o.Dir):
		return nil, errors.New("capsule: the capsules directory must be absolute")
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
		loaded: map[string]*Capsule{}, failed: map[string]string{}, failedStamp: map[string]string{}, uplinks: map[string]string{}, jobs: map[string]*cronJob{}}
	eng, err := newEngine(ctx, o.Limits, o.CacheDir, newHostFuncs(m), o.Logger)
	if err != nil {
		return nil, err
	}
	m.eng = eng
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
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.Tick(ctx, m.now())
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
		man, _ := readManifest(filepath.Join(m.o.Dir, id))
		st := m.stamp(id, man)
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
		if errors.Is(err, ErrHashMismatch) || errors.Is(err, ErrUnhashed) || errors.Is(err, ErrBadModule) {
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
			if err := m.o.Tools.Register(tool{c: c, decl: d}); err != nil {
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
	if !nameRE.MatchString(id) {
		return nil, fmt.Errorf("%w: capsule %q", api.ErrNotFound, id)
	}
	g, err := m.readGrant(id)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(m.o.Dir, id)
	man, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	if man.Package.Name != id {
		return nil, fmt.Errorf("capsule %s: the manifest names %q", id, man.Package.Name)
	}
	if err := man.Capabilities.within(g.Capabilities); err != nil {
		return nil, fmt.Errorf("capsule %s asks for more than was granted at install (%v); install it again to grant it", id, err)
	}
	c := &Capsule{m: m, id: id, dir: dir, man: man, caps: man.Capabilities, env: g.Env, stamp: m.stamp(id, man)}
	if man.Component != nil {
		wasm, err := readBounded(filepath.Join(dir, filepath.FromSlash(man.Component.Entrypoint)), MaxModuleSize)
		if err != nil {
			return nil, fmt.Errorf("capsule %s: %w", id, err)
		}
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
		if filepath.Dir(dir) != filepath.Clean(m.o.Dir) || !nameRE.MatchString(filepath.Base(dir)) {
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
		if _, err := m.Load(ctx, in.Grant.Name); err != nil {
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
		id := in.Grant.Name
		installed[id] = true
		st := m.stamp(id, in.Manifest)
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
func (m *Manager) stamp(id string, man *Manifest) string {
	files := []string{m.grantPath(id), filepath.Join(m.o.Dir, id, ManifestFile)}
	if man != nil && man.Component != nil {
		files = append(files, filepath.Join(m.o.Dir, id, filepath.FromSlash(man.Component.Entrypoint)))
	}
	var b []byte
	for _, f := range files {
		if data, err := readBounded(f, MaxModuleSize); err == nil {
			b = append(b, Hash(data)...)
		}
		b = append(b, ';')
	}
	return string(b)
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
	if c.mod != nil {
		engine = "wasm"
	}
	return api.CapsuleInfo{ID: c.id, Name: c.man.Package.Name, Version: c.man.Package.Version, Engine: engine, State: "loaded"}
}

func readManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := readBounded(path, MaxManifestSize)
	if err != nil {
		return nil, err
	}
	return ParseManifest(path, data)
}

// readBounded reads a regular file of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// within reports (as an error naming the first excess) whether c asks for
// nothing beyond g.
func (c Capabilities) within(g Capabilities) error {
	for _, l := range []struct {
		name     string
		ask, got []string
	}{{"net", c.Net, g.Net}, {"fs_read", c.FSRead, g.FSRead}, {"fs_write", c.FSWrite, g.FSWrite}, {"ipc", c.IPC, g.IPC}} {
		for _, x := range l.ask {
			if !slices.Contains(l.got, x) {
				return fmt.Errorf("%s %q", l.name, x)
			}
		}
	}
	for _, b := range []struct {
		name     string
		ask, got bool
	}{{"http", c.HTTP, g.HTTP}, {"kv", c.KV, g.KV}, {"uplink", c.Uplink, g.Uplink}, {"cron", c.Cron, g.Cron}, {"elicit", c.Elicit, g.Elicit}} {
		if b.ask && !b.got {
			return errors.New(b.name)
		}
	}
	return nil
}
