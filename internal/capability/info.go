package capability

import (
	"encoding/hex"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
)

// Info describes a stored token as the API and the CLI show it, with its
// status at now: revoked, used (single use, spent), expired, pending (not
// yet valid) or active. It does not verify the signature (see
// Verifier.Status).
func Info(r Record, now time.Time) api.TokenInfo {
	t := r.Token
	v := api.TokenInfo{
		ID:           t.ID.String(),
		Principal:    t.Principal,
		Resource:     t.Resource,
		Permissions:  t.Permissions.Names(),
		IssuedAt:     t.IssuedAt,
		NotBefore:    t.NotBefore,
		ExpiresAt:    t.ExpiresAt,
		Scope:        t.Scope.String(),
		Binding:      t.Binding,
		SingleUse:    t.SingleUse,
		AllowDynamic: t.AllowDynamic,
		Issuer:       t.Issuer,
		Approval:     hex.EncodeToString(t.Approval),
		RevokeReason: r.RevokeReason,
	}
	if !t.Parent.IsZero() {
		v.Parent = t.Parent.String()
	}
	if !r.UsedAt.IsZero() {
		v.UsedAt = &r.UsedAt
	}
	if !r.RevokedAt.IsZero() {
		v.RevokedAt = &r.RevokedAt
	}
	switch {
	case !r.RevokedAt.IsZero():
		v.Status = "revoked"
	case !r.UsedAt.IsZero():
		v.Status = "used"
	case !now.Before(t.ExpiresAt):
		v.Status = "expired"
	case now.Before(t.NotBefore):
		v.Status = "pending"
	default:
		v.Status = "active"
	}
	return v
}

// InfoVerified is Info with Verified and VerifyError set from v's verdict
// on the record at now.
func InfoVerified(r Record, v *Verifier, now time.Time) api.TokenInfo {
	info := Info(r, now)
	err := v.Status(r, now)
	ok := err == nil
	info.Verified = &ok
	if err != nil {
		info.VerifyError = err.Error()
	}
	return info
}
