package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/store"
)

// NOTE: while a daemon runs these commands go through it (a revocation
// then leaves the daemon's index at once, and is audited and published);
// with none, list and show read the store read-only, and revoke starts one.

func newTokensCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "List, inspect and revoke capability tokens",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newTokensListCmd(env), newTokensShowCmd(env), newTokensRevokeCmd(env))
	return cmd
}

// readTokens calls f on the token store opened read-only; ok is false
// when there is no state database yet (so there are no tokens).
func (e *Env) readTokens(ctx context.Context, f func(*store.TokenStore) error) (ok bool, err error) {
	return e.readStore(ctx, func(db *store.DB) error { return f(store.NewTokenStore(db)) })
}

func newTokensListCmd(env *Env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List active tokens (--all: also expired, used and revoked ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var views []api.TokenInfo
			err := env.viaDaemon(ctx, func(c *client.Client) (err error) {
				views, err = c.ListTokens(ctx, api.ListTokensParams{All: all})
				return err
			}, func() error {
				_, err := env.readTokens(ctx, func(ts *store.TokenStore) error {
					now := time.Now()
					recs, err := ts.List(ctx, all, now)
					for _, r := range recs {
						views = append(views, capability.Info(r, now))
					}
					return err
				})
				return err
			})
			if err != nil {
				return err
			}
			if views == nil {
				views = []api.TokenInfo{}
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
			var v api.TokenInfo
			err = env.viaDaemon(ctx, func(c *client.Client) (err error) {
				v, err = c.ShowToken(ctx, id.String())
				return err
			}, func() error {
				ok, err := env.readTokens(ctx, func(ts *store.TokenStore) error {
					rec, err := ts.Get(ctx, id)
					if err != nil {
						return err
					}
					trusted, err := env.trusted()
					if err != nil {
						return err
					}
					v = capability.InfoVerified(rec, capability.NewVerifier(trusted, capability.DefaultClockSkew), time.Now())
					return nil
				})
				if err == nil && !ok {
					err = fmt.Errorf("token %s: %w", id, capability.ErrUnknownToken)
				}
				return err
			})
			if err != nil {
				return err
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
			if v.Verified != nil && *v.Verified {
				rows = append(rows, []string{"verifies", "yes (scope binding is checked on use)"})
			} else {
				rows = append(rows, []string{"verifies", "no: " + v.VerifyError})
			}
			return table(env.Stdout, rows)
		},
	}
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
			c, _, err := env.connect(ctx, true)
			if err != nil {
				return err
			}
			defer c.Close()
			ids, err := c.RevokeToken(ctx, api.RevokeTokenParams{ID: id.String(), Reason: reason})
			if err != nil {
				return err
			}
			children := max(len(ids)-1, 0)
			if env.jsonOutput() {
				return printJSON(env.Stdout, map[string]any{"id": id.String(), "revoked": ids, "children_revoked": children})
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
