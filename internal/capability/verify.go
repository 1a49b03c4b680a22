package capability

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/keys"
)

// DefaultClockSkew is the allowance applied to both ends of a token's time
// window when none is configured ([security] token_clock_skew_secs).
const DefaultClockSkew = 30 * time.Second

// DefaultTTL is the lifetime of an "Allow Always" token when none is
// configured ([security] allow_always_ttl_secs).
const DefaultTTL = time.Hour

// maxCacheEntries bounds the verification cache; when full it is cleared.
const maxCacheEntries = 1 << 16

// Context is where and when a token is used.
type Context struct {
	// Now is the time of use; the zero value means time.Now().
	Now time.Time
	// SessionID is the calling session; a session token must name it.
	SessionID string
	// Workspace is the calling workspace root (absolute, canonical); a
	// workspace token must name it.
	Workspace string
}

func (c Context) now() time.Time {
	if c.Now.IsZero() {
		return time.Now()
	}
	return c.Now
}

// Verifier checks what can be checked about a token without the store:
// encoding, issuer, signature, time window and scope binding. It caches
// tokens whose signature verified, keyed by the hash of their encoding.
// It does no I/O and is safe for concurrent use.
type Verifier struct {
	trusted keys.Trusted
	skew    time.Duration

	mu    sync.Mutex
	cache map[Hash]*Token // guarded by mu
}

// NewVerifier returns a Verifier accepting signatures by the trusted keys
// with the given clock-skew allowance (negative means DefaultClockSkew).
func NewVerifier(trusted keys.Trusted, skew time.Duration) *Verifier {
	if skew < 0 {
		skew = DefaultClockSkew
	}
	t := make(keys.Trusted, len(trusted))
	for id, k := range trusted {
		t[id] = k
	}
	return &Verifier{trusted: t, skew: skew, cache: map[Hash]*Token{}}
}

// Authentic decodes enc and checks its issuer and signature, using the
// cache. It does not look at time or scope. The returned token must not be
// modified.
func (v *Verifier) Authentic(enc []byte) (*Token, error) {
	if len(enc) > MaxEncodedSize {
		return nil, malformed(ID{}, "encoding of %d bytes exceeds %d", len(enc), MaxEncodedSize)
	}
	h := HashOf(enc)
	v.mu.Lock()
	t, ok := v.cache[h]
	v.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := Decode(enc)
	if err != nil {
		return nil, err
	}
	pub, ok := v.trusted.Lookup(t.Issuer)
	if !ok {
		return nil, &VerifyError{Reason: ErrUnknownIssuer, TokenID: t.ID, Detail: "issuer " + t.Issuer}
	}
	msg, err := t.SignedMessage()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(pub, msg, t.Signature) {
		return nil, &VerifyError{Reason: ErrBadSignature, TokenID: t.ID}
	}
	v.mu.Lock()
	if len(v.cache) >= maxCacheEntries {
		clear(v.cache)
	}
	v.cache[h] = t
	v.mu.Unlock()
	return t, nil
}

// Check runs Authentic and then the time window and scope checks for c.
// It does not consult revocation or single-use state: Service.Use does.
func (v *Verifier) Check(enc []byte, c Context) (*Token, error) {
	t, err := v.Authentic(enc)
	if err != nil {
		return nil, err
	}
	if err := v.checkUse(t, c); err != nil {
		return nil, err
	}
	return t, nil
}

// checkUse checks the time window and the scope binding.
func (v *Verifier) checkUse(t *Token, c Context) error {
	now := c.now()
	if now.Before(t.NotBefore.Add(-v.skew)) {
		return &VerifyError{Reason: ErrNotYetValid, TokenID: t.ID, Detail: "valid from " + t.NotBefore.Format(time.RFC3339)}
	}
	if !now.Before(t.ExpiresAt.Add(v.skew)) {
		return &VerifyError{Reason: ErrExpired, TokenID: t.ID, Detail: "expired at " + t.ExpiresAt.Format(time.RFC3339)}
	}
	return checkScope(t, c)
}

func checkScope(t *Token, c Context) error {
	switch t.Scope {
	case ScopePersistent:
		return nil
	case ScopeSession:
		if c.SessionID != "" && c.SessionID == t.Binding {
			return nil
		}
		return &VerifyError{Reason: ErrScopeMismatch, TokenID: t.ID, Detail: fmt.Sprintf("bound to session %q", t.Binding)}
	case ScopeWorkspace:
		if c.Workspace != "" && c.Workspace == t.Binding {
			return nil
		}
		return &VerifyError{Reason: ErrScopeMismatch, TokenID: t.ID, Detail: fmt.Sprintf("bound to workspace %q", t.Binding)}
	}
	return &VerifyError{Reason: ErrScopeMismatch, TokenID: t.ID, Detail: "unknown scope"}
}

// Forget empties the cache. Service calls it on every revocation.
func (v *Verifier) Forget() {
	v.mu.Lock()
	clear(v.cache)
	v.mu.Unlock()
}

// cached reports the number of cached tokens (for tests).
func (v *Verifier) cached() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cache)
}

// Sign sets t.Issuer to k's ID and t.Signature to k's signature over the
// token, after validating every field.
func Sign(t *Token, k *keys.Key) error {
	t.Issuer = k.ID()
	msg, err := t.SignedMessage()
	if err != nil {
		return err
	}
	t.Signature = k.Sign(msg)
	return nil
}
