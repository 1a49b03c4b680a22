package approval

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/capability"
)

// AllowanceScope says what an allowance is bound to.
type AllowanceScope string

// The scopes of an allowance.
const (
	ScopeSession   AllowanceScope = "session"
	ScopeWorkspace AllowanceScope = "workspace"
)

// Allowance is a recorded "Allow Session" or "Allow Workspace" answer: the
// permission on every resource its pattern matches, for the session or the
// workspace root it is bound to.
type Allowance struct {
	ID         string
	Scope      AllowanceScope
	Binding    string // session id or workspace root
	Pattern    string // a capability resource pattern
	Permission capability.Permissions
	CreatedAt  time.Time
	Approval   string // hex hash of the audit entry of the approval
}

// AllowanceStore persists allowances. It must be safe for concurrent use.
type AllowanceStore interface {
	PutAllowance(ctx context.Context, a Allowance) error
	ListAllowances(ctx context.Context, scope AllowanceScope, binding string) ([]Allowance, error)
	DeleteAllowances(ctx context.Context, scope AllowanceScope, binding string) (int, error)
}

type compiled struct {
	a   Allowance
	pat capability.Pattern
}

type bindingKey struct {
	scope   AllowanceScope
	binding string
}

// Allowances finds and records allowances, caching each binding's list in
// memory after its first use. It is safe for concurrent use.
//
// NOTE: the cache assumes this process is the only writer of allowances
// (the daemon). Another process's additions appear after Forget.
type Allowances struct {
	store AllowanceStore

	mu    sync.Mutex
	cache map[bindingKey][]compiled // guarded by mu
}

// NewAllowances returns an Allowances over store.
func NewAllowances(store AllowanceStore) *Allowances {
	return &Allowances{store: store, cache: map[bindingKey][]compiled{}}
}

// Add validates and records an allowance.
func (s *Allowances) Add(ctx context.Context, a Allowance) error {
	if a.ID == "" || a.Binding == "" || a.Permission == 0 {
		return errors.New("allowance needs an id, a binding and a permission")
	}
	if a.Scope != ScopeSession && a.Scope != ScopeWorkspace {
		return fmt.Errorf("allowance scope %q: want session or workspace", a.Scope)
	}
	pat, err := capability.ParsePattern(a.Pattern)
	if err != nil {
		return fmt.Errorf("allowance pattern: %w", err)
	}
	k := bindingKey{a.Scope, a.Binding}
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.loadLocked(ctx, k)
	if err != nil {
		return err
	}
	if err := s.store.PutAllowance(ctx, a); err != nil {
		return err
	}
	s.cache[k] = append(list, compiled{a, pat})
	return nil
}

func (s *Allowances) loadLocked(ctx context.Context, k bindingKey) ([]compiled, error) {
	if list, ok := s.cache[k]; ok {
		return list, nil
	}
	stored, err := s.store.ListAllowances(ctx, k.scope, k.binding)
	if err != nil {
		return nil, err
	}
	list := make([]compiled, 0, len(stored))
	for _, a := range stored {
		pat, err := capability.ParsePattern(a.Pattern)
		if err != nil {
			// A pattern this binary cannot parse covers nothing.
			continue
		}
		list = append(list, compiled{a, pat})
	}
	s.cache[k] = list
	return list, nil
}

// Find returns an allowance of the session or of the workspace that grants
// perm on resource and that accept agrees to (the interceptor uses accept
// to refuse glob patterns for compound commands). A store error is
// returned, never treated as "no allowance needed".
func (s *Allowances) Find(ctx context.Context, session, workspace, resource string, perm capability.Permissions, accept func(capability.Pattern) bool) (*Allowance, error) {
	r, err := capability.ParseResource(resource)
	if err != nil {
		return nil, nil // an unparseable resource is covered by nothing
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []bindingKey{{ScopeSession, session}, {ScopeWorkspace, workspace}} {
		if k.binding == "" {
			continue
		}
		list, err := s.loadLocked(ctx, k)
		if err != nil {
			return nil, err
		}
		for _, c := range list {
			if c.a.Permission.Contains(perm) && c.pat.MatchResource(r) && (accept == nil || accept(c.pat)) {
				a := c.a
				return &a, nil
			}
		}
	}
	return nil, nil
}

// List returns the allowances of one binding.
func (s *Allowances) List(ctx context.Context, scope AllowanceScope, binding string) ([]Allowance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.loadLocked(ctx, bindingKey{scope, binding})
	if err != nil {
		return nil, err
	}
	out := make([]Allowance, len(list))
	for i, c := range list {
		out[i] = c.a
	}
	return out, nil
}

// Clear removes every allowance of one binding (a session that ended).
func (s *Allowances) Clear(ctx context.Context, scope AllowanceScope, binding string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, bindingKey{scope, binding})
	return s.store.DeleteAllowances(ctx, scope, binding)
}

// Forget drops the in-memory cache.
func (s *Allowances) Forget() {
	s.mu.Lock()
	s.cache = map[bindingKey][]compiled{}
	s.mu.Unlock()
}
