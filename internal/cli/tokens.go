package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/store"
)

// NOTE: until the daemon exists these commands work on the store directly.
// Revocation is still seen at once by a running process: every use of a
// token re-reads its state from the store.

func newTokensCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "List, inspect and revoke capability tokens",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newTokensListCmd(env), newTokensShowCmd(env), newTokensRevokeCmd(env))
	return cmd
}

// tokenView is the JSON (and pretty) form of a stored token.
type tokenView struct {
	ID           string     `json:"id"`
	Parent       string     `json:"parent,omitempty"`
	Principal    string     `json:"principal"`
	Resource     string     `json:"resource"`
	Permissions  []string   `json:"permissions"`
	IssuedAt     time.Time  `json:"issued_at"`
	NotBefore    time.Time  `json:"not_before"`
	ExpiresAt    time.Time  `json:"expires_at"`
	Scope        string     `json:"scope"`
	Binding      string     `json:"binding,omitempty"`
	SingleUse    bool       `json:"single_use"`
	AllowDynamic bool       `json:"allow_dynamic"`
	Issuer       string     `json:"issuer"`
	Approval     string     `json:"approval,omitempty"`
	Status       string     `json:"status"`
	UsedAt       *time.Time `json:"used_at,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
	// Set by show only.
	Verified    *bool  `json:"verified,omitempty"`
	VerifyError string `json:"verify_error,omitempty"`
}

func viewOf(r capability.Record, now time.Time) tokenView {
	t := r.Token
	v := tokenView{
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

// openTokenStore opens the store for reading; ok is false when there is no
// state database yet (so there are no tokens).
func (e *Env) openTokenStore(ctx context.Context, readOnly bool) (ts *store.TokenStore, closeFn func(), ok bool, err error) {
	h, err := e.home()
	if err != nil {
		return nil, nil, false, err
	}
	if readOnly {
		if _, err := os.Lstat(h.StateDB()); errors.Is(err, os.ErrNotExist) {
			return nil, nil, false, nil
		}
	}
	db, _, err := e.openStore(ctx, readOnly)
	if err != nil {
		return nil, nil, false, err
	}
	return store.NewTokenStore(db), func() { db.Close() }, true, nil
}

func newTokensListCmd(env *Env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List active tokens (--all: also expired, used and revoked ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			now := time.Now()
			var recs []capability.Record
			ts, closeFn, ok, err := env.openTokenStore(ctx, true)
			if err != nil {
				return err
			}
			if ok {
				defer closeFn()
				if recs, err = ts.List(ctx, all, now); err != nil {
					return err
				}
			}
			views := make([]tokenView, len(recs))
			for i, r := range recs {
				views[i] = viewOf(r, now)
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, views)
			}
			if len(views) == 0 {
				_, err := fmt.Fprintln(env.Stdout, "no tokens")
				return err
			}
			rows := [][]string{{"ID", "RESOURCE", "PERMISSIONS", "SCOPE", "EXPIRES", "STATUS"}}
			for _, v := range views {
				scope := v.Scope
				if v.Binding != "" {
					scope += ":" + v.Binding
				}
				if v.SingleUse {
					scope += " (once)"
				}
				rows = append(rows, []string{v.ID, v.Resource, strings.Join(v.Permissions, ","), scope,
					v.ExpiresAt.Local().Format(time.DateTime), v.Status})
			}
			return table(env.Stdout, rows)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include expired, used and revoked tokens")
	return cmd
}

func newTokensShowCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Print a token and whether it verifies (and why not)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := capability.ParseID(args[0])
			if err != nil {
				return err
			}
			ts, closeFn, ok, err := env.openTokenStore(ctx, true)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("token %s: %w", id, capability.ErrUnknownToken)
			}
			defer closeFn()
			rec, err := ts.Get(ctx, id)
			if err != nil {
				return err
			}
			now := time.Now()
			v := viewOf(rec, now)
			verr := env.verifyStored(rec, now)
			ok = verr == nil
			v.Verified = &ok
			if verr != nil {
				v.VerifyError = verr.Error()
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, v)
			}
			rows := [][]string{
				{"id", v.ID},
				{"principal", v.Principal},
				{"resource", v.Resource},
				{"permissions", strings.Join(v.Permissions, ",")},
				{"issued at", v.IssuedAt.Local().Format(time.RFC3339)},
				{"valid", v.NotBefore.Local().Format(time.RFC3339) + " .. " + v.ExpiresAt.Local().Format(time.RFC3339)},
				{"scope", v.Scope + " " + v.Binding},
				{"single use", fmt.Sprint(v.SingleUse)},
				{"allow dynamic", fmt.Sprint(v.AllowDynamic)},
				{"issuer", v.Issuer},
			}
			if v.Approval != "" {
				rows = append(rows, []string{"approval", v.Approval})
			}
			if v.Parent != "" {
				rows = append(rows, []string{"parent", v.Parent})
			}
			if v.UsedAt != nil {
				rows = append(rows, []string{"used at", v.UsedAt.Local().Format(time.RFC3339)})
			}
			if v.RevokedAt != nil {
				rows = append(rows, []string{"revoked at", v.RevokedAt.Local().Format(time.RFC3339) + " " + v.RevokeReason})
			}
			rows = append(rows, []string{"status", v.Status})
			if verr == nil {
				rows = append(rows, []string{"verifies", "yes (scope binding is checked on use)"})
			} else {
				rows = append(rows, []string{"verifies", "no: " + verr.Error()})
			}
			return table(env.Stdout, rows)
		},
	}
}

// verifyStored checks a stored token against the trusted keys: a missing
// runtime key means nothing verifies.
func (e *Env) verifyStored(rec capability.Record, now time.Time) error {
	trusted, err := e.trusted()
	if err != nil {
		return err
	}
	return capability.NewVerifier(trusted, capability.DefaultClockSkew).Status(rec, now)
}

func newTokensRevokeCmd(env *Env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token and every token attenuated from it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := capability.ParseID(args[0])
			if err != nil {
				return err
			}
			ts, closeFn, _, err := env.openTokenStore(ctx, false)
			if err != nil {
				return err
			}
			defer closeFn()
			ids, err := ts.Revoke(ctx, id, reason, time.Now())
			if err != nil {
				return err
			}
			children := 0
			for _, r := range ids {
				if r != id {
					children++
				}
			}
			if env.jsonOutput() {
				strs := make([]string, len(ids))
				for i, r := range ids {
					strs[i] = r.String()
				}
				return printJSON(env.Stdout, map[string]any{"id": id.String(), "revoked": strs, "children_revoked": children})
			}
			if len(ids) == 0 {
				_, err := fmt.Fprintf(env.Stdout, "token %s was already revoked\n", id)
				return err
			}
			_, err = fmt.Fprintf(env.Stdout, "revoked token %s and %d descendant token(s)\n", id, children)
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the token)")
	return cmd
}
