package runtime

import (
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

// RegisterIn implements capsule.WorkspaceToolSink: the tool is offered to
// the sessions of workspace only.
func (s *sharedTools) RegisterIn(workspace string, t tools.Tool) error {
	return s.register(workspace, t)
}

// Register implements capsule.ToolSink.
func (s *sharedTools) Register(t tools.Tool) error { return s.register("", t) }

func (s *sharedTools) register(workspace string, t tools.Tool) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	name := t.Spec().Name
	if _, dup := s.tools[name]; dup {
		return nil
	}
	for ws, reg := range s.r.regs {
		if workspace != "" && ws != workspace {
			continue
		}
		if err := reg.Register(t); err != nil {
			return err
		}
	}
	s.tools[name] = t
	if workspace != "" {
		if s.scope == nil {
			s.scope = map[string]string{}
		}
		s.scope[name] = workspace
	}
	return nil
}

// Unregister implements capsule.ToolSink.
func (s *sharedTools) Unregister(name string) bool {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tools[name]; !ok {
		return false
	}
	delete(s.tools, name)
	delete(s.scope, name)
	for _, reg := range s.r.regs {
		reg.Unregister(name)
	}
	return true
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
