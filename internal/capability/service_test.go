package capability_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock          { c := &clock{}; c.set(t0); return c }
func (c *clock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time) {
	c.ns.Store(t.UnixNano())
}

func newKey(t testing.TB) *keys.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keys.Key{Name: keys.Runtime, Private: priv, Created: t0}
}

type fixture struct {
	svc   *capability.Service
	db    *store.DB
	path  string
	key   *keys.Key
	clock *clock
}

func openDB(t testing.TB, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path, store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newService(t testing.TB, db *store.DB, k *keys.Key, c *clock) *capability.Service {
	t.Helper()
	svc, err := capability.New(context.Background(), capability.Options{
		Store:     store.NewTokenStore(db),
		Trusted:   keys.Trusted{k.ID(): k.Public()},
		Key:       k,
		ClockSkew: 30 * time.Second,
		Now:       c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state.db")
	f := &fixture{path: p, db: openDB(t, p), key: newKey(t), clock: newClock()}
	f.svc = newService(t, f.db, f.key, f.clock)
	return f
}

func (f *fixture) issue(t testing.TB, g capability.Grant) (*capability.Token, []byte) {
	t.Helper()
	if g.Principal == "" {
		g.Principal = "alice"
	}
	tok, enc, err := f.svc.Issue(context.Background(), g)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", g, err)
	}
	return tok, enc
}

var (
	sess1 = capability.Context{SessionID: "s1", Workspace: "/home/alice/project"}
	sess2 = capability.Context{SessionID: "s2", Workspace: "/home/alice/other"}
)

func wantReason(t *testing.T, err, reason error) {
	t.Helper()
	if reason == nil {
		if err != nil {
			t.Fatalf("err = %v, want success", err)
		}
		return
	}
	var ve *capability.VerifyError
	if !errors.Is(err, reason) || !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *VerifyError with %v", err, reason)
	}
}

func TestIssueAuthorize(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok, enc := f.issue(t, capability.Grant{
		Resource: "file:///home/alice/project/**", Permissions: capability.Read | capability.Write,
		Scope: capability.ScopeSession, Binding: "s1",
	})
	if !tok.ExpiresAt.Equal(t0.Add(capability.DefaultTTL)) || tok.Issuer != f.key.ID() {
		t.Errorf("issued %+v", tok)
	}
	got, err := f.svc.Authorize(ctx, "file:///home/alice/project/a.go", capability.Write, sess1)
	if err != nil || got.ID != tok.ID {
		t.Fatalf("Authorize = %v, %v", got, err)
	}
	for _, tc := range []struct {
		name     string
		resource string
		perm     capability.Permissions
		c        capability.Context
	}{
		{"other file", "file:///home/alice/secret", capability.Read, sess1},
		{"permission not granted", "file:///home/alice/project/a.go", capability.Delete, sess1},
		{"no permission asked", "file:///home/alice/project/a.go", 0, sess1},
		{"other session", "file:///home/alice/project/a.go", capability.Read, sess2},
		{"relative path", "file://home/alice/project/a.go", capability.Read, sess1},
		{"dotdot", "file:///home/alice/project/../../etc/passwd", capability.Read, sess1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Authorize(ctx, tc.resource, tc.perm, tc.c)
			wantReason(t, err, capability.ErrNotCovered)
		})
	}
	// Use of the presented token checks coverage too.
	_, err = f.svc.Use(ctx, enc, "exec://ls", capability.Execute, sess1)
	wantReason(t, err, capability.ErrNotCovered)
	_, err = f.svc.Use(ctx, enc, "file:///home/alice/project/x", capability.Read, sess1)
	wantReason(t, err, nil)
}

