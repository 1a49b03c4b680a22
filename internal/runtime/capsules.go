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
}

// Register implements capsule.ToolSink.
func (s *sharedTools) Register(t tools.Tool) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	name := t.Spec().Name
	if _, dup := s.tools[name]; dup {
		return nil
	}
	for _, reg := range s.r.regs {
		if err := reg.Register(t); err != nil {
			return err
		}
	}
	s.tools[name] = t
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
	for _, reg := range s.r.regs {
		reg.Unregister(name)
	}
	return true
}

// addTo registers the shared tools in a new registry; the caller holds
// Runtime.mu.
func (s *sharedTools) addTo(reg *tools.Registry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tools {
		if err := reg.Register(t); err != nil {
			return err
		}
	}
	return nil
}
