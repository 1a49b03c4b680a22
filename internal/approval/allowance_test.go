package approval

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/astrid-runtime/astrid/internal/capability"
)

// memStore is an AllowanceStore in memory; err, when set, fails every call.
type memStore struct {
	mu   sync.Mutex
	list []Allowance
	err  error
}

func (m *memStore) PutAllowance(_ context.Context, a Allowance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.list = append(m.list, a)
	return nil
}

func (m *memStore) ListAllowances(_ context.Context, scope AllowanceScope, binding string) ([]Allowance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	var out []Allowance
	for _, a := range m.list {
		if a.Scope == scope && a.Binding == binding {
			out = append(out, a)
		}
	}
	return out, nil
}

func (m *memStore) DeleteAllowances(_ context.Context, scope AllowanceScope, binding string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, m.err
	}
	n := 0
	kept := m.list[:0]
	for _, a := range m.list {
		if a.Scope == scope && a.Binding == binding {
			n++
			continue
		}
		kept = append(kept, a)
	}
	m.list = kept
	return n, nil
}

func (m *memStore) fail(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

// TestAllowancesStayBound tries to use an allowance beyond what it was
// given for: another session, another workspace (including one whose root
// shares a prefix), another permission, a path outside its pattern, and a
// pattern the caller refuses. Each finds nothing.
func TestAllowancesStayBound(t *testing.T) {
	ctx := context.Background()
	s := NewAllowances(&memStore{})
	must := func(a Allowance) {
		t.Helper()
		if err := s.Add(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	must(Allowance{ID: "a1", Scope: ScopeSession, Binding: "s1", Pattern: "file:///w/src/**", Permission: capability.Write})
	must(Allowance{ID: "a2", Scope: ScopeWorkspace, Binding: "/w", Pattern: "exec://make test", Permission: capability.Execute})

	for _, tc := range []struct {
		name, session, workspace, resource string
		perm                               capability.Permissions
		accept                             func(capability.Pattern) bool
		want                               string
	}{
		{"session allowance", "s1", "", "file:///w/src/a.go", capability.Write, nil, "a1"},
		{"workspace allowance", "s9", "/w", "exec://make test", capability.Execute, nil, "a2"},
		{"another session", "s2", "/w", "file:///w/src/a.go", capability.Write, nil, ""},
		{"another workspace", "s2", "/w2", "exec://make test", capability.Execute, nil, ""},
		{"a workspace sharing the prefix", "s2", "/w/", "exec://make test", capability.Execute, nil, ""},
		{"another permission", "s1", "/w", "file:///w/src/a.go", capability.Delete, nil, ""},
		{"more than the permission", "s1", "/w", "file:///w/src/a.go", capability.Write | capability.Read, nil, ""},
		{"outside the pattern", "s1", "/w", "file:///w/srcx/a.go", capability.Write, nil, ""},
		{"above the pattern", "s1", "/w", "file:///w/a.go", capability.Write, nil, ""},
		{"another command", "s9", "/w", "exec://make test; rm -rf /", capability.Execute, nil, ""},
		{"a pattern the caller refuses", "s1", "/w", "file:///w/src/a.go", capability.Write, func(capability.Pattern) bool { return false }, ""},
		{"an unparseable resource", "s1", "/w", "not a resource", capability.Write, nil, ""},
		{"no session, no workspace", "", "", "file:///w/src/a.go", capability.Write, nil, ""},
	} {
		got, err := s.Find(ctx, tc.session, tc.workspace, tc.resource, tc.perm, tc.accept)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if id := idOf(got); id != tc.want {
			t.Errorf("%s: found %q, want %q", tc.name, id, tc.want)
		}
	}
}

func idOf(a *Allowance) string {
	if a == nil {
		return ""
	}
	return a.ID
}

// TestAllowancesFailClosed: a store that fails is an error, never "no
// allowance needed" nor a stale answer; an allowance the store did not
// take is not used; one whose pattern this binary cannot parse covers
// nothing; Add refuses what is incomplete.
func TestAllowancesFailClosed(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	s := NewAllowances(st)
	broken := errors.New("disk on fire")

	st.fail(broken)
	if _, err := s.Find(ctx, "s1", "/w", "file:///w/a", capability.Read, nil); !errors.Is(err, broken) {
		t.Errorf("find with a failing store: %v", err)
	}
	if err := s.Add(ctx, Allowance{ID: "a1", Scope: ScopeSession, Binding: "s1", Pattern: "file:///w/**", Permission: capability.Read}); !errors.Is(err, broken) {
		t.Errorf("add with a failing store: %v", err)
	}
	st.fail(nil)
	if a, err := s.Find(ctx, "s1", "/w", "file:///w/a", capability.Read, nil); err != nil || a != nil {
		t.Errorf("an allowance the store refused is used: %+v %v", a, err)
	}

	// Loaded (and cached) before the store failed: still refused after.
	if err := s.Add(ctx, Allowance{ID: "a2", Scope: ScopeSession, Binding: "s2", Pattern: "file:///w/**", Permission: capability.Read}); err != nil {
		t.Fatal(err)
	}
	st.fail(broken)
	if err := s.Add(ctx, Allowance{ID: "a3", Scope: ScopeSession, Binding: "s2", Pattern: "file:///x/**", Permission: capability.Read}); !errors.Is(err, broken) {
		t.Errorf("add: %v", err)
	}
	st.fail(nil)
	if a, _ := s.Find(ctx, "s2", "", "file:///x/a", capability.Read, nil); a != nil {
		t.Errorf("the refused a3 is cached: %+v", a)
	}

	// A stored pattern that does not parse covers nothing.
	st.list = append(st.list, Allowance{ID: "bad", Scope: ScopeSession, Binding: "s3", Pattern: "file://relative/**", Permission: capability.Read})
	if a, err := s.Find(ctx, "s3", "", "file://relative/a", capability.Read, nil); err != nil || a != nil {
		t.Errorf("unparseable pattern: %+v %v", a, err)
	}

	for _, a := range []Allowance{
		{Scope: ScopeSession, Binding: "s1", Pattern: "file:///w/**", Permission: capability.Read},
		{ID: "x", Scope: ScopeSession, Pattern: "file:///w/**", Permission: capability.Read},
		{ID: "x", Scope: ScopeSession, Binding: "s1", Pattern: "file:///w/**"},
		{ID: "x", Scope: "forever", Binding: "s1", Pattern: "file:///w/**", Permission: capability.Read},
		{ID: "x", Scope: ScopeSession, Binding: "s1", Pattern: "nope", Permission: capability.Read},
	} {
		if err := s.Add(ctx, a); err == nil {
			t.Errorf("Add(%+v) accepted", a)
		}
	}
}

// TestAllowancesClearAndForget: a cleared binding's allowances are gone
// from the store and the cache; Forget reloads what another process wrote.
func TestAllowancesClearAndForget(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	s := NewAllowances(st)
	if err := s.Add(ctx, Allowance{ID: "a1", Scope: ScopeSession, Binding: "s1", Pattern: "file:///w/**", Permission: capability.Read}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Clear(ctx, ScopeSession, "s1"); n != 1 || err != nil {
		t.Fatalf("clear: %d %v", n, err)
	}
	if a, _ := s.Find(ctx, "s1", "", "file:///w/a", capability.Read, nil); a != nil {
		t.Errorf("cleared allowance used: %+v", a)
	}
	// Written by another process: seen after Forget, not before.
	st.list = append(st.list, Allowance{ID: "a2", Scope: ScopeWorkspace, Binding: "/w", Pattern: "file:///w/**", Permission: capability.Read})
	if a, _ := s.Find(ctx, "", "/w", "file:///w/a", capability.Read, nil); a != nil {
		// Not loaded yet for /w: the first use loads it, which is fine too.
		if a.ID != "a2" {
			t.Errorf("found %+v", a)
		}
	}
	s.Forget()
	if a, _ := s.Find(ctx, "", "/w", "file:///w/a", capability.Read, nil); idOf(a) != "a2" {
		t.Errorf("after Forget: %+v", a)
	}
	list, err := s.List(ctx, ScopeWorkspace, "/w")
	if err != nil || len(list) != 1 || list[0].ID != "a2" {
		t.Errorf("list: %+v %v", list, err)
	}
}

// TestAllowancesConcurrent: adds and finds from many goroutines (run with
// -race); every added allowance is found afterwards.
func TestAllowancesConcurrent(t *testing.T) {
	ctx := context.Background()
	s := NewAllowances(&memStore{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			session := fmt.Sprintf("s%d", i%4)
			if err := s.Add(ctx, Allowance{ID: fmt.Sprint(i), Scope: ScopeSession, Binding: session, Pattern: fmt.Sprintf("file:///w/%d/**", i), Permission: capability.Read}); err != nil {
				t.Error(err)
			}
			if _, err := s.Find(ctx, session, "/w", "file:///w/0/a", capability.Read, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 16 {
		a, err := s.Find(ctx, fmt.Sprintf("s%d", i%4), "", fmt.Sprintf("file:///w/%d/x", i), capability.Read, nil)
		if err != nil || idOf(a) != fmt.Sprint(i) || !strings.HasPrefix(a.Pattern, "file:///w/") {
			t.Errorf("allowance %d: %+v %v", i, a, err)
		}
	}
}
