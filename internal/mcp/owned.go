package mcp

import (
	"context"
	"errors"
	"fmt"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// Owned is an MCP server that another part of the runtime owns and runs
// through the Manager: a capsule's [[mcp_server]]. It is supervised,
// listed and stopped like a configured server, with three differences:
// it is added and removed at run time (AddOwned, RemoveOwned), its
// sandbox profile is its owner's (Profile), and its tools go to its owner
// (Tools) instead of to the registries Attach keeps in sync, so that the
// owner decides who sees them.
type Owned struct {
	// Name is the server's name, as in mcp__<name>__<tool>. It must be
	// free: AddOwned refuses a name a configured server or another owned
	// server has.
	Name string
	// Owner says who owns it ("capsule:notes"), for errors and logs.
	Owner string
	// Server is its configuration; only stdio is supported. Trusted false
	// makes every call of its tools ask (AlwaysAsk).
	Server config.Server
	// Profile builds the sandbox profile of the process from base, the
	// profile every stdio server gets (system directories read-only, the
	// directory of its binary, the toolchain directories, a private temp
	// dir as HOME, PATH, LANG and Server.Env, no network), and bin, the
	// resolved binary. An error refuses the start. Required.
	Profile func(base sandbox.Profile, bin string) (sandbox.Profile, error)
	// Tools is told when the server's tools change (start, restart, a
	// tools/list_changed, stop): old are withdrawn, new offered. Required.
	// It must not call back into the Manager.
	Tools func(old, new []tools.Tool)
}

// ErrNameTaken is returned by AddOwned for a name already in use.
var ErrNameTaken = errors.New("mcp server name taken")

// AddOwned adds an owned server and starts it; it returns once the server
// listed its tools (or failed to start, in which case it is removed
// again and the error returned).
func (m *Manager) AddOwned(ctx context.Context, o Owned) (api.ServerInfo, error) {
	switch {
	case !validServerName(o.Name):
		return api.ServerInfo{}, fmt.Errorf("mcp server name %q: want 1-64 letters, digits, '-' or '_'", o.Name)
	case o.Server.Transport != "stdio" || o.Server.Command == "":
		return api.ServerInfo{}, fmt.Errorf("mcp server %s: an owned server must be a stdio command", o.Name)
	case o.Profile == nil || o.Tools == nil:
		return api.ServerInfo{}, fmt.Errorf("mcp server %s: an owned server needs Profile and Tools", o.Name)
	case m.o.Sandbox == nil:
		return api.ServerInfo{}, fmt.Errorf("mcp server %s: stdio servers need the sandbox", o.Name)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return api.ServerInfo{}, errors.New("mcp: manager closed")
	}
	if prev, ok := m.servers[o.Name]; ok {
		m.mu.Unlock()
		by := "the configured server [servers." + o.Name + "]"
		if prev.owned != nil {
			by = prev.owned.Owner
		}
		return api.ServerInfo{}, fmt.Errorf("%w: %s cannot use %q: it is %s", ErrNameTaken, o.Owner, o.Name, by)
	}
	own := o
	s := &server{m: m, name: o.Name, cfg: o.Server, state: StateStopped, owned: &own}
	m.servers[o.Name] = s
	m.mu.Unlock()
	if err := s.start(ctx); err != nil {
		info := s.info()
		m.forget(s)
		return info, err
	}
	return s.info(), nil
}

// RemoveOwned stops an owned server (its tools are withdrawn through
// Owned.Tools) and forgets it. ErrNotConfigured for a name that is not an
// owned server.
func (m *Manager) RemoveOwned(ctx context.Context, name string) error {
	s := m.server(name)
	if s == nil || s.owned == nil {
		return fmt.Errorf("%w: no owned server %q", ErrNotConfigured, name)
	}
	m.forget(s)
	return nil
}

// forget stops s and removes it from the servers.
func (m *Manager) forget(s *server) {
	s.stop(StateStopped, "")
	m.mu.Lock()
	if m.servers[s.name] == s {
		delete(m.servers, s.name)
	}
	m.mu.Unlock()
}

// Owner returns the owner of an owned server, "" for a configured one or
// an unknown name.
func (m *Manager) Owner(name string) string {
	if s := m.server(name); s != nil && s.owned != nil {
		return s.owned.Owner
	}
	return ""
}

// PID returns the process id of a running stdio server, 0 when none runs.
func (m *Manager) PID(name string) int {
	s := m.server(name)
	if s == nil {
		return 0
	}
	c := s.current()
	if c == nil || c.proc == nil {
		return 0
	}
	return c.proc.cmd.Pid()
}

// swap withdraws old and offers new: to the owner of an owned server,
// else to every attached registry.
func (s *server) swap(old, new []*Tool) {
	if s.owned == nil {
		s.m.swapTools(s.workspace, old, new)
		return
	}
	s.owned.Tools(asTools(old), asTools(new))
}

func asTools(ts []*Tool) []tools.Tool {
	out := make([]tools.Tool, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

// profile returns the sandbox profile of the server's process.
func (s *server) profile(bin, tempDir string) (sandbox.Profile, error) {
	if s.owned == nil {
		return ServerProfile(s.cfg, bin, tempDir, s.m.o.ToolchainDirs), nil
	}
	// NOTE: the base of an owned server grants neither its arguments'
	// paths nor a working directory, as a configured server's does: its
	// owner grants what it may touch.
	base := ServerProfile(config.Server{Env: s.cfg.Env}, bin, tempDir, s.m.o.ToolchainDirs)
	return s.owned.Profile(base, bin)
}
