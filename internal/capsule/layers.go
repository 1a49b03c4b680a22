package capsule

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// WorkspaceToolSink is a ToolSink that can offer a tool to the sessions of
// one workspace only; the runtime's implements it. Without it, workspace
// capsules do not load.
type WorkspaceToolSink interface {
	ToolSink
	// ReplaceIn is Replace, with new offered to the sessions of
	// workspace only.
	ReplaceIn(workspace string, old []string, new []tools.Tool) error
}

// WorkspaceTrust says whether the user trusted a workspace's own
// extensions; *hooks.Trust implements it (the trust `astrid hooks trust`
// records covers the workspace's capsules too).
type WorkspaceTrust interface {
	Digest(workspace string) (string, error)
}

// ErrUntrusted: a workspace's capsules load only after the user trusted
// the workspace.
var ErrUntrusted = errors.New("capsule: the workspace is not trusted (astrid hooks trust)")

// Store returns the user layer of installed capsules.
func (m *Manager) Store() *capsulepkg.Store { return m.user }

// newStore configures a layer with the Manager's services.
func (m *Manager) newStore(s *capsulepkg.Store) *capsulepkg.Store {
	s.Audit, s.Tokens, s.KV, s.Sealer, s.Logger = m.o.Audit, m.o.Tokens, m.o.KV, m.o.Sealer, m.log
	s.AllowUnhashed = m.eng.limits.AllowUnhashed
	s.Check = func(ctx context.Context, wasm []byte) error {
		cm, err := m.eng.rt.CompileModule(ctx, wasm)
		if err != nil {
			return fmt.Errorf("%w: %v", capsulepkg.ErrBadModule, err)
		}
		return cm.Close(ctx)
	}
	return s
}

// WorkspaceStore returns the layer of a workspace (an absolute root),
// configured with the Manager's services.
func (m *Manager) WorkspaceStore(workspace string) *capsulepkg.Store {
	return m.newStore(capsulepkg.WorkspaceStore(m.o.Home, filepath.Clean(workspace)))
}

// storeOf returns the layer and package name of a capsule id: "<name>"
// is the user's, "<name>.ws-<digest>" a workspace's registered by
// LoadWorkspace.
func (m *Manager) storeOf(id string) (*capsulepkg.Store, string, error) {
	name, suffix, ws := strings.Cut(id, ".")
	if !capsulepkg.ValidName(name) {
		return nil, "", fmt.Errorf("%w: capsule %q", api.ErrNotFound, id)
	}
	if !ws {
		return m.user, name, nil
	}
	m.mu.Lock()
	st, ok := m.workspaces[suffix]
	m.mu.Unlock()
	if !ok || st.ID(name) != id {
		return nil, "", fmt.Errorf("%w: capsule %q (its workspace is not loaded)", api.ErrNotFound, id)
	}
	return st, name, nil
}

// Install installs a capsule in the user layer (see capsulepkg.Store).
func (m *Manager) Install(ctx context.Context, src string, o capsulepkg.InstallOptions) (*capsulepkg.Installed, error) {
	return m.user.Install(ctx, src, o)
}

// Info describes a capsule of the user layer and re-verifies its module.
func (m *Manager) Info(name string) (*capsulepkg.Installed, error) { return m.user.Info(name) }

// Remove unloads and uninstalls a capsule (by id): the grant token is
// revoked, its kv store deleted, its files and grant removed.
func (m *Manager) Remove(ctx context.Context, id string) error {
	st, name, err := m.storeOf(id)
	if err != nil {
		return err
	}
	if _, err := st.ReadGrant(name); err != nil {
		return err
	}
	if err := m.Unload(ctx, id); err != nil && !errors.Is(err, api.ErrNotFound) {
		return err
	}
	if err := st.Remove(ctx, name); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.failed, id)
	delete(m.failedStamp, id)
	m.mu.Unlock()
	return nil
}

// InstalledCapsules lists the capsules of the user layer and of every
// workspace registered with LoadWorkspace.
func (m *Manager) InstalledCapsules() ([]capsulepkg.Installed, error) {
	out, err := m.user.List()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	stores := make([]*capsulepkg.Store, 0, len(m.workspaces))
	for _, st := range m.workspaces {
		stores = append(stores, st)
	}
	m.mu.Unlock()
	for _, st := range stores {
		if !m.trusted(st.Workspace) {
			continue // trust was revoked: Rescan unloads its capsules
		}
		more, err := st.List()
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// trusted reports whether the user trusted a workspace; any error is a
// no.
func (m *Manager) trusted(workspace string) bool {
	if m.o.Trust == nil {
		return false
	}
	d, err := m.o.Trust.Digest(workspace)
	return err == nil && d != ""
}

// LoadWorkspace loads the capsules installed in a workspace's layer
// (<workspace>/.astrid/capsules). They are untrusted like workspace hooks:
// nothing loads unless the user trusted the workspace (ErrUntrusted), each
// must match the grant the user gave at install (its hash included, since
// the repository can change the files), and its tools are offered to the
// sessions of that workspace only. The workspace is remembered: Rescan
// picks up its changes, and unloads its capsules when trust is revoked;
// a second call for it does nothing. It returns the load failures joined.
func (m *Manager) LoadWorkspace(ctx context.Context, workspace string) error {
	if !filepath.IsAbs(workspace) {
		return fmt.Errorf("capsule: workspace %q is not absolute", workspace)
	}
	if _, ok := m.o.Tools.(WorkspaceToolSink); !ok {
		return errors.New("capsule: this runtime cannot scope tools to a workspace; workspace capsules are not loaded")
	}
	if !m.trusted(filepath.Clean(workspace)) {
		return fmt.Errorf("%w: %s", ErrUntrusted, workspace)
	}
	st := m.WorkspaceStore(workspace)
	key := strings.TrimPrefix(st.ID("x"), "x.")
	m.mu.Lock()
	_, known := m.workspaces[key]
	m.workspaces[key] = st
	m.mu.Unlock()
	if known {
		return nil // loaded before; Rescan keeps it current
	}
	all, err := st.List()
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
