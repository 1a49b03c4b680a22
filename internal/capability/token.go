package capability

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the encoding version this package writes and reads.
const Version = 1

// Domain is the domain separation prefix of the signed message.
const Domain = "astrid-capability-token-v1\x00"

// Size limits of the encoding (see the package comment).
const (
	MaxEncodedSize   = 16 << 10
	MaxPrincipalLen  = 256
	MaxResourceLen   = 4096
	MaxSessionIDLen  = 256
	MaxWorkspaceLen  = 4096
	MaxApprovalLen   = 64
	IssuerIDLen      = 32
	SignatureSize    = 64
	minEncodedSize   = 1 + 16 + 2 + 2 + 2 + 8*3 + 1 + 2 + 1 + 2 + 1 + 16 + SignatureSize
	flagSingleUse    = 1 << 0
	flagAllowDynamic = 1 << 1
)

// ID identifies a token: 16 random bytes, shown as 32 lowercase hex digits.
type ID [16]byte

// String returns the hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zero (no token).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses the 32-hex-digit form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, fmt.Errorf("token id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("token id %q: %w", s, err)
	}
	if id.IsZero() {
		return ID{}, fmt.Errorf("token id %q: all zero", s)
	}
	return id, nil
}

// Permissions is a set of permissions, one bit each.
type Permissions uint16

// The permissions a token can grant.
const (
	Read Permissions = 1 << iota
	Write
	Execute
	Delete
	Invoke
	List
	Create

	allPermissions = Read | Write | Execute | Delete | Invoke | List | Create
)

var permNames = []string{"read", "write", "execute", "delete", "invoke", "list", "create"}

// Names returns the permission names in bit order; unknown bits appear
// as one hex number.
func (p Permissions) Names() []string {
	names := []string{}
	for i, n := range permNames {
		if p&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if rest := p &^ allPermissions; rest != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint16(rest)))
	}
	return names
}

// String returns the names joined by commas ("read,write").
func (p Permissions) String() string { return strings.Join(p.Names(), ",") }

// Contains reports whether every permission of q is in p.
func (p Permissions) Contains(q Permissions) bool { return q&^p == 0 }

// ParsePermissions parses a comma-separated list of permission names.
func ParsePermissions(s string) (Permissions, error) {
	var p Permissions
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		i := indexOf(permNames, f)
		if i < 0 {
			return 0, fmt.Errorf("unknown permission %q (want %s)", f, strings.Join(permNames, ", "))
		}
		p |= 1 << i
	}
	return p, nil
}

func indexOf(names []string, s string) int {
	for i, n := range names {
		if n == s {
			return i
		}
	}
	return -1
}

// Scope is what a token is bound to.
type Scope uint8

// The scopes, narrowest first.
const (
	// ScopeSession binds a token to one session id.
	ScopeSession Scope = 1 + iota
	// ScopeWorkspace binds a token to one workspace root.
	ScopeWorkspace
	// ScopePersistent tokens are valid in every session and workspace.
	ScopePersistent
)

var scopeNames = []string{"", "session", "workspace", "persistent"}

// String returns "session", "workspace" or "persistent".
func (s Scope) String() string {
	if s >= ScopeSession && s <= ScopePersistent {
		return scopeNames[s]
	}
	return fmt.Sprintf("scope(%d)", uint8(s))
}

// ParseScope parses the String form of a Scope.
func ParseScope(s string) (Scope, error) {
	i := indexOf(scopeNames, s)
	if i <= 0 {
		return 0, fmt.Errorf("unknown scope %q (want session, workspace or persistent)", s)
	}
	return Scope(i), nil
}

