package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/keys"
)

var tokT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type tokenMaker struct {
	t   *testing.T
	key *keys.Key
	n   byte
}

func newTokenMaker(t *testing.T) *tokenMaker {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &tokenMaker{t: t, key: &keys.Key{Private: priv}}
}

// make returns a signed token and its encoding.
func (m *tokenMaker) make(parent capability.ID, singleUse bool) (*capability.Token, []byte) {
	m.t.Helper()
	m.n++
	tok := &capability.Token{
		Version:     capability.Version,
		ID:          capability.ID{0xaa, m.n},
		Principal:   "alice",
		Resource:    "file:///home/alice/**",
		Permissions: capability.Read,
		IssuedAt:    tokT0.Add(time.Duration(m.n) * time.Second),
		NotBefore:   tokT0,
		ExpiresAt:   tokT0.Add(time.Hour),
		Scope:       capability.ScopePersistent,
		SingleUse:   singleUse,
		Parent:      parent,
	}
	if err := capability.Sign(tok, m.key); err != nil {
		m.t.Fatal(err)
	}
	enc, err := tok.Encode()
	if err != nil {
		m.t.Fatal(err)
	}
	return tok, enc
}

func (m *tokenMaker) put(s *TokenStore, parent capability.ID, singleUse bool) *capability.Token {
	m.t.Helper()
	tok, enc := m.make(parent, singleUse)
	if err := s.Put(context.Background(), tok, enc); err != nil {
		m.t.Fatalf("Put: %v", err)
	}
	return tok
}

func TestTokenStorePutGetList(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	s := NewTokenStore(db)
	m := newTokenMaker(t)
	a, encA := m.make(capability.ID{}, false)
	if err := s.Put(ctx, a, encA); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, a, encA); err == nil {
		t.Error("Put accepted a duplicate id")
	}
	r, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(capability.Record{Token: a, Encoded: encA}, r); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	st, err := s.State(ctx, a.ID)
	if err != nil || st != (capability.State{Hash: capability.HashOf(encA)}) {
		t.Errorf("State = %+v, %v", st, err)
	}
	if _, err := s.Get(ctx, capability.ID{9}); !errors.Is(err, capability.ErrUnknownToken) {
		t.Errorf("Get(missing) = %v, want ErrUnknownToken", err)
	}
	if _, err := s.State(ctx, capability.ID{9}); !errors.Is(err, capability.ErrUnknownToken) {
		t.Errorf("State(missing) = %v, want ErrUnknownToken", err)
	}
	b := m.put(s, capability.ID{}, true)
	if err := s.Consume(ctx, b.ID, tokT0); err != nil {
		t.Fatal(err)
	}
	c := m.put(s, capability.ID{}, false)
	if _, err := s.Revoke(ctx, c.ID, "test", tokT0); err != nil {
		t.Fatal(err)
	}
	ids := func(rs []capability.Record) []capability.ID {
		var out []capability.ID
		for _, r := range rs {
			out = append(out, r.Token.ID)
		}
		return out
	}
	active, err := s.List(ctx, false, tokT0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]capability.ID{a.ID}, ids(active)); diff != "" {
		t.Errorf("List(active) (-want +got):\n%s", diff)
	}
	expired, err := s.List(ctx, false, tokT0.Add(2*time.Hour))
	if err != nil || len(expired) != 0 {
		t.Errorf("List(active, later) = %d tokens, %v; want none", len(expired), err)
	}
	all, err := s.List(ctx, true, tokT0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]capability.ID{a.ID, b.ID, c.ID}, ids(all)); diff != "" {
		t.Errorf("List(all) (-want +got):\n%s", diff)
	}
	if all[2].RevokeReason != "test" || !all[2].RevokedAt.Equal(tokT0) || !all[1].UsedAt.Equal(tokT0) {
		t.Errorf("state not recorded: %+v %+v", all[1], all[2])
	}
}

