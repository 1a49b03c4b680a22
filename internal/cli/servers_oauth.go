package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/mcp"
)

// NOTE: login runs the OAuth flow in this process, not in the daemon: the
// browser comes back to a loopback listener on this machine, and the
// tokens land in $ASTRID_HOME/mcp-oauth, where the daemon reads (and
// refreshes) them. Only the system and user layers are read, so a
// workspace cannot choose the server a login authorizes.

func newServersLoginCmd(env *Env) *cobra.Command {
	return env.oauthCmd("login", "Authorize Astrid at an MCP server's OAuth authorization server", "authorized",
		func(ctx context.Context, m *mcp.Manager, name string) error { return m.Login(ctx, name) })
}

func newServersLogoutCmd(env *Env) *cobra.Command {
	return env.oauthCmd("logout", "Forget the OAuth tokens and client registration of an MCP server", "logged out",
		func(_ context.Context, m *mcp.Manager, name string) error { return m.Logout(name) })
}

// oauthCmd is `servers VERB NAME`, running do on an oauthManager.
func (e *Env) oauthCmd(verb, short, done string, do func(context.Context, *mcp.Manager, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, closeAll, err := e.oauthManager(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer closeAll()
			if err := do(cmd.Context(), m, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "%s: %s\n", done, args[0])
			return nil
		},
	}
}

// oauthManager is a Manager over the one configured server name, with the
// terminal as its Authorizer and the core's audit log.
func (e *Env) oauthManager(ctx context.Context, name string) (*mcp.Manager, func(), error) {
	opts, err := e.loadOptions("")
	if err != nil {
		return nil, nil, err
	}
	opts.Workspace = "" // the system and user layers only
	res, err := config.Load(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	srv, ok := res.Config.Servers[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", mcp.ErrNotConfigured, name)
	}
	if srv.Transport != "streamable-http" {
		return nil, nil, fmt.Errorf("mcp server %s: OAuth is only for streamable-http servers", name)
	}
	c, err := core.Open(ctx, core.Options{Home: opts.Home, Getenv: opts.Getenv, SystemConfigFile: opts.SystemFile, Logger: e.log()})
	if err != nil {
		return nil, nil, err
	}
	m, err := mcp.New(mcp.Options{Servers: map[string]config.Server{name: srv}, HealthInterval: -1, Audit: c.Audit, Logger: e.log(),
		OAuth: mcp.OAuthOptions{Dir: opts.Home.MCPOAuthDir(), Authorizer: terminalAuthorizer{out: e.Stderr}}})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return m, func() {
		m.Close(context.WithoutCancel(ctx))
		c.Close()
	}, nil
}

// terminalAuthorizer shows the authorization URL on the terminal; the
// browser comes back to the flow's loopback listener.
type terminalAuthorizer struct{ out io.Writer }

func (t terminalAuthorizer) Authorize(ctx context.Context, req mcp.AuthorizationRequest) (string, error) {
	fmt.Fprintf(t.out, "To authorize Astrid at %s for MCP server %s, open this URL in a browser on this machine:\n\n  %s\n\nWaiting for the browser to come back to %s ...\n",
		req.Domain, req.Server, req.URL, req.RedirectURL)
	return "", nil
}
