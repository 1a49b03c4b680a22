package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/store"
)

// The capability token methods: the CLI's `astrid tokens` goes through
// them while a daemon runs, so that a revocation drops the token from the
// daemon's index at once and is audited and published.

func (d *Daemon) listTokens(ctx context.Context, c *clientConn, p api.ListTokensParams) (api.ListTokensResult, error) {
	now := time.Now()
	recs, err := store.NewTokenStore(d.core.DB).List(ctx, p.All, now)
	if err != nil {
		return api.ListTokensResult{}, err
	}
	out := api.ListTokensResult{Tokens: make([]api.TokenInfo, 0, len(recs))}
	for _, r := range recs {
		out.Tokens = append(out.Tokens, capability.Info(r, now))
	}
	return out, nil
}

// tokenID parses a token id param.
func tokenID(s string) (capability.ID, error) {
	id, err := capability.ParseID(s)
	if err != nil {
		return id, fmt.Errorf("%w: id: %v", api.ErrInvalidParams, err)
	}
	return id, nil
}

// tokenErr maps an unknown token to ErrNotFound.
func tokenErr(id capability.ID, err error) error {
	if errors.Is(err, capability.ErrUnknownToken) {
		return fmt.Errorf("%w: no token %s", api.ErrNotFound, id)
	}
	return err
}

func (d *Daemon) showToken(ctx context.Context, c *clientConn, p api.TokenParams) (api.TokenInfo, error) {
	id, err := tokenID(p.ID)
	if err != nil {
		return api.TokenInfo{}, err
	}
	rec, err := store.NewTokenStore(d.core.DB).Get(ctx, id)
	if err != nil {
		return api.TokenInfo{}, tokenErr(id, err)
	}
	return capability.InfoVerified(rec, d.core.Tokens.Verifier(), time.Now()), nil
}

// revokeToken revokes first and audits after: an audit failure must never
// keep a token alive. The failure is then the method's error, so the
// caller knows the log lacks the entry.
func (d *Daemon) revokeToken(ctx context.Context, c *clientConn, p api.RevokeTokenParams) (api.RevokeTokenResult, error) {
	id, err := tokenID(p.ID)
	if err != nil {
		return api.RevokeTokenResult{}, err
	}
	ids, err := d.core.Tokens.Revoke(ctx, id, p.Reason)
	if err != nil {
		return api.RevokeTokenResult{}, tokenErr(id, err)
	}
	out := api.RevokeTokenResult{Revoked: make([]string, len(ids))}
	for i, x := range ids {
		out.Revoked[i] = x.String()
	}
	if len(ids) == 0 {
		return out, nil // already revoked: nothing happened
	}
	res := "token://" + id.String()
	text := fmt.Sprintf("revoked with %d descendant token(s)", len(ids)-1)
	if p.Reason != "" {
		text += ": " + p.Reason
	}
	aerr := d.auditAction(ctx, c, "token "+id.String()+" was revoked", audit.Entry{
		Session: "daemon",
		Action:  audit.Action{Kind: "capability_revoke", Resource: res, ArgsHash: audit.HashBytes([]byte(id.String() + "\x00" + p.Reason))},
		Proof:   audit.Proof{TokenID: id.String(), Rule: "revoke"}, Text: text,
	})
	if d.bus != nil {
		for _, x := range ids {
			d.bus.Publish(events.CapabilityRevoked, "", events.Security{Kind: "capability_revoke", Resource: res, TokenID: x.String()})
		}
	}
	return out, aerr
}
