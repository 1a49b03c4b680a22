package capability

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/keys"
)

// Record is a stored token and its mutable state.
type Record struct {
	Token        *Token
	Encoded      []byte
	RevokedAt    time.Time // zero when not revoked
	RevokeReason string
	UsedAt       time.Time // zero when not used (single-use tokens only)
}

// State is what Service.Use reads from the store on every use.
type State struct {
	Hash    Hash // of the stored encoding
	Revoked bool
	Used    bool
}

// Store persists tokens. Implementations (store.TokenStore) must be safe
// for concurrent use, also by several processes sharing the same database,
// and must keep these invariants:
//
//   - Put stores a token and refuses, in the same transaction, a token
//     whose parent is not stored (ErrUnknownToken) or is revoked
//     (ErrRevoked), and a duplicate id. A failed Put writes nothing.
//   - Revoke marks the token and all its descendants revoked in one
//     transaction and returns the ids it newly revoked (empty if the token
//     was already revoked); an unknown id is ErrUnknownToken.
//   - Consume marks a token used in a single statement that succeeds only
//     if it was neither used nor revoked, checked by rows affected, so
//     that of any number of concurrent calls at most one returns nil. It
//     returns ErrAlreadyUsed, ErrRevoked or ErrUnknownToken otherwise.
//   - Get and State return ErrUnknownToken (wrapped) for a missing id.
//
// The store does not verify signatures: the Service does, on every use.
type Store interface {
	Put(ctx context.Context, t *Token, enc []byte) error
	Get(ctx context.Context, id ID) (Record, error)
	// List returns the stored tokens in the order they were stored: all
	// of them, or with all false only those neither revoked, used, nor
	// expired at now.
	List(ctx context.Context, all bool, now time.Time) ([]Record, error)
	State(ctx context.Context, id ID) (State, error)
	Revoke(ctx context.Context, id ID, reason string, at time.Time) ([]ID, error)
	Consume(ctx context.Context, id ID, at time.Time) error
}

// Options configure a Service.
type Options struct {
	// Store holds the tokens; required.
	Store Store
	// Trusted are the issuer keys whose tokens verify: the runtime key
	// plus [keys] trusted_issuers. Required.
	Trusted keys.Trusted
	// Key signs the tokens this service issues; nil for a service that
	// only verifies.
	Key *keys.Key
	// ClockSkew is the allowance at both ends of the validity window;
	// negative means DefaultClockSkew ([security] token_clock_skew_secs).
	ClockSkew time.Duration
	// TTL is the lifetime of issued tokens when the grant names none; zero
	// means DefaultTTL ([security] allow_always_ttl_secs).
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives warnings about stored tokens that fail to verify.
	Logger *slog.Logger
	// Rand is the source of token ids; nil means crypto/rand.
	Rand io.Reader
}

// Service issues, verifies, attenuates and revokes tokens over a Store,
// and keeps an in-memory index of the stored tokens that verified, so
// that FindCovering does not touch the store. It is safe for concurrent
// use.
type Service struct {
	store    Store
	verifier *Verifier
	key      *keys.Key
	ttl      time.Duration
	now      func() time.Time
	log      *slog.Logger
	rand     io.Reader

	mu  sync.RWMutex
	idx *index // guarded by mu
}

