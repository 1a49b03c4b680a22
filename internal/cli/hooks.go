package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
)

// NOTE: hooks run in the daemon (its executable is the sandbox helper),
// so every subcommand talks to it, starting an ephemeral one if needed.

func newHooksCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hooks",
		Short: "List, inspect, dry-run and trust hooks ($ASTRID_HOME/hooks and the workspace's .astrid/hooks)",
	}
	cmd.AddCommand(newHooksListCmd(env), newHooksInfoCmd(env), newHooksTestCmd(env), newHooksTrustCmd(env))
	return cmd
}

// hooksCall resolves the workspace flag and runs f with a client.
func (e *Env) hooksCall(ctx context.Context, ws string, f func(c *client.Client, ws string) error) error {
	if ws == "" {
		ws = e.Dir
	} else if !filepath.IsAbs(ws) {
		ws = filepath.Join(e.Dir, ws)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, _, err := e.connect(ctx, true)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c, ws)
}

func hookState(h api.HookInfo) string {
	switch {
	case h.Trusted:
		return "active"
	case h.Workspace:
		return "untrusted"
	}
	return "inactive"
}

func newHooksListCmd(env *Env) *cobra.Command {
	var workspace string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "The hooks, in the order they run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return env.hooksCall(cmd.Context(), workspace, func(c *client.Client, ws string) error {
				res, err := c.ListHooks(cmd.Context(), api.ListHooksParams{Workspace: ws})
				if err != nil {
					return err
				}
				if env.jsonOutput() {
					return printJSON(env.Stdout, res)
				}
				if res.Error != "" {
					fmt.Fprintf(env.Stderr, "hooks configuration invalid (blocking events are refused): %s\n", res.Error)
				}
				if len(res.Hooks) == 0 {
					_, err := fmt.Fprintln(env.Stdout, "no hooks")
					return err
				}
				rows := [][]string{{"NAME", "EVENT", "KIND", "PRIORITY", "FAIL", "STATE", "FILE"}}
				for _, h := range res.Hooks {
					rows = append(rows, []string{h.Name, h.Event, h.Kind, strconv.Itoa(h.Priority), h.FailAction, hookState(h), fmt.Sprintf("%s:%d", h.File, h.Line)})
				}
				return table(env.Stdout, rows)
			})
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace directory (default: the current directory)")
	return cmd
}

func newHooksInfoCmd(env *Env) *cobra.Command {
	var workspace string
	cmd := &cobra.Command{
		Use:   "info NAME",
		Short: "Everything about one hook",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return env.hooksCall(cmd.Context(), workspace, func(c *client.Client, ws string) error {
				res, err := c.ListHooks(cmd.Context(), api.ListHooksParams{Workspace: ws})
				if err != nil {
					return err
				}
				var found []api.HookInfo
				for _, h := range res.Hooks {
					if h.Name == args[0] {
						found = append(found, h)
					}
				}
				if len(found) == 0 {
					return fmt.Errorf("no hook named %q", args[0])
				}
				if env.jsonOutput() {
					return printJSON(env.Stdout, found)
				}
				for _, h := range found {
					handler := strings.Join(h.Command, " ")
					if h.Kind == "http" {
						handler = "POST " + h.URL
					}
					rows := [][]string{
						{"name", h.Name}, {"event", h.Event}, {"handler", handler}, {"state", hookState(h)},
						{"fail_action", h.FailAction}, {"priority", strconv.Itoa(h.Priority)}, {"async", strconv.FormatBool(h.Async)},
						{"timeout", strconv.FormatInt(h.TimeoutSecs, 10) + "s"}, {"file", fmt.Sprintf("%s:%d", h.File, h.Line)},
					}
					for _, m := range [][2]string{{"tools", strings.Join(h.Tools, ", ")}, {"servers", strings.Join(h.Servers, ", ")}, {"glob", strings.Join(h.Glob, ", ")}, {"regex", h.Regex}} {
						if m[1] != "" {
							rows = append(rows, []string{m[0], m[1]})
						}
					}
					if err := table(env.Stdout, rows); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace directory (default: the current directory)")
	return cmd
}

func newHooksTestCmd(env *Env) *cobra.Command {
	var workspace, hook, tool, arguments string
	cmd := &cobra.Command{
		Use:   "test EVENT",
		Short: "Dry-run the hooks of EVENT with a sample payload and show their answers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := api.TestHooksParams{Event: args[0], Hook: hook, Tool: tool}
			if arguments != "" {
				if !json.Valid([]byte(arguments)) {
					return fmt.Errorf("--args is not valid JSON")
				}
				p.Arguments = json.RawMessage(arguments)
			}
			return env.hooksCall(cmd.Context(), workspace, func(c *client.Client, ws string) error {
				p.Workspace = ws
				res, err := c.TestHooks(cmd.Context(), p)
				if err != nil {
					return err
				}
				if env.jsonOutput() {
					return printJSON(env.Stdout, res)
				}
				fmt.Fprintf(env.Stdout, "payload: %s\n", res.Payload)
				if len(res.Runs) == 0 {
					_, err := fmt.Fprintf(env.Stdout, "no hook runs on %s\n", res.Event)
					return err
				}
				rows := [][]string{{"HOOK", "ANSWER", "TIME"}}
				for _, r := range res.Runs {
					ans := r.Decision
					switch {
					case r.Skipped != "":
						ans = "skipped: " + r.Skipped
					case r.Error != "":
						ans = fmt.Sprintf("FAILED, fail_action %s: %s", r.FailAction, r.Error)
					case r.Reason != "":
						ans += ": " + r.Reason
					}
					if len(r.Arguments) > 0 {
						ans += " " + string(r.Arguments)
					}
					rows = append(rows, []string{r.Hook, ans, fmt.Sprintf("%dms", r.Millis)})
				}
				return table(env.Stdout, rows)
			})
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace directory (default: the current directory)")
	cmd.Flags().StringVar(&hook, "hook", "", "run only this hook")
	cmd.Flags().StringVar(&tool, "tool", "", "tool name for tool events (default write_file)")
	cmd.Flags().StringVar(&arguments, "args", "", "tool arguments as JSON for tool events")
	return cmd
}

func newHooksTrustCmd(env *Env) *cobra.Command {
	var workspace string
	var revoke bool
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Let the workspace's hooks (.astrid/hooks) run, as they are now (a later change needs trust again)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return env.hooksCall(cmd.Context(), workspace, func(c *client.Client, ws string) error {
				res, err := c.TrustHooks(cmd.Context(), api.TrustHooksParams{Workspace: ws, Revoke: revoke})
				if err != nil {
					return err
				}
				if env.jsonOutput() {
					return printJSON(env.Stdout, res)
				}
				if revoke {
					_, err = fmt.Fprintf(env.Stdout, "the hooks of %s are no longer trusted\n", res.Workspace)
				} else {
					_, err = fmt.Fprintf(env.Stdout, "trusted the hooks of %s (sha256 %s)\nthey run only when hooks.allow_workspace_hooks = true\n", res.Workspace, res.Digest)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace directory (default: the current directory)")
	cmd.Flags().BoolVar(&revoke, "revoke", false, "stop trusting the workspace's hooks")
	return cmd
}