func TestUseRejects(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	res := "exec://git status"
	g := capability.Grant{Resource: "exec://git status*", Permissions: capability.Execute}
	sessTok := g
	sessTok.Scope, sessTok.Binding = capability.ScopeSession, "s1"
	wsTok := g
	wsTok.Scope, wsTok.Binding = capability.ScopeWorkspace, "/home/alice/project"
	_, encSess := f.issue(t, sessTok)
	_, encWS := f.issue(t, wsTok)
	later := g
	later.Scope, later.NotBefore, later.TTL = capability.ScopePersistent, t0.Add(time.Hour), time.Hour
	_, encLater := f.issue(t, later)
	revoked := g
	revoked.Scope = capability.ScopePersistent
	tokRevoked, encRevoked := f.issue(t, revoked)
	if ids, err := f.svc.Revoke(ctx, tokRevoked.ID, "test"); err != nil || len(ids) != 1 {
		t.Fatalf("Revoke = %v, %v", ids, err)
	}
	// A token signed by the trusted key but never stored.
	other := newKey(t)
	stranger := &capability.Token{Version: 1, ID: capability.ID{7}, Principal: "alice", Resource: "exec://git status*",
		Permissions: capability.Execute, IssuedAt: t0, NotBefore: t0, ExpiresAt: t0.Add(time.Hour), Scope: capability.ScopePersistent}
	if err := capability.Sign(stranger, f.key); err != nil {
		t.Fatal(err)
	}
	encStranger, _ := stranger.Encode()
	// The same, signed by an untrusted key.
	if err := capability.Sign(stranger, other); err != nil {
		t.Fatal(err)
	}
	encForged, _ := stranger.Encode()
	// A different token reusing a stored token's id.
	twin, err := capability.Decode(encWS)
	if err != nil {
		t.Fatal(err)
	}
	twin.Permissions |= capability.Delete
	if err := capability.Sign(twin, f.key); err != nil {
		t.Fatal(err)
	}
	encTwin, _ := twin.Encode()

	in := t0.Add(10 * time.Minute)
	at := func(c capability.Context, tm time.Time) capability.Context { c.Now = tm; return c }
	tests := []struct {
		name string
		enc  []byte
		c    capability.Context
		want error
	}{
		{"session token in its session", encSess, at(sess1, in), nil},
		{"workspace token in its workspace", encWS, at(sess1, in), nil},
		{"wrong session", encSess, at(sess2, in), capability.ErrScopeMismatch},
		{"wrong workspace", encWS, at(sess2, in), capability.ErrScopeMismatch},
		{"expired", encSess, at(sess1, t0.Add(2*time.Hour)), capability.ErrExpired},
		{"not yet valid", encLater, at(sess1, in), capability.ErrNotYetValid},
		{"revoked", encRevoked, at(sess1, in), capability.ErrRevoked},
		{"not stored", encStranger, at(sess1, in), capability.ErrUnknownToken},
		{"untrusted issuer", encForged, at(sess1, in), capability.ErrUnknownIssuer},
		{"same id, other token", encTwin, at(sess1, in), capability.ErrUnknownToken},
		{"garbage", []byte("not a token"), at(sess1, in), capability.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Use(ctx, tt.enc, res, capability.Execute, tt.c)
			wantReason(t, err, tt.want)
		})
	}
}

// TestSingleUseReplay uses one single-use token from many goroutines, over
// two services on two handles of the same database (two processes):
// exactly one use passes.
func TestSingleUseReplay(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc2 := newService(t, openDB(t, f.path), f.key, f.clock)
	svcs := []*capability.Service{f.svc, svc2}
	for round := 0; round < 3; round++ {
		_, enc := f.issue(t, capability.Grant{Resource: "exec://make deploy", Permissions: capability.Execute,
			Scope: capability.ScopePersistent, SingleUse: true})
		var wins, used atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func(svc *capability.Service, viaAuthorize bool) {
				defer wg.Done()
				var err error
				if viaAuthorize {
					_, err = svc.Authorize(ctx, "exec://make deploy", capability.Execute, sess1)
				} else {
					_, err = svc.Use(ctx, enc, "exec://make deploy", capability.Execute, sess1)
				}
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, capability.ErrAlreadyUsed), errors.Is(err, capability.ErrNotCovered):
					used.Add(1)
				default:
					t.Errorf("use: %v", err)
				}
			}(svcs[i%2], i%4 < 2)
		}
		wg.Wait()
		if wins.Load() != 1 || used.Load() != 19 {
			t.Fatalf("round %d: %d uses passed, %d refused; want 1 and 19", round, wins.Load(), used.Load())
		}
		_, err := f.svc.Use(ctx, enc, "exec://make deploy", capability.Execute, sess1)
		wantReason(t, err, capability.ErrAlreadyUsed)
	}
}

