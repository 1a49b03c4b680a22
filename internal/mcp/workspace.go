package mcp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/config"
)

// Servers a workspace adds in its .astrid/config.toml are untrusted: the
// repository may have been written by anyone, the agent included. The
// Manager keeps them apart from the configured servers, by workspace
// root: they are forced untrusted (every call asks a human; no token,
// allowance or mode covers them) and never auto-started, their tools join
// only that workspace's registries, their roots are that workspace only,
// and a name the system or user configuration uses is refused.

// SetWorkspaceServers sets the servers a workspace root added. Servers of
// that workspace no longer listed, or listed with another configuration,
// are stopped and replaced. Nothing is started.
func (m *Manager) SetWorkspaceServers(workspace string, servers map[string]config.Server) error {
	if workspace == "" {
		return errors.New("mcp: workspace servers need a workspace root")
	}
	for name, s := range servers {
		if err := checkServer(name, s, m.o.Sandbox); err != nil {
			return fmt.Errorf("workspace %s: %w", workspace, err)
		}
		if m.server(name) != nil {
			return fmt.Errorf("workspace %s: mcp server %q is configured by the user; a workspace cannot add or change it", workspace, name)
		}
	}
	var stale []*server
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errors.New("mcp: manager closed")
	}
	old := m.wsServers[workspace]
	next := map[string]*server{}
	for name, cfg := range servers {
		cfg.Trusted, cfg.AutoStart = false, false
		if s, ok := old[name]; ok && reflect.DeepEqual(s.cfg, cfg) {
			next[name] = s
			continue
		}
		next[name] = &server{m: m, name: name, cfg: cfg, state: StateStopped, workspace: workspace}
	}
	for name, s := range old {
		if next[name] != s {
			stale = append(stale, s)
		}
	}
	if len(next) == 0 {
		delete(m.wsServers, workspace)
	} else {
		m.wsServers[workspace] = next
	}
	m.mu.Unlock()
	for _, s := range stale {
		s.stop(StateStopped, "")
	}
	return nil
}

// lookup finds a server by name: one the workspace added, else a
// configured one.
func (m *Manager) lookup(workspace, name string) (*server, error) {
	m.mu.Lock()
	s := m.wsServers[workspace][name]
	if s == nil {
		s = m.servers[name]
	}
	m.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotConfigured, name)
	}
	return s, nil
}

// all returns every server, the configured ones first, each group by
// name.
func (m *Manager) all() []*server {
	var out []*server
	for _, n := range m.names() {
		if s := m.server(n); s != nil { // an owned server may just have gone
			out = append(out, s)
		}
	}
	m.mu.Lock()
	roots := slices.Sorted(maps.Keys(m.wsServers))
	for _, ws := range roots {
		names := slices.Collect(maps.Keys(m.wsServers[ws]))
		sort.Strings(names)
		for _, n := range names {
			out = append(out, m.wsServers[ws][n])
		}
	}
	m.mu.Unlock()
	return out
}

// workspaceTools returns the tools of the running servers a workspace
// added.
func (m *Manager) workspaceTools(workspace string) []*Tool {
	if workspace == "" {
		return nil
	}
	m.mu.Lock()
	list := slices.Collect(maps.Values(m.wsServers[workspace]))
	m.mu.Unlock()
	var out []*Tool
	for _, s := range list {
		out = append(out, s.toolList()...)
	}
	return out
}

// StartIn starts a server as seen from a workspace: one the workspace
// added, else a configured one (Start). Only a human starts a workspace's
// server (astrid.startServer with the workspace); nothing starts it on
// its own.
func (m *Manager) StartIn(ctx context.Context, workspace, name string) (api.ServerInfo, error) {
	s, err := m.lookup(workspace, name)
	if err != nil {
		return api.ServerInfo{}, err
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return api.ServerInfo{}, errors.New("mcp: manager closed")
	}
	if err := s.start(ctx); err != nil {
		return s.info(), err
	}
	return s.info(), nil
}

// StopIn stops a server as seen from a workspace (see StartIn).
func (m *Manager) StopIn(workspace, name string) error {
	s, err := m.lookup(workspace, name)
	if err != nil {
		return err
	}
	s.stop(StateStopped, "")
	return nil
}