// Token is a decoded capability token. Tokens returned by this package are
// shared with its caches: treat them, and their slices, as read-only.
type Token struct {
	Version     uint8
	ID          ID
	Principal   string
	Resource    string // a pattern; see ParsePattern
	Permissions Permissions
	IssuedAt    time.Time
	NotBefore   time.Time
	ExpiresAt   time.Time
	Scope       Scope
	// Binding is the session id (ScopeSession), the workspace root
	// (ScopeWorkspace), or empty (ScopePersistent).
	Binding string
	// SingleUse tokens authorize exactly one use.
	SingleUse bool
	// AllowDynamic grants dynamic shell execution (commands whose names
	// cannot be known statically); the interceptor refuses those otherwise.
	AllowDynamic bool
	// Issuer is the ID of the signing key.
	Issuer string
	// Approval is the hash of the audit entry of the approval that created
	// the token (empty for none).
	Approval []byte
	// Parent is the token this one was attenuated from (zero for none).
	Parent    ID
	Signature []byte
}

// Hash is SHA-256 of a token's encoding.
type Hash [sha256.Size]byte

// HashOf returns the hash of an encoding.
func HashOf(enc []byte) Hash { return sha256.Sum256(enc) }

// malformed returns a *VerifyError with reason ErrMalformed.
func malformed(id ID, format string, args ...any) error {
	return &VerifyError{Reason: ErrMalformed, TokenID: id, Detail: fmt.Sprintf(format, args...)}
}

