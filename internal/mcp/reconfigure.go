package mcp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"

	"github.com/astrid-runtime/astrid/internal/config"
)

// Changes of a server under Reconfigure.
const (
	ServerAdded   = "added"
	ServerRemoved = "removed"
	ServerChanged = "changed"
)

// Reconfigure applies a new set of configured servers (a configuration
// reload): a server no longer configured is stopped and forgotten, one
// whose configuration changed is stopped and replaced, and new or changed
// ones are started when they are auto_start and trusted (the others stay
// stopped until astrid.startServer). Unchanged servers are left alone.
//
// The whole set is checked first; if one server is invalid, nothing
// changes. It returns what happened to each server that changed; start
// failures are reported in the servers' state and returned joined.
func (m *Manager) Reconfigure(ctx context.Context, servers map[string]config.Server) (map[string]string, error) {
	for _, name := range slices.Sorted(maps.Keys(servers)) {
		if err := checkServer(name, servers[name], m.o.Sandbox); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("mcp: manager closed")
	}
	old := maps.Clone(m.servers)
	m.mu.Unlock()
	changes := map[string]string{}
	for name, s := range old {
		if s.owned != nil {
			continue // a capsule's server: its owner adds and removes it
		}
		cfg, ok := servers[name]
		switch {
		case !ok:
			changes[name] = ServerRemoved
		case !reflect.DeepEqual(cfg, s.cfg):
			changes[name] = ServerChanged
		default:
			continue
		}
		s.stop(StateStopped, "")
		m.mu.Lock()
		if m.servers[name] == s {
			delete(m.servers, name)
		}
		m.mu.Unlock()
	}
	var errs []error
	for name, cfg := range servers {
		if o, ok := old[name]; ok && o.owned != nil {
			errs = append(errs, fmt.Errorf("mcp server %s: %w (by a capsule); not added", name, ErrNameTaken))
			continue
		} else if ok && changes[name] == "" {
			continue
		} else if !ok {
			changes[name] = ServerAdded
		}
		m.mu.Lock()
		m.servers[name] = &server{m: m, name: name, cfg: cfg, state: StateStopped}
		m.mu.Unlock()
	}
	names := slices.Collect(maps.Keys(changes))
	sort.Strings(names)
	for _, name := range names {
		if cfg, ok := servers[name]; ok && cfg.AutoStart && cfg.Trusted {
			if _, err := m.Start(ctx, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return changes, errors.Join(errs...)
}