func TestRevokeDropsCacheAndIndex(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	res := "mcp://github/create_issue"
	tok, enc := f.issue(t, capability.Grant{Resource: "mcp://github/*", Permissions: capability.Invoke, Scope: capability.ScopePersistent})
	if _, err := f.svc.Use(ctx, enc, res, capability.Invoke, sess1); err != nil {
		t.Fatal(err)
	}
	if n := capability.CachedCount(f.svc.Verifier()); n == 0 {
		t.Fatal("a verified token was not cached")
	}
	if ids, err := f.svc.Revoke(ctx, tok.ID, "test"); err != nil || len(ids) != 1 {
		t.Fatalf("Revoke = %v, %v", ids, err)
	}
	if n := capability.CachedCount(f.svc.Verifier()); n != 0 {
		t.Errorf("cache holds %d tokens after a revocation", n)
	}
	if got := f.svc.FindCovering(res, capability.Invoke, sess1); len(got) != 0 {
		t.Errorf("FindCovering after revoke = %v", got)
	}
	_, err := f.svc.Use(ctx, enc, res, capability.Invoke, sess1)
	wantReason(t, err, capability.ErrRevoked)
	_, err = f.svc.Authorize(ctx, res, capability.Invoke, sess1)
	wantReason(t, err, capability.ErrNotCovered)
}

// TestRevokeByOtherProcess revokes through a second handle (the CLI): the
// first service's cache and index still hold the token, and it is refused.
func TestRevokeByOtherProcess(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	res := "net://api.github.com:443"
	tok, enc := f.issue(t, capability.Grant{Resource: res, Permissions: capability.Read, Scope: capability.ScopePersistent})
	if _, err := f.svc.Authorize(ctx, res, capability.Read, sess1); err != nil {
		t.Fatal(err)
	}
	cli := store.NewTokenStore(openDB(t, f.path))
	if ids, err := cli.Revoke(ctx, tok.ID, "from the cli", t0); err != nil || len(ids) != 1 {
		t.Fatalf("Revoke = %v, %v", ids, err)
	}
	if capability.CachedCount(f.svc.Verifier()) == 0 || len(f.svc.FindCovering(res, capability.Read, sess1)) != 1 {
		t.Fatal("test premise: the first service still has the token cached and indexed")
	}
	_, err := f.svc.Use(ctx, enc, res, capability.Read, sess1)
	wantReason(t, err, capability.ErrRevoked)
	_, err = f.svc.Authorize(ctx, res, capability.Read, sess1)
	wantReason(t, err, capability.ErrNotCovered)
	if capability.IndexLen(f.svc) != 0 {
		t.Error("a token found revoked on use stayed in the index")
	}
}