// New returns a Service and loads its index from the store.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("capability: no store")
	}
	if len(opts.Trusted) == 0 {
		return nil, errors.New("capability: no trusted issuer keys")
	}
	s := &Service{
		store:    opts.Store,
		verifier: NewVerifier(opts.Trusted, opts.ClockSkew),
		key:      opts.Key,
		ttl:      opts.TTL,
		now:      opts.Now,
		log:      opts.Logger,
		rand:     opts.Rand,
		idx:      newIndex(),
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Verifier returns the service's verifier.
func (s *Service) Verifier() *Verifier { return s.verifier }

// Reload rebuilds the index from the store: every token that is neither
// revoked, used nor expired and whose signature verifies. Tokens that fail
// to verify are logged and left out.
func (s *Service) Reload(ctx context.Context) error {
	recs, err := s.store.List(ctx, false, s.now())
	if err != nil {
		return fmt.Errorf("load tokens: %w", err)
	}
	idx := newIndex()
	for _, r := range recs {
		t, err := s.verifier.Authentic(r.Encoded)
		if err != nil {
			s.log.Warn("stored capability token does not verify; ignoring it", "err", err)
			continue
		}
		idx.add(t, r.Encoded)
	}
	s.mu.Lock()
	s.idx = idx
	s.mu.Unlock()
	return nil
}

// Grant describes a token to issue or attenuate.
type Grant struct {
	Principal   string
	Resource    string
	Permissions Permissions
	// NotBefore defaults to now (Issue) or the parent's (Attenuate).
	NotBefore time.Time
	// ExpiresAt, when zero, is NotBefore+TTL if TTL is set, else
	// now+service TTL (Issue) or the parent's expiry (Attenuate).
	ExpiresAt time.Time
	TTL       time.Duration
	// Scope and Binding default to the parent's (Attenuate).
	Scope   Scope
	Binding string
	// SingleUse is forced on when the parent is single-use (Attenuate).
	SingleUse    bool
	AllowDynamic bool
	// Approval is the audit hash of the approval behind the grant; it
	// defaults to the parent's (Attenuate).
	Approval []byte
}

func (s *Service) newID() (ID, error) {
	var id ID
	if _, err := io.ReadFull(s.rand, id[:]); err != nil {
		return ID{}, fmt.Errorf("token id: %w", err)
	}
	if id.IsZero() {
		return ID{}, errors.New("token id: random source returned zeros")
	}
	return id, nil
}

// Issue signs a new token for g with the service key, stores it and adds
// it to the index.
func (s *Service) Issue(ctx context.Context, g Grant) (*Token, []byte, error) {
	now := s.now().Truncate(time.Second)
	t := &Token{
		Version:      Version,
		Principal:    g.Principal,
		Resource:     g.Resource,
		Permissions:  g.Permissions,
		IssuedAt:     now,
		NotBefore:    g.NotBefore,
		ExpiresAt:    g.ExpiresAt,
		Scope:        g.Scope,
		Binding:      g.Binding,
		SingleUse:    g.SingleUse,
		AllowDynamic: g.AllowDynamic,
		Approval:     g.Approval,
	}
	if t.NotBefore.IsZero() {
		t.NotBefore = now
	}
	if t.ExpiresAt.IsZero() {
		ttl := g.TTL
		if ttl <= 0 {
			ttl = s.ttl
		}
		t.ExpiresAt = t.NotBefore.Add(ttl)
	}
	return s.issue(ctx, t)
}

func (s *Service) issue(ctx context.Context, t *Token) (*Token, []byte, error) {
	if s.key == nil {
		return nil, nil, errors.New("capability: this service has no signing key")
	}
	id, err := s.newID()
	if err != nil {
		return nil, nil, err
	}
	t.ID = id
	t.NotBefore = t.NotBefore.Truncate(time.Second).UTC()
	t.ExpiresAt = t.ExpiresAt.Truncate(time.Second).UTC()
	t.IssuedAt = t.IssuedAt.UTC()
	if err := Sign(t, s.key); err != nil {
		return nil, nil, err
	}
	enc, err := t.Encode()
	if err != nil {
		return nil, nil, err
	}
	// Verify what we are about to store exactly as a user of it would:
	// a token signed by an untrusted service key is refused here.
	vt, err := s.verifier.Authentic(enc)
	if err != nil {
		return nil, nil, err
	}
	if err := s.store.Put(ctx, vt, enc); err != nil {
		return nil, nil, fmt.Errorf("store token: %w", err)
	}
	s.mu.Lock()
	s.idx.add(vt, enc)
	s.mu.Unlock()
	return vt, enc, nil
}

// use verifies a token for a use in c: signature, time, scope, then the
// stored state (present, same encoding, not revoked), and consumes it when
// single-use. It does not check what the token grants.
func (s *Service) use(ctx context.Context, enc []byte, c Context) (*Token, error) {
	if c.Now.IsZero() {
		c.Now = s.now()
	}
	t, err := s.verifier.Check(enc, c)
	if err != nil {
		return nil, err
	}
	st, err := s.store.State(ctx, t.ID)
	if err != nil {
		if errors.Is(err, ErrUnknownToken) {
			return nil, &VerifyError{Reason: ErrUnknownToken, TokenID: t.ID}
		}
		return nil, fmt.Errorf("token %s: read state: %w", t.ID, err)
	}
	switch {
	case st.Hash != HashOf(enc):
		return nil, &VerifyError{Reason: ErrUnknownToken, TokenID: t.ID, Detail: "the stored token with this id differs"}
	case st.Revoked:
		s.drop(t.ID)
		return nil, &VerifyError{Reason: ErrRevoked, TokenID: t.ID}
	case t.SingleUse && st.Used:
		s.drop(t.ID)
		return nil, &VerifyError{Reason: ErrAlreadyUsed, TokenID: t.ID}
	}
	if t.SingleUse {
		err := s.store.Consume(ctx, t.ID, c.Now)
		s.drop(t.ID)
		if err != nil {
			for _, reason := range []error{ErrAlreadyUsed, ErrRevoked, ErrUnknownToken} {
				if errors.Is(err, reason) {
					return nil, &VerifyError{Reason: reason, TokenID: t.ID}
				}
			}
			return nil, fmt.Errorf("token %s: consume: %w", t.ID, err)
		}
	}
	return t, nil
}

func (s *Service) drop(id ID) {
	s.mu.Lock()
	s.idx.remove(id)
	s.mu.Unlock()
}

// Use verifies a presented token for one action: every check of the
// package comment, that it grants perm on resource, and, for a single-use
// token, consumes it. Any error means "not authorized".
func (s *Service) Use(ctx context.Context, enc []byte, resource string, perm Permissions, c Context) (*Token, error) {
	t, err := s.verifier.Authentic(enc)
	if err != nil {
		return nil, err
	}
	if err := covers(t, resource, perm); err != nil {
		return nil, err
	}
	return s.use(ctx, enc, c)
}

func covers(t *Token, resource string, perm Permissions) error {
	if perm == 0 || !t.Permissions.Contains(perm) {
		return &VerifyError{Reason: ErrNotCovered, TokenID: t.ID, Detail: fmt.Sprintf("grants %s, not %s", t.Permissions, perm)}
	}
	p, err := ParsePattern(t.Resource)
	if err != nil || !p.Match(resource) {
		return &VerifyError{Reason: ErrNotCovered, TokenID: t.ID, Detail: fmt.Sprintf("%s does not match the resource", t.Resource)}
	}
	return nil
}

// FindCovering returns the indexed tokens that grant perm on resource and
// are within their time window and scope for c, preferred first (reusable
// before single-use, then soonest to expire). It reads only memory; the
// tokens must still pass Use (Authorize does both).
func (s *Service) FindCovering(resource string, perm Permissions, c Context) []*Token {
	es := s.find(resource, perm, c)
	ts := make([]*Token, len(es))
	for i, e := range es {
		ts[i] = e.t
	}
	return ts
}

func (s *Service) find(resource string, perm Permissions, c Context) []*entry {
	if perm == 0 {
		return nil
	}
	r, err := ParseResource(resource)
	if err != nil {
		return nil
	}
	if c.Now.IsZero() {
		c.Now = s.now()
	}
	var found []*entry
	s.mu.RLock()
	s.idx.walk(r, func(e *entry) {
		if e.t.Permissions.Contains(perm) && s.verifier.checkUse(e.t, c) == nil && e.pat.MatchResource(r) {
			found = append(found, e)
		}
	})
	s.mu.RUnlock()
	slices.SortFunc(found, func(a, b *entry) int {
		if a.t.SingleUse != b.t.SingleUse {
			if a.t.SingleUse {
				return 1
			}
			return -1
		}
		if c := a.t.ExpiresAt.Compare(b.t.ExpiresAt); c != 0 {
			return c
		}
		return slices.Compare(a.t.ID[:], b.t.ID[:])
	})
	return found
}

// Authorize finds a token covering the action and uses it (consuming it
// if single-use). It returns the token that passed, or an error: a
// *VerifyError with ErrNotCovered when no token passed.
func (s *Service) Authorize(ctx context.Context, resource string, perm Permissions, c Context) (*Token, error) {
	return s.AuthorizeWhere(ctx, resource, perm, c, nil)
}

// AuthorizeWhere is Authorize restricted to the candidate tokens accept
// agrees to (nil accepts all). accept runs before a token is used, so a
// single-use token it refuses is not consumed. The interceptor uses it to
// demand AllowDynamic for dynamic commands and literal patterns for
// compound command lines.
func (s *Service) AuthorizeWhere(ctx context.Context, resource string, perm Permissions, c Context, accept func(*Token, Pattern) bool) (*Token, error) {
	cands := s.find(resource, perm, c)
	if accept != nil {
		kept := cands[:0:0]
		for _, e := range cands {
			if accept(e.t, e.pat) {
				kept = append(kept, e)
			}
		}
		cands = kept
	}
	var last error
	for _, e := range cands {
		t, err := s.use(ctx, e.enc, c)
		if err == nil {
			return t, nil
		}
		var ve *VerifyError
		if !errors.As(err, &ve) {
			return nil, err // the store failed: fail closed, do not try others
		}
		last = err
	}
	detail := "no stored token grants it"
	if last != nil {
		detail = fmt.Sprintf("%d candidate tokens refused; last: %v", len(cands), last)
	}
	return nil, &VerifyError{Reason: ErrNotCovered, Detail: detail}
}

// Attenuate issues a child of the stored token parentID, narrowed by g
// (zero fields inherit the parent's; see Grant). The parent is verified as
// for a use in c (and consumed if single-use); the child must pass
// CheckAttenuation, else the error wraps ErrWider and nothing is stored.
func (s *Service) Attenuate(ctx context.Context, parentID ID, g Grant, c Context) (*Token, []byte, error) {
	rec, err := s.store.Get(ctx, parentID)
	if err != nil {
		return nil, nil, err
	}
	now := s.now().Truncate(time.Second)
	if c.Now.IsZero() {
		c.Now = now
	}
	parent, err := s.verifier.Authentic(rec.Encoded)
	if err != nil {
		return nil, nil, err
	}
	child := &Token{
		Version:      Version,
		Parent:       parent.ID,
		Principal:    or(g.Principal, parent.Principal),
		Resource:     or(g.Resource, parent.Resource),
		Permissions:  or(g.Permissions, parent.Permissions),
		IssuedAt:     now,
		NotBefore:    or(g.NotBefore, parent.NotBefore),
		ExpiresAt:    g.ExpiresAt,
		Scope:        or(g.Scope, parent.Scope),
		Binding:      g.Binding,
		SingleUse:    g.SingleUse || parent.SingleUse,
		AllowDynamic: g.AllowDynamic,
		Approval:     g.Approval,
	}
	if g.Scope == 0 {
		child.Binding = parent.Binding
	}
	if len(child.Approval) == 0 {
		child.Approval = parent.Approval
	}
	if child.ExpiresAt.IsZero() {
		if g.TTL > 0 {
			child.ExpiresAt = child.NotBefore.Add(g.TTL)
		} else {
			child.ExpiresAt = parent.ExpiresAt
		}
	}
	// Truncate before checking, exactly as issue will.
	child.NotBefore = child.NotBefore.Truncate(time.Second).UTC()
	child.ExpiresAt = child.ExpiresAt.Truncate(time.Second).UTC()
	if err := CheckAttenuation(parent, child); err != nil {
		return nil, nil, err
	}
	if _, err := s.use(ctx, rec.Encoded, c); err != nil {
		return nil, nil, fmt.Errorf("parent: %w", err)
	}
	return s.issue(ctx, child)
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Revoke revokes the token and all its descendants, drops them from the
// index and empties the verification cache. It returns the ids it newly
// revoked, the token's first (none if it was already revoked).
func (s *Service) Revoke(ctx context.Context, id ID, reason string) ([]ID, error) {
	ids, err := s.store.Revoke(ctx, id, reason, s.now())
	// Whatever happened, forget cached verifications: a partial failure
	// must not leave a revoked token cached.
	s.verifier.Forget()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, id := range ids {
		s.idx.remove(id)
	}
	s.mu.Unlock()
	return ids, nil
}

// Status explains whether a stored token would verify at now, without
// using it: signature, time window, revocation and single-use state. The
// scope binding is not checked (there is no caller to compare it with).
// A nil error means it verifies.
func (v *Verifier) Status(r Record, now time.Time) error {
	t, err := v.Authentic(r.Encoded)
	if err != nil {
		return err
	}
	if err := v.checkUse(t, Context{Now: now, SessionID: t.Binding, Workspace: t.Binding}); err != nil {
		return err
	}
	switch {
	case !r.RevokedAt.IsZero():
		return &VerifyError{Reason: ErrRevoked, TokenID: t.ID, Detail: r.RevokeReason}
	case t.SingleUse && !r.UsedAt.IsZero():
		return &VerifyError{Reason: ErrAlreadyUsed, TokenID: t.ID}
	}
	return nil
}
