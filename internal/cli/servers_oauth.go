package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/frontend"
)

// NOTE: login runs the OAuth flow in the daemon (astrid.beginServerLogin
// and astrid.finishServerLogin): the browser comes back to the daemon's
// loopback listener on this machine and the tokens land in
// $ASTRID_HOME/mcp-oauth, where its MCP manager reads (and refreshes)
// them. The daemon knows only the system and user layers' servers, so a
// workspace cannot choose the server a login authorizes. The CLI shows
// the URL and waits; it links no MCP or OAuth code itself.

// loginWait bounds how long `servers login` waits for the browser; the
// daemon abandons a login after its own limit.
const loginWait = 6 * time.Minute

func newServersLoginCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "login NAME",
		Short: "Authorize Astrid at an MCP server's OAuth authorization server",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), loginWait)
			defer cancel()
			c, _, err := env.connect(ctx, true)
			if err != nil {
				return err
			}
			defer c.Close()
			l, err := c.BeginServerLogin(ctx, args[0])
			if err != nil {
				return err
			}
			if l.Done {
				fmt.Fprintf(env.Stdout, "authorized: %s (as its configured client; no browser needed)\n", args[0])
				return nil
			}
			fmt.Fprintf(env.Stderr, "To authorize Astrid at %s for MCP server %s, open this URL in a browser on this machine:\n\n  %s\n\nWaiting for the browser to come back to %s ...\n",
				frontend.SanitizeLine(l.Domain), frontend.SanitizeLine(l.Server), frontend.SanitizeLine(l.URL), frontend.SanitizeLine(l.RedirectURL))
			if err := c.FinishServerLogin(ctx, l.Login); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "authorized: %s\n", args[0])
			return nil
		},
	}
}

func newServersLogoutCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout NAME",
		Short: "Forget the OAuth tokens and client registration of an MCP server",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			c, _, err := env.connect(ctx, true)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.ServerLogout(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "logged out: %s\n", args[0])
			return nil
		},
	}
}