func TestAttenuate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	parent, _ := f.issue(t, capability.Grant{
		Resource: "file:///home/alice/project/**", Permissions: capability.Read | capability.Write,
		Scope: capability.ScopeWorkspace, Binding: "/home/alice/project",
	})
	child, childEnc, err := f.svc.Attenuate(ctx, parent.ID, capability.Grant{
		Resource: "file:///home/alice/project/src/**", Permissions: capability.Read, TTL: 10 * time.Minute,
	}, sess1)
	if err != nil {
		t.Fatal(err)
	}
	want := capability.Token{
		Version: 1, ID: child.ID, Principal: "alice", Resource: "file:///home/alice/project/src/**",
		Permissions: capability.Read, IssuedAt: t0, NotBefore: t0, ExpiresAt: t0.Add(10 * time.Minute),
		Scope: capability.ScopeWorkspace, Binding: "/home/alice/project", Issuer: f.key.ID(),
		Parent: parent.ID, Signature: child.Signature,
	}
	if diff := cmp.Diff(&want, child); diff != "" {
		t.Errorf("child (-want +got):\n%s", diff)
	}
	if _, err := f.svc.Use(ctx, childEnc, "file:///home/alice/project/src/a.go", capability.Read, sess1); err != nil {
		t.Fatalf("child use: %v", err)
	}

	// Wider requests are refused and store nothing.
	before := capability.IndexLen(f.svc)
	for _, g := range []capability.Grant{
		{Resource: "file:///home/alice/**"},
		{Permissions: capability.Read | capability.Delete},
		{ExpiresAt: t0.Add(2 * time.Hour)},
		{Scope: capability.ScopePersistent},
		{AllowDynamic: true},
		{Principal: "mallory"},
	} {
		if _, _, err := f.svc.Attenuate(ctx, parent.ID, g, sess1); !errors.Is(err, capability.ErrWider) {
			t.Errorf("Attenuate(%+v) = %v, want ErrWider", g, err)
		}
	}
	if capability.IndexLen(f.svc) != before {
		t.Error("a refused attenuation was stored")
	}
	// Attenuating from the wrong workspace is a refused use of the parent.
	if _, _, err := f.svc.Attenuate(ctx, parent.ID, capability.Grant{}, sess2); !errors.Is(err, capability.ErrScopeMismatch) {
		t.Errorf("Attenuate from another workspace = %v", err)
	}

	// Revoking the parent revokes the child, transitively.
	grandchild, gcEnc, err := f.svc.Attenuate(ctx, child.ID, capability.Grant{Resource: "file:///home/alice/project/src/main.go"}, sess1)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := f.svc.Revoke(ctx, parent.ID, "done")
	if err != nil || len(ids) != 3 || ids[0] != parent.ID {
		t.Fatalf("Revoke(parent) = %v, %v; want the parent and its 2 descendants", ids, err)
	}
	_, err = f.svc.Use(ctx, childEnc, "file:///home/alice/project/src/a.go", capability.Read, sess1)
	wantReason(t, err, capability.ErrRevoked)
	_, err = f.svc.Use(ctx, gcEnc, "file:///home/alice/project/src/main.go", capability.Read, sess1)
	wantReason(t, err, capability.ErrRevoked)
	if _, _, err := f.svc.Attenuate(ctx, grandchild.ID, capability.Grant{}, sess1); !errors.Is(err, capability.ErrRevoked) {
		t.Errorf("Attenuate(revoked) = %v", err)
	}
}

func TestAttenuateSingleUseParent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	parent, _ := f.issue(t, capability.Grant{Resource: "exec://deploy *", Permissions: capability.Execute,
		Scope: capability.ScopePersistent, SingleUse: true})
	child, _, err := f.svc.Attenuate(ctx, parent.ID, capability.Grant{Resource: "exec://deploy staging"}, sess1)
	if err != nil {
		t.Fatal(err)
	}
	if !child.SingleUse {
		t.Error("child of a single-use parent is not single-use")
	}
	// The attenuation consumed the parent: no second child, no direct use.
	if _, _, err := f.svc.Attenuate(ctx, parent.ID, capability.Grant{Resource: "exec://deploy prod"}, sess1); !errors.Is(err, capability.ErrAlreadyUsed) {
		t.Errorf("second Attenuate = %v, want ErrAlreadyUsed", err)
	}
	if _, err := f.svc.Authorize(ctx, "exec://deploy prod", capability.Execute, sess1); !errors.Is(err, capability.ErrNotCovered) {
		t.Errorf("Authorize with consumed parent = %v", err)
	}
	if _, err := f.svc.Authorize(ctx, "exec://deploy staging", capability.Execute, sess1); err != nil {
		t.Errorf("child use: %v", err)
	}
}

func TestIssueRefusesUntrustedKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	trusted, other := newKey(t), newKey(t)
	svc, err := capability.New(context.Background(), capability.Options{
		Store: store.NewTokenStore(openDB(t, p)), Trusted: keys.Trusted{trusted.ID(): trusted.Public()}, Key: other,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.Issue(context.Background(), capability.Grant{Principal: "a", Resource: "exec://ls", Permissions: capability.Execute, Scope: capability.ScopePersistent})
	if !errors.Is(err, capability.ErrUnknownIssuer) {
		t.Errorf("Issue with an untrusted key = %v", err)
	}
	if _, _, err := svc.Issue(context.Background(), capability.Grant{Principal: "a", Resource: "file://x", Permissions: capability.Read, Scope: capability.ScopePersistent}); !errors.Is(err, capability.ErrMalformed) {
		t.Errorf("Issue(bad resource) = %v", err)
	}
}

func TestReloadSkipsUnverifiable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.issue(t, capability.Grant{Resource: "exec://ls", Permissions: capability.Execute, Scope: capability.ScopePersistent})
	// Another process, with a key this service does not trust, stores a token.
	outsider := newService(t, openDB(t, f.path), newKey(t), f.clock)
	if _, _, err := outsider.Issue(ctx, capability.Grant{Principal: "x", Resource: "exec://*", Permissions: capability.Execute, Scope: capability.ScopePersistent}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if n := capability.IndexLen(f.svc); n != 1 {
		t.Errorf("index holds %d tokens, want 1 (the untrusted one left out)", n)
	}
	if _, err := f.svc.Authorize(ctx, "exec://rm -rf /", capability.Execute, sess1); !errors.Is(err, capability.ErrNotCovered) {
		t.Errorf("untrusted stored token authorized: %v", err)
	}
}

// TestFindCoveringMatchesScan compares the index with a scan of every token.
func TestFindCoveringMatchesScan(t *testing.T) {
	f := newFixture(t)
	rng := mrand.New(mrand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	var all []*capability.Token
	for i := 0; i < 300; i++ {
		var res string
		switch rng.IntN(5) {
		case 0:
			res = "file:///" + pick("a", "b", "*") + "/" + pick("x", "y", "**", "*.go") + pick("", "/**", "/z")
		case 1:
			res = "exec://" + pick("git", "ls", "*", "g*") + pick("", " ", " status", " *", "*")
		case 2:
			res = "net://" + pick("a.com", "*.a.com", "**.a.com", "b.com") + ":" + pick("443", "80", "*")
		case 3:
			res = "mcp://" + pick("gh", "*") + "/" + pick("x", "*", "**")
		default:
			res = "capsule://" + pick("w", "v") + "/" + pick("f", "*")
		}
		scope, binding := capability.ScopePersistent, ""
		if rng.IntN(3) == 0 {
			scope, binding = capability.ScopeSession, pick("s1", "s2")
		}
		tok, _ := f.issue(t, capability.Grant{Resource: res, Permissions: capability.Permissions(1 + rng.IntN(127)),
			Scope: scope, Binding: binding, TTL: time.Duration(1+rng.IntN(120)) * time.Minute})
		all = append(all, tok)
	}
	resources := []string{
		"file:///a/x", "file:///a/x/z", "file:///b/main.go", "file:///a", "file:///b/y/q/r", "file:///c/x",
		"exec://git status", "exec://git", "exec://ls -l", "exec://gx", "exec://rm",
		"net://a.com:443", "net://x.a.com:80", "net://x.y.a.com:443", "net://b.com:80",
		"mcp://gh/x", "mcp://other/x", "capsule://w/f", "capsule://v/g",
	}
	for _, now := range []time.Time{t0, t0.Add(30 * time.Minute), t0.Add(3 * time.Hour)} {
		for _, r := range resources {
			for _, perm := range []capability.Permissions{capability.Read, capability.Execute | capability.Invoke} {
				for _, c := range []capability.Context{sess1, sess2} {
					c.Now = now
					var want []capability.ID
					for _, tok := range all {
						p, _ := capability.ParsePattern(tok.Resource)
						inScope := tok.Scope == capability.ScopePersistent || tok.Binding == c.SessionID
						inTime := !now.Before(tok.NotBefore.Add(-30*time.Second)) && now.Before(tok.ExpiresAt.Add(30*time.Second))
						if p.Match(r) && tok.Permissions.Contains(perm) && inScope && inTime {
							want = append(want, tok.ID)
						}
					}
					var got []capability.ID
					for _, tok := range f.svc.FindCovering(r, perm, c) {
						got = append(got, tok.ID)
					}
					sortIDs := cmp.Transformer("sort", func(ids []capability.ID) []string {
						s := make([]string, len(ids))
						for i, id := range ids {
							s[i] = id.String()
						}
						slices.Sort(s)
						return s
					})
					if diff := cmp.Diff(want, got, sortIDs); diff != "" {
						t.Fatalf("FindCovering(%s, %s, %+v) (-scan +index):\n%s", r, perm, c, diff)
					}
				}
			}
		}
	}
}

func TestFindCoveringPrefersReusable(t *testing.T) {
	f := newFixture(t)
	once, _ := f.issue(t, capability.Grant{Resource: "exec://ls", Permissions: capability.Execute, Scope: capability.ScopePersistent, SingleUse: true, TTL: time.Minute})
	late, _ := f.issue(t, capability.Grant{Resource: "exec://ls", Permissions: capability.Execute, Scope: capability.ScopePersistent, TTL: time.Hour})
	soon, _ := f.issue(t, capability.Grant{Resource: "exec://*", Permissions: capability.Execute, Scope: capability.ScopePersistent, TTL: 30 * time.Minute})
	var got []capability.ID
	for _, tok := range f.svc.FindCovering("exec://ls", capability.Execute, sess1) {
		got = append(got, tok.ID)
	}
	if diff := cmp.Diff([]capability.ID{soon.ID, late.ID, once.ID}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// Benchmarks. Run with: go test -run '^$' -bench . -benchtime 2000x ./internal/capability/

func benchToken(b *testing.B) (*capability.Verifier, []byte) {
	k := newKey(b)
	tok := &capability.Token{Version: 1, ID: capability.ID{1}, Principal: "alice", Resource: "file:///home/alice/project/**",
		Permissions: capability.Read | capability.Write, IssuedAt: t0, NotBefore: t0, ExpiresAt: t0.Add(time.Hour),
		Scope: capability.ScopeSession, Binding: "s1", Approval: make([]byte, 32)}
	if err := capability.Sign(tok, k); err != nil {
		b.Fatal(err)
	}
	enc, err := tok.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return capability.NewVerifier(keys.Trusted{k.ID(): k.Public()}, 30*time.Second), enc
}

func BenchmarkVerifyCold(b *testing.B) {
	v, enc := benchToken(b)
	c := capability.Context{Now: t0.Add(time.Minute), SessionID: "s1"}
	for b.Loop() {
		v.Forget()
		if _, err := v.Check(enc, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	v, enc := benchToken(b)
	c := capability.Context{Now: t0.Add(time.Minute), SessionID: "s1"}
	if _, err := v.Check(enc, c); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := v.Check(enc, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUse is a full use: cached signature, time, scope and the
// revocation state read from SQLite.
func BenchmarkUse(b *testing.B) {
	f := newFixture(b)
	_, enc := f.issue(b, capability.Grant{Resource: "file:///home/alice/project/**", Permissions: capability.Read, Scope: capability.ScopePersistent})
	ctx := context.Background()
	for b.Loop() {
		if _, err := f.svc.Use(ctx, enc, "file:///home/alice/project/a.go", capability.Read, sess1); err != nil {
			b.Fatal(err)
		}
	}
}

var (
	bench10kOnce sync.Once
	bench10k     *fixture
	benchDir     string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bench10k != nil {
		bench10k.db.Close()
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// fixture10k stores 10,000 tokens of every kind, 1 to 3 per subject.
func fixture10k(b *testing.B) *fixture {
	bench10kOnce.Do(func() {
		// The fixture outlives this b: give it its own directory.
		dir, err := os.MkdirTemp("", "astrid-bench-*")
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(dir, "state.db")
		db, err := store.Open(context.Background(), p, store.Options{Sync: store.SyncNormal})
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
		f := &fixture{path: p, db: db, key: newKey(b), clock: newClock()}
		svc, err := capability.New(context.Background(), capability.Options{Store: store.NewTokenStore(db),
			Trusted: keys.Trusted{f.key.ID(): f.key.Public()}, Key: f.key, Now: f.clock.now})
		if err != nil {
			b.Fatal(err)
		}
		f.svc = svc
		for i := 0; i < 10000; i++ {
			var res string
			switch i % 5 {
			case 0, 1:
				res = fmt.Sprintf("file:///home/u%d/proj%d/**", i%50, i)
			case 2:
				res = fmt.Sprintf("exec://tool%d sub%d *", i%300, i)
			case 3:
				res = fmt.Sprintf("net://host%d.example.com:443", i)
			default:
				res = fmt.Sprintf("mcp://server%d/tool%d", i%100, i)
			}
			scope, binding := capability.ScopePersistent, ""
			if i%3 == 0 {
				scope, binding = capability.ScopeSession, fmt.Sprintf("s%d", i%10)
			}
			if _, _, err := svc.Issue(context.Background(), capability.Grant{Principal: "alice", Resource: res,
				Permissions: capability.Read | capability.Write | capability.Execute | capability.Invoke, Scope: scope, Binding: binding}); err != nil {
				b.Fatal(err)
			}
		}
		if n := capability.IndexLen(svc); n != 10000 {
			b.Fatalf("indexed %d tokens, want 10000", n)
		}
		bench10k = f
	})
	if bench10k == nil {
		b.Fatal("fixture failed")
	}
	return bench10k
}

func BenchmarkFindCovering10k(b *testing.B) {
	f := fixture10k(b)
	c := capability.Context{Now: t0.Add(time.Minute), SessionID: "s1"}
	for _, bc := range []struct{ name, res string }{
		{"file_hit", "file:///home/u1/proj1001/src/deep/main.go"},
		{"file_miss", "file:///home/u1/elsewhere/main.go"},
		{"exec_hit", "exec://tool2 sub2 --flag value"},
		{"net_hit", "net://host3.example.com:443"},
		{"mcp_miss", "mcp://server4/nothing"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				f.svc.FindCovering(bc.res, capability.Read, c)
			}
		})
	}
}

// BenchmarkAuthorize10k is FindCovering plus a full use of the first
// candidate.
func BenchmarkAuthorize10k(b *testing.B) {
	f := fixture10k(b)
	c := capability.Context{SessionID: "s1"}
	ctx := context.Background()
	for b.Loop() {
		if _, err := f.svc.Authorize(ctx, "file:///home/u1/proj1001/src/main.go", capability.Read, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindCoveringWorstCase10k indexes 10,000 patterns that all start
// with a glob, so every lookup scans them all.
func BenchmarkFindCoveringWorstCase10k(b *testing.B) {
	f := newFixture(b)
	for i := 0; i < 10000; i++ {
		f.issue(b, capability.Grant{Resource: fmt.Sprintf("exec://*tool%d *", i), Permissions: capability.Execute, Scope: capability.ScopePersistent})
	}
	c := capability.Context{SessionID: "s1"}
	for b.Loop() {
		if got := f.svc.FindCovering("exec://mytool77 --flag", capability.Execute, c); len(got) != 1 {
			b.Fatalf("found %d", len(got))
		}
	}
}