func TestTokenStoreRevokeTransitive(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	s := NewTokenStore(db)
	m := newTokenMaker(t)
	root := m.put(s, capability.ID{}, false)
	child := m.put(s, root.ID, false)
	grandchild := m.put(s, child.ID, false)
	sibling := m.put(s, root.ID, false)
	other := m.put(s, capability.ID{}, false)

	got, err := s.Revoke(ctx, child.ID, "compromised", tokT0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]capability.ID{child.ID, grandchild.ID}, got, cmpIDs); diff != "" {
		t.Errorf("Revoke(child) (-want +got):\n%s", diff)
	}
	got, err = s.Revoke(ctx, root.ID, "", tokT0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]capability.ID{root.ID, sibling.ID}, got, cmpIDs); diff != "" {
		t.Errorf("Revoke(root) (-want +got):\n%s", diff)
	}
	if got, err := s.Revoke(ctx, root.ID, "", tokT0); err != nil || len(got) != 0 {
		t.Errorf("second Revoke = %v, %v; want nothing new", got, err)
	}
	if _, err := s.Revoke(ctx, capability.ID{7}, "", tokT0); !errors.Is(err, capability.ErrUnknownToken) {
		t.Errorf("Revoke(missing) = %v", err)
	}
	if st, _ := s.State(ctx, other.ID); st.Revoked {
		t.Error("an unrelated token was revoked")
	}
	// No child may be attached to a revoked or missing parent.
	tok, enc := m.make(child.ID, false)
	if err := s.Put(ctx, tok, enc); !errors.Is(err, capability.ErrRevoked) {
		t.Errorf("Put(child of revoked) = %v, want ErrRevoked", err)
	}
	tok, enc = m.make(capability.ID{0x42}, false)
	if err := s.Put(ctx, tok, enc); !errors.Is(err, capability.ErrUnknownToken) {
		t.Errorf("Put(child of missing) = %v, want ErrUnknownToken", err)
	}
	// A revoked single-use token cannot be consumed.
	su := m.put(s, capability.ID{}, true)
	if _, err := s.Revoke(ctx, su.ID, "", tokT0); err != nil {
		t.Fatal(err)
	}
	if err := s.Consume(ctx, su.ID, tokT0); !errors.Is(err, capability.ErrRevoked) {
		t.Errorf("Consume(revoked) = %v, want ErrRevoked", err)
	}
}

var cmpIDs = cmp.Transformer("sortIDs", func(ids []capability.ID) map[capability.ID]bool {
	m := map[capability.ID]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
})

// TestTokenStoreConsumeRace consumes one single-use token from many
// goroutines over two handles on the same file (as two processes would):
// exactly one succeeds.
func TestTokenStoreConsumeRace(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state.db")
	db1, err := Open(ctx, p, Options{Sync: SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer db1.Close()
	db2, err := Open(ctx, p, Options{Sync: SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	stores := []*TokenStore{NewTokenStore(db1), NewTokenStore(db2)}
	m := newTokenMaker(t)
	for round := 0; round < 5; round++ {
		tok := m.put(stores[0], capability.ID{}, true)
		var wins, used atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(s *TokenStore) {
				defer wg.Done()
				err := s.Consume(ctx, tok.ID, tokT0)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, capability.ErrAlreadyUsed):
					used.Add(1)
				default:
					t.Errorf("Consume: %v", err)
				}
			}(stores[i%2])
		}
		wg.Wait()
		if wins.Load() != 1 || used.Load() != 15 {
			t.Fatalf("round %d: %d consumers won, %d saw ErrAlreadyUsed; want 1 and 15", round, wins.Load(), used.Load())
		}
	}
}

func TestTokenStoreRejectsOversized(t *testing.T) {
	db, _ := openTemp(t)
	s := NewTokenStore(db)
	tok, _ := newTokenMaker(t).make(capability.ID{}, false)
	if err := s.Put(context.Background(), tok, make([]byte, capability.MaxEncodedSize+1)); err == nil {
		t.Error("Put accepted an oversized encoding")
	}
	if all, err := s.List(context.Background(), true, tokT0); err != nil || len(all) != 0 {
		t.Errorf("after a failed Put: %d tokens, %v", len(all), err)
	}
}