// validate checks every field's bounds and the cross-field rules. It is
// shared by the encoder (refuse to sign nonsense) and the decoder.
func (t *Token) validate() error {
	if t.Version != Version {
		return &VerifyError{Reason: ErrUnknownVersion, TokenID: t.ID, Detail: fmt.Sprintf("version %d", t.Version)}
	}
	switch {
	case t.ID.IsZero():
		return malformed(t.ID, "zero id")
	case t.Parent == t.ID:
		return malformed(t.ID, "token is its own parent")
	case len(t.Principal) == 0 || len(t.Principal) > MaxPrincipalLen:
		return malformed(t.ID, "principal length %d outside 1..%d", len(t.Principal), MaxPrincipalLen)
	case !utf8.ValidString(t.Principal) || strings.IndexByte(t.Principal, 0) >= 0:
		return malformed(t.ID, "principal is not valid UTF-8 text")
	case len(t.Resource) == 0 || len(t.Resource) > MaxResourceLen:
		return malformed(t.ID, "resource length %d outside 1..%d", len(t.Resource), MaxResourceLen)
	case t.Permissions == 0 || t.Permissions&^allPermissions != 0:
		return malformed(t.ID, "permissions 0x%x", uint16(t.Permissions))
	case t.IssuedAt.Unix() <= 0 || t.NotBefore.Unix() <= 0:
		return malformed(t.ID, "times must be after 1970")
	case !t.ExpiresAt.After(t.IssuedAt) || !t.ExpiresAt.After(t.NotBefore):
		return malformed(t.ID, "expires_at must be after issued_at and not_before")
	case len(t.Issuer) != IssuerIDLen || !isLowerHex(t.Issuer):
		return malformed(t.ID, "issuer must be %d lowercase hex digits", IssuerIDLen)
	case len(t.Approval) > MaxApprovalLen:
		return malformed(t.ID, "approval hash of %d bytes exceeds %d", len(t.Approval), MaxApprovalLen)
	}
	if _, err := ParsePattern(t.Resource); err != nil {
		return malformed(t.ID, "resource: %v", err)
	}
	switch t.Scope {
	case ScopeSession:
		if len(t.Binding) == 0 || len(t.Binding) > MaxSessionIDLen || !utf8.ValidString(t.Binding) || strings.IndexByte(t.Binding, 0) >= 0 {
			return malformed(t.ID, "session binding must be 1..%d bytes of UTF-8 text", MaxSessionIDLen)
		}
	case ScopeWorkspace:
		if len(t.Binding) == 0 || len(t.Binding) > MaxWorkspaceLen || !isCleanAbs(t.Binding) {
			return malformed(t.ID, "workspace binding must be an absolute clean path of 1..%d bytes", MaxWorkspaceLen)
		}
	case ScopePersistent:
		if t.Binding != "" {
			return malformed(t.ID, "persistent token with a binding")
		}
	default:
		return malformed(t.ID, "unknown scope %d", t.Scope)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isCleanAbs reports whether p is an absolute, lexically clean path without
// ".." or NUL.
func isCleanAbs(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && strings.IndexByte(p, 0) < 0 && !hasDotDot(p)
}

func hasDotDot(p string) bool {
	for _, s := range strings.Split(p, "/") {
		if s == ".." {
			return true
		}
	}
	return false
}

// body appends the body (everything but the signature) to b. The token
// must be valid.
func (t *Token) appendBody(b []byte) []byte {
	b = append(b, t.Version)
	b = append(b, t.ID[:]...)
	b = appendStr16(b, t.Principal)
	b = appendStr16(b, t.Resource)
	b = binary.BigEndian.AppendUint16(b, uint16(t.Permissions))
	b = binary.BigEndian.AppendUint64(b, uint64(t.IssuedAt.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(t.NotBefore.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(t.ExpiresAt.Unix()))
	b = append(b, byte(t.Scope))
	b = appendStr16(b, t.Binding)
	var flags byte
	if t.SingleUse {
		flags |= flagSingleUse
	}
	if t.AllowDynamic {
		flags |= flagAllowDynamic
	}
	b = append(b, flags)
	b = appendStr16(b, t.Issuer)
	b = append(b, byte(len(t.Approval)))
	b = append(b, t.Approval...)
	b = append(b, t.Parent[:]...)
	return b
}

func appendStr16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// SignedMessage returns the bytes the signature covers: Domain || body.
func (t *Token) SignedMessage() ([]byte, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	return t.appendBody([]byte(Domain)), nil
}

// Encode returns the token's canonical encoding, body || signature.
func (t *Token) Encode() ([]byte, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if len(t.Signature) != SignatureSize {
		return nil, malformed(t.ID, "signature of %d bytes, want %d", len(t.Signature), SignatureSize)
	}
	b := t.appendBody(make([]byte, 0, 256))
	b = append(b, t.Signature...)
	if len(b) > MaxEncodedSize {
		return nil, malformed(t.ID, "encoding of %d bytes exceeds %d", len(b), MaxEncodedSize)
	}
	return b, nil
}

// decoder reads the encoding; the first error sticks and later reads
// return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("truncated at %s: need %d bytes, have %d", what, n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(what string) byte {
	if v := d.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if v := d.take(2, what); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) i64(what string) int64 {
	if v := d.take(8, what); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// str16 reads a length-prefixed string, refusing lengths above max before
// reading them.
func (d *decoder) str16(what string, max int) string {
	n := int(d.u16(what + " length"))
	if d.err == nil && n > max {
		d.fail("%s length %d exceeds %d", what, n, max)
	}
	return string(d.take(n, what))
}

// Decode parses an encoding. It checks the structure and the field rules
// but not the signature, the issuer or the time: use a Verifier for that.
// Errors are *VerifyError with reason ErrMalformed or ErrUnknownVersion.
func Decode(enc []byte) (*Token, error) {
	if len(enc) > MaxEncodedSize {
		return nil, malformed(ID{}, "encoding of %d bytes exceeds %d", len(enc), MaxEncodedSize)
	}
	if len(enc) < minEncodedSize {
		return nil, malformed(ID{}, "encoding of %d bytes is shorter than the minimum %d", len(enc), minEncodedSize)
	}
	if enc[0] != Version {
		return nil, &VerifyError{Reason: ErrUnknownVersion, Detail: fmt.Sprintf("version %d", enc[0])}
	}
	d := &decoder{b: enc}
	version := d.u8("version")
	var id ID
	copy(id[:], d.take(len(id), "id"))
	principal := d.str16("principal", MaxPrincipalLen)
	resource := d.str16("resource", MaxResourceLen)
	perms := d.u16("permissions")
	issued := d.i64("issued_at")
	notBefore := d.i64("not_before")
	expires := d.i64("expires_at")
	scope := d.u8("scope")
	binding := d.str16("binding", MaxWorkspaceLen)
	flags := d.u8("flags")
	issuer := d.str16("issuer", IssuerIDLen)
	approval := d.take(int(d.u8("approval length")), "approval")
	var parent ID
	copy(parent[:], d.take(len(parent), "parent"))
	sig := d.take(SignatureSize, "signature")
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, malformed(id, "%v", d.err)
	}
	if flags&^(flagSingleUse|flagAllowDynamic) != 0 {
		return nil, malformed(id, "unknown flags 0x%02x", flags)
	}
	for _, v := range []int64{issued, notBefore, expires} {
		// Keep times in a range time.Unix round-trips exactly.
		if v <= 0 || v > maxUnix {
			return nil, malformed(id, "time %d out of range", v)
		}
	}
	t := &Token{
		Version:      version,
		ID:           id,
		Principal:    principal,
		Resource:     resource,
		Permissions:  Permissions(perms),
		IssuedAt:     time.Unix(issued, 0).UTC(),
		NotBefore:    time.Unix(notBefore, 0).UTC(),
		ExpiresAt:    time.Unix(expires, 0).UTC(),
		Scope:        Scope(scope),
		Binding:      binding,
		SingleUse:    flags&flagSingleUse != 0,
		AllowDynamic: flags&flagAllowDynamic != 0,
		Issuer:       issuer,
		Parent:       parent,
		Signature:    append([]byte(nil), sig...),
	}
	if len(approval) > 0 {
		t.Approval = append([]byte(nil), approval...)
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// maxUnix is the last second of year 9999, a bound that keeps times sane.
const maxUnix = 253402300799

// VerifyError reports why a token was refused. Reason is one of the Err*
// sentinels (match it with errors.Is); Detail is for logs and people.
type VerifyError struct {
	Reason  error
	TokenID ID // zero when the token could not be decoded that far
	Detail  string
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	b.WriteString("capability token")
	if !e.TokenID.IsZero() {
		b.WriteString(" ")
		b.WriteString(e.TokenID.String())
	}
	b.WriteString(": ")
	b.WriteString(e.Reason.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns Reason.
func (e *VerifyError) Unwrap() error { return e.Reason }

// Reasons a token is refused. Every one means "not authorized"; callers
// branch on them only to tell the user why.
var (
	// ErrMalformed: the encoding is invalid, truncated, oversized, or a
	// field breaks its rules.
	ErrMalformed = errors.New("malformed token")
	// ErrUnknownVersion: the encoding version is not one this binary reads.
	ErrUnknownVersion = errors.New("unknown token version")
	// ErrUnknownIssuer: the issuer key is not trusted.
	ErrUnknownIssuer = errors.New("issuer key is not trusted")
	// ErrBadSignature: the signature does not verify with the issuer key.
	ErrBadSignature = errors.New("bad signature")
	// ErrNotYetValid: now is before not_before (minus the skew allowance).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrExpired: now is at or after expires_at (plus the skew allowance).
	ErrExpired = errors.New("token expired")
	// ErrScopeMismatch: the token is bound to another session or workspace.
	ErrScopeMismatch = errors.New("token scope does not match")
	// ErrRevoked: the token or one of its ancestors was revoked.
	ErrRevoked = errors.New("token revoked")
	// ErrAlreadyUsed: a single-use token was already consumed.
	ErrAlreadyUsed = errors.New("single-use token already used")
	// ErrUnknownToken: the store holds no such token (or a different token
	// with the same id); only stored tokens authorize.
	ErrUnknownToken = errors.New("token not in the store")
	// ErrNotCovered: the token does not grant the action (resource or
	// permission).
	ErrNotCovered = errors.New("token does not cover the action")
)
