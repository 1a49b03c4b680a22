package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newConfigReloadCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the running daemon read its configuration again (as SIGHUP does)",
		Long: `Make the running daemon read the system and user configuration again.
The files are validated first: if one is invalid, its problems are listed as
file:line:col and the configuration in force stays. Otherwise mode, policy,
budget limits, MCP servers (added, removed or changed ones started or stopped
per auto_start) and hooks take effect at once; other changed sections are
listed as needing a restart. A workspace layer can still only tighten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			c, err := env.serversClient(ctx, "config reload")
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ReloadConfig(ctx)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, res)
			}
			if len(res.Changed) == 0 && len(res.Restart) == 0 {
				fmt.Fprintln(env.Stdout, "reloaded: nothing changed")
			} else {
				fmt.Fprintf(env.Stdout, "reloaded: changed %s\n", orNone(res.Changed))
			}
			for _, name := range slices.Sorted(maps.Keys(res.Servers)) {
				fmt.Fprintf(env.Stdout, "  server %s: %s\n", name, res.Servers[name])
			}
			if len(res.Restart) > 0 {
				fmt.Fprintf(env.Stdout, "takes effect when the daemon restarts: %s\n", strings.Join(res.Restart, ", "))
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(env.Stderr, "warning: %s\n", w)
			}
			return nil
		},
	}
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
