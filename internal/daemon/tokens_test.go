package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/store"
)

// issueTokens issues a persistent token and one attenuated from it.
func issueTokens(t *testing.T, r *running) (parent, child *capability.Token) {
	t.Helper()
	ctx := context.Background()
	approval := make([]byte, 32)
	parent, _, err := r.d.core.Tokens.Issue(ctx, capability.Grant{Principal: "local:test", Resource: "file:///w/*",
		Permissions: capability.Read | capability.Write, Scope: capability.ScopePersistent, TTL: time.Hour, Approval: approval})
	if err != nil {
		t.Fatal(err)
	}
	child, _, err = r.d.core.Tokens.Attenuate(ctx, parent.ID, capability.Grant{Resource: "file:///w/a.txt", Permissions: capability.Read}, capability.Context{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return parent, child
}

func TestListTokensMethod(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	c := dial(t, h)
	ctx := context.Background()
	if got, err := c.ListTokens(ctx, api.ListTokensParams{}); err != nil || len(got) != 0 {
		t.Fatalf("ListTokens on a fresh home = %+v, %v", got, err)
	}
	parent, child := issueTokens(t, r)
	got, err := c.ListTokens(ctx, api.ListTokensParams{})
	if err != nil || len(got) != 2 {
		t.Fatalf("ListTokens = %+v, %v; want 2", got, err)
	}
	ids := map[string]api.TokenInfo{}
	for _, x := range got {
		ids[x.ID] = x
	}
	p, ch := ids[parent.ID.String()], ids[child.ID.String()]
	if p.Status != "active" || p.Resource != "file:///w/*" || p.Scope != "persistent" || ch.Parent != parent.ID.String() {
		t.Fatalf("tokens = %+v", got)
	}
	if p.Verified != nil {
		t.Error("listTokens says whether a token verifies; only showToken checks")
	}
	if _, err := c.RevokeToken(ctx, api.RevokeTokenParams{ID: child.ID.String()}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.ListTokens(ctx, api.ListTokensParams{}); len(got) != 1 {
		t.Errorf("active tokens after revoking one = %d, want 1", len(got))
	}
	if got, _ := c.ListTokens(ctx, api.ListTokensParams{All: true}); len(got) != 2 {
		t.Errorf("all tokens = %d, want 2", len(got))
	}
}

func TestShowTokenMethod(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	c := dial(t, h)
	ctx := context.Background()
	parent, _ := issueTokens(t, r)
	got, err := c.ShowToken(ctx, parent.ID.String())
	if err != nil || got.ID != parent.ID.String() || got.Verified == nil || !*got.Verified || got.VerifyError != "" {
		t.Fatalf("ShowToken = %+v, %v; want a verified token", got, err)
	}
	// A token that no longer verifies says why.
	if _, err := r.d.core.Tokens.Revoke(ctx, parent.ID, "compromised"); err != nil {
		t.Fatal(err)
	}
	got, err = c.ShowToken(ctx, parent.ID.String())
	if err != nil || got.Verified == nil || *got.Verified || !strings.Contains(got.VerifyError, "revoked") || got.Status != "revoked" || got.RevokeReason != "compromised" {
		t.Fatalf("ShowToken(revoked) = %+v, %v", got, err)
	}
	if _, err := c.ShowToken(ctx, "not-a-token-id"); !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("ShowToken(malformed) = %v, want ErrInvalidParams", err)
	}
	if _, err := c.ShowToken(ctx, capability.ID{9}.String()); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("ShowToken(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := c.ShowToken(ctx, ""); !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("ShowToken(\"\") = %v, want ErrInvalidParams", err)
	}
}

// TestRevokeTokenMethod: the token and its descendants are revoked, stop
// authorizing at once, the revocation is audited and published on the
// bus, one security.capability_revoked per token.
func TestRevokeTokenMethod(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	c := dial(t, h)
	ctx := context.Background()
	parent, child := issueTokens(t, r)
	sub := r.d.Bus().Subscribe(100, nil)
	defer sub.Close()

	got, err := c.RevokeToken(ctx, api.RevokeTokenParams{ID: parent.ID.String(), Reason: "laptop stolen"})
	if err != nil || len(got) != 2 || got[0] != parent.ID.String() || got[1] != child.ID.String() {
		t.Fatalf("RevokeToken = %q, %v; want the parent then the child", got, err)
	}
	// The daemon's index forgot them: nothing authorizes any more.
	if _, err := r.d.core.Tokens.Authorize(ctx, "file:///w/a.txt", capability.Read, capability.Context{Now: time.Now()}); err == nil {
		t.Error("a revoked token still authorizes")
	}

	revoked := map[string]bool{}
	auditSeq := int64(-1)
	deadline := time.After(5 * time.Second)
	for len(revoked) < 2 || auditSeq < 0 {
		select {
		case e := <-sub.C:
			switch e.Kind {
			case events.CapabilityRevoked:
				s := e.Data.(events.Security)
				if s.Resource != "token://"+parent.ID.String() {
					t.Errorf("capability_revoked resource = %q", s.Resource)
				}
				revoked[s.TokenID] = true
			case events.AuditEntryCreated:
				auditSeq = e.Data.(events.Audit).Seq
			}
		case <-deadline:
			t.Fatalf("events: revoked %v, audit seq %d", revoked, auditSeq)
		}
	}
	if !revoked[parent.ID.String()] || !revoked[child.ID.String()] {
		t.Errorf("capability_revoked for %v", revoked)
	}

	// The audit log has the revocation, by whom and why.
	ses, err := r.d.core.DB.Audit().List(ctx, store.AuditFilter{Session: "daemon"})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, se := range ses {
		if se.Seq != auditSeq {
			continue
		}
		e, err := audit.Decode(se.Data)
		if err != nil {
			t.Fatal(err)
		}
		found = e.Action.Kind == "capability_revoke" && e.Proof.TokenID == parent.ID.String() &&
			strings.Contains(e.Text, "laptop stolen") && strings.Contains(e.Text, "1 descendant") && e.Frontend == "test"
		if !found {
			t.Errorf("audit entry = %+v", e)
		}
	}
	if !found {
		t.Fatalf("no audit entry %d among %d", auditSeq, len(ses))
	}

	// Revoking again revokes nothing and audits nothing.
	if got, err := c.RevokeToken(ctx, api.RevokeTokenParams{ID: parent.ID.String()}); err != nil || len(got) != 0 {
		t.Fatalf("second RevokeToken = %q, %v; want none", got, err)
	}
	select {
	case e := <-sub.C:
		t.Errorf("a second revocation published %+v", e)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := c.RevokeToken(ctx, api.RevokeTokenParams{ID: capability.ID{9}.String()}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("RevokeToken(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := c.RevokeToken(ctx, api.RevokeTokenParams{ID: "nope"}); !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("RevokeToken(malformed) = %v, want ErrInvalidParams", err)
	}
	if _, err := c.RevokeToken(ctx, api.RevokeTokenParams{ID: parent.ID.String(), Reason: strings.Repeat("x", 2000)}); !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("RevokeToken(long reason) = %v, want ErrInvalidParams", err)
	}
}
