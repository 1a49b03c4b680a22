package capability

import (
	"errors"
	"fmt"
)

// ErrWider is wrapped by every *AttenuationError.
var ErrWider = errors.New("child token would be wider than its parent")

// AttenuationError names the field that makes a child wider than its
// parent.
type AttenuationError struct {
	Field  string // "resource", "permissions", "not_before", ...
	Detail string
}

func (e *AttenuationError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrWider, e.Field, e.Detail)
}

// Unwrap returns ErrWider.
func (e *AttenuationError) Unwrap() error { return ErrWider }

// CheckAttenuation reports whether child is provably no wider than parent
// (see "Attenuation" in the package comment). It is pure and checks only
// the relation between the two; signatures, revocation and the parent
// link itself are the caller's business. A nil error means "narrower or
// equal"; anything else means the child must not be issued.
func CheckAttenuation(parent, child *Token) error {
	wider := func(field, format string, args ...any) error {
		return &AttenuationError{Field: field, Detail: fmt.Sprintf(format, args...)}
	}
	if child.Principal != parent.Principal {
		return wider("principal", "%q is not the parent's %q", child.Principal, parent.Principal)
	}
	pp, err := ParsePattern(parent.Resource)
	if err != nil {
		return wider("resource", "parent: %v", err)
	}
	cp, err := ParsePattern(child.Resource)
	if err != nil {
		return wider("resource", "%v", err)
	}
	if !pp.Covers(cp) {
		return wider("resource", "%s is not provably inside %s", cp, pp)
	}
	if !parent.Permissions.Contains(child.Permissions) {
		return wider("permissions", "%s is not a subset of %s", child.Permissions, parent.Permissions)
	}
	if child.NotBefore.Before(parent.NotBefore) {
		return wider("not_before", "%s is before the parent's %s", child.NotBefore, parent.NotBefore)
	}
	if child.ExpiresAt.After(parent.ExpiresAt) {
		return wider("expires_at", "%s is after the parent's %s", child.ExpiresAt, parent.ExpiresAt)
	}
	switch {
	case parent.Scope == ScopePersistent:
	case child.Scope == parent.Scope && child.Binding == parent.Binding:
	default:
		return wider("scope", "%s %q is not within the parent's %s %q", child.Scope, child.Binding, parent.Scope, parent.Binding)
	}
	if parent.SingleUse && !child.SingleUse {
		return wider("single_use", "the parent is single-use")
	}
	if child.AllowDynamic && !parent.AllowDynamic {
		return wider("allow_dynamic", "the parent does not allow dynamic commands")
	}
	if child.Parent != parent.ID {
		return wider("parent", "child names parent %s, not %s", child.Parent, parent.ID)
	}
	return nil
}
