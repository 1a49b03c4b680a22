package runtime

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/astrid-runtime/astrid/internal/tools"
)

// sharedTools fans tools that come and go at run time (capsule tools) out
// to every workspace registry, present and future. It implements
// capsule.ToolSink.
//
// Lock order: Runtime.mu, then sharedTools.mu (registry() holds the first
// when it calls addTo).
type sharedTools struct {
	r *Runtime

	mu    sync.Mutex
	tools map[string]tools.Tool // guarded by mu
	// scope is the workspace of a tool offered to one workspace only
	// (a workspace capsule's); absent for tools offered everywhere.
	scope map[string]string // guarded by mu
}

// ReplaceIn implements capsule.WorkspaceToolSink: Replace, with new
// offered to the sessions of workspace only.
func (s *sharedTools) ReplaceIn(workspace string, old []string, new []tools.Tool) error {
	_, err := s.replace(workspace, old, new)
	return err
}

// Replace implements capsule.ToolSink.
func (s *sharedTools) Replace(old []string, new []tools.Tool) error {
	_, err := s.replace("", old, new)
	return err
}

// Unregister implements capsule.ToolSink.
func (s *sharedTools) Unregister(name string) bool {
	removed, err := s.replace("", []string{name}, nil)
	return removed == 1 && err == nil
}

// replace withdraws the tools named old that this sink holds and offers
// new (to workspace's registry only, when workspace is set), in one step
// in each registry (tools.Registry.Replace), and returns how many it
// withdrew. A tool of new already held stays as it is; one whose name
// another tool of a registry holds is refused.
func (s *sharedTools) replace(workspace string, old []string, new []tools.Tool) (removed int, err error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []string
	for _, name := range old {
		if _, ok := s.tools[name]; ok {
			gone = append(gone, name)
		}
	}
	var add []tools.Tool
	var errs []error
	for _, t := range new {
		name := t.Spec().Name
		if _, held := s.tools[name]; held && !slices.Contains(gone, name) {
			continue
		}
		taken := false
		for ws, reg := range s.r.regs {
			if (workspace == "" || ws == workspace) && reg.Has(name) && !slices.Contains(gone, name) {
				taken = true
			}
		}
		if taken {
			errs = append(errs, fmt.Errorf("tools: %q registered twice", name))
			continue
		}
		add = append(add, t)
	}
	for ws, reg := range s.r.regs {
		in := add
		if workspace != "" && ws != workspace {
			in = nil
		}
		if err := reg.Replace(gone, in); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range gone {
		delete(s.tools, name)
		delete(s.scope, name)
	}
	for _, t := range add {
		name := t.Spec().Name
		s.tools[name] = t
		if workspace != "" {
			if s.scope == nil {
				s.scope = map[string]string{}
			}
			s.scope[name] = workspace
		}
	}
	return len(gone), errors.Join(errs...)
}

// addTo registers the shared tools in the new registry of workspace; the
// caller holds Runtime.mu.
func (s *sharedTools) addTo(reg *tools.Registry, workspace string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, t := range s.tools {
		if ws, ok := s.scope[name]; ok && ws != workspace {
			continue
		}
		if err := reg.Register(t); err != nil {
			return err
		}
	}
	return nil
}
