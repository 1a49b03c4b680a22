package capability

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheckAttenuation(t *testing.T) {
	parent := &Token{
		Version:     Version,
		ID:          ID{1},
		Principal:   "alice",
		Resource:    "file:///home/alice/project/**",
		Permissions: Read | Write,
		IssuedAt:    t0,
		NotBefore:   t0,
		ExpiresAt:   t0.Add(time.Hour),
		Scope:       ScopeWorkspace,
		Binding:     "/home/alice/project",
		SingleUse:   false,
	}
	child := func(f func(*Token)) *Token {
		c := *parent
		c.ID, c.Parent = ID{2}, parent.ID
		f(&c)
		return &c
	}
	tests := []struct {
		name      string
		parent    *Token
		child     *Token
		wantField string // "" means allowed
	}{
		{"identical", parent, child(func(*Token) {}), ""},
		{"narrower resource", parent, child(func(c *Token) { c.Resource = "file:///home/alice/project/src/**" }), ""},
		{"literal resource", parent, child(func(c *Token) { c.Resource = "file:///home/alice/project/main.go" }), ""},
		{"fewer permissions", parent, child(func(c *Token) { c.Permissions = Read }), ""},
		{"shorter window", parent, child(func(c *Token) { c.NotBefore, c.ExpiresAt = t0.Add(time.Minute), t0.Add(time.Minute*2) }), ""},
		{"adds single_use", parent, child(func(c *Token) { c.SingleUse = true }), ""},
		{"wider resource", parent, child(func(c *Token) { c.Resource = "file:///home/alice/**" }), "resource"},
		{"sibling resource", parent, child(func(c *Token) { c.Resource = "file:///home/alice/projectx/**" }), "resource"},
		{"glob escaping the prefix", parent, child(func(c *Token) { c.Resource = "file:///home/alice/*/x" }), "resource"},
		{"other kind", parent, child(func(c *Token) { c.Resource = "exec://ls" }), "resource"},
		{"extra permission", parent, child(func(c *Token) { c.Permissions = Read | Delete }), "permissions"},
		{"longer expiry", parent, child(func(c *Token) { c.ExpiresAt = t0.Add(time.Hour + time.Second) }), "expires_at"},
		{"earlier start", parent, child(func(c *Token) { c.NotBefore = t0.Add(-time.Second) }), "not_before"},
		{"wider scope", parent, child(func(c *Token) { c.Scope, c.Binding = ScopePersistent, "" }), "scope"},
		{"other workspace", parent, child(func(c *Token) { c.Binding = "/home/alice/other" }), "scope"},
		{"workspace to session", parent, child(func(c *Token) { c.Scope, c.Binding = ScopeSession, "s1" }), "scope"},
		{"adds allow_dynamic", parent, child(func(c *Token) { c.AllowDynamic = true }), "allow_dynamic"},
		{"other principal", parent, child(func(c *Token) { c.Principal = "mallory" }), "principal"},
		{"wrong parent link", parent, child(func(c *Token) { c.Parent = ID{9} }), "parent"},
	}
	singleParent := child(func(c *Token) { c.ID, c.Parent, c.SingleUse = ID{3}, ID{}, true })
	tests = append(tests,
		struct {
			name      string
			parent    *Token
			child     *Token
			wantField string
		}{"drops single_use", singleParent, child(func(c *Token) { c.Parent = ID{3} }), "single_use"},
		struct {
			name      string
			parent    *Token
			child     *Token
			wantField string
		}{"keeps single_use", singleParent, child(func(c *Token) { c.Parent, c.SingleUse = ID{3}, true }), ""})
	persistent := child(func(c *Token) { c.ID, c.Parent, c.Scope, c.Binding = ID{4}, ID{}, ScopePersistent, "" })
	tests = append(tests, struct {
		name      string
		parent    *Token
		child     *Token
		wantField string
	}{"persistent to session", persistent, child(func(c *Token) { c.Parent, c.Scope, c.Binding = ID{4}, ScopeSession, "s1" }), ""})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAttenuation(tt.parent, tt.child)
			var field string
			if err != nil {
				var ae *AttenuationError
				if !errors.As(err, &ae) || !errors.Is(err, ErrWider) {
					t.Fatalf("error %v is not an *AttenuationError wrapping ErrWider", err)
				}
				field = ae.Field
			}
			if diff := cmp.Diff(tt.wantField, field); diff != "" {
				t.Errorf("refused field (-want +got): %s (err %v)", diff, err)
			}
		})
	}
}
