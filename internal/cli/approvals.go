package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/store"
)

// NOTE: while a daemon runs, list and show ask it; with none they read the
// store read-only. Answering always goes through a daemon (started when
// none runs): the interceptor there records and audits the answer, and the
// daemon runs an approved tool call of an agent session right away,
// exactly once (or when the session's running turn ends), and says what
// happened. Other deferred actions (a capsule's host calls) run when their
// owner claims them.

func newApprovalsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List and answer deferred approvals (actions nobody answered in time)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newApprovalsListCmd(env), newApprovalsShowCmd(env), newApprovalsAnswerCmd(env, true), newApprovalsAnswerCmd(env, false))
	return cmd
}

// listDeferred returns the deferred approvals (pending ones unless all),
// from the daemon when one runs, else from the store.
func (e *Env) listDeferred(ctx context.Context, all bool) ([]api.DeferredApproval, error) {
	out := []api.DeferredApproval{}
	err := e.viaDaemon(ctx, func(c *client.Client) (err error) {
		out, err = c.ListApprovals(ctx, api.ListApprovalsParams{All: all})
		return err
	}, func() error {
		_, err := e.readStore(ctx, func(db *store.DB) error {
			var states []approval.Status
			if !all {
				states = append(states, approval.Pending)
			}
			ds, err := db.Deferred().ListDeferred(ctx, states...)
			for _, d := range ds {
				out = append(out, d.API())
			}
			return err
		})
		return err
	})
	return out, err
}

func newApprovalsListCmd(env *Env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List pending deferred approvals (--all: every state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			views, err := env.listDeferred(cmd.Context(), all)
			if err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, views)
			}
			if len(views) == 0 {
				_, err := fmt.Fprintln(env.Stdout, "no deferred approvals")
				return err
			}
			rows := [][]string{{"ID", "STATUS", "RISK", "KIND", "RESOURCE", "SESSION", "CREATED"}}
			for _, v := range views {
				rows = append(rows, []string{v.ID, v.Status, v.Request.Risk, v.Request.Kind, v.Request.Resource,
					v.Request.Session, v.Request.CreatedAt.Local().Format(time.DateTime)})
			}
			return table(env.Stdout, rows)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include answered and executed ones")
	return cmd
}

func newApprovalsShowCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one deferred approval: the action, why it asked, the answer and the result",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			all, err := env.listDeferred(cmd.Context(), true)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(all, func(d api.DeferredApproval) bool { return d.ID == args[0] })
			if i < 0 {
				return fmt.Errorf("%w: %s", approval.ErrNotFound, args[0])
			}
			v := all[i]
			if env.jsonOutput() {
				return printJSON(env.Stdout, v)
			}
			r := v.Request
			rows := [][]string{
				{"id", v.ID}, {"status", v.Status}, {"summary", r.Summary}, {"kind", r.Kind},
				{"resource", r.Resource}, {"risk", r.Risk}, {"why", r.Reason}, {"session", r.Session},
				{"principal", r.Principal}, {"workspace", r.Workspace}, {"created", r.CreatedAt.Local().Format(time.RFC3339)},
			}
			if v.Answer != nil {
				rows = append(rows, []string{"answer", fmt.Sprintf("%s by %s via %s", v.Answer.Decision, v.Answer.By, v.Answer.Frontend)})
			}
			if v.Result != "" {
				rows = append(rows, []string{"result", v.Result})
			}
			return table(env.Stdout, rows)
		},
	}
}

func newApprovalsAnswerCmd(env *Env, approve bool) *cobra.Command {
	var scope, reason string
	use, short := "deny ID", "Deny a deferred action"
	if approve {
		use, short = "approve ID", "Approve a deferred action (--scope once|session|workspace|always)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			decision := approval.Deny
			if approve {
				d, err := approval.ParseDecision(scope)
				if err != nil || d == approval.Deny {
					return fmt.Errorf("--scope %q: want once, session, workspace or always", scope)
				}
				decision = d
			}
			c, _, err := env.connect(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := c.ResolveApproval(cmd.Context(), api.ResolveApprovalParams{ID: args[0], Decision: string(decision), Reason: reason})
			if err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, d)
			}
			_, err = fmt.Fprint(env.Stdout, describeAnswered(d, decision))
			return err
		},
	}
	if approve {
		cmd.Flags().StringVar(&scope, "scope", "once", "once, session, workspace or always")
	}
	cmd.Flags().StringVar(&reason, "reason", "", "a note recorded with the answer")
	return cmd
}

// describeAnswered says what became of a deferred action just answered.
func describeAnswered(d api.DeferredApproval, decision approval.Decision) string {
	o := d.Outcome
	if o == nil {
		if decision == approval.Deny {
			return fmt.Sprintf("denied %s\n", d.ID)
		}
		return fmt.Sprintf("approved %s (%s): it runs when its owner in session %s claims it\n", d.ID, decision, d.Request.Session)
	}
	out := strings.TrimRight(o.Output, "\n")
	if o.Truncated {
		out += "\n[… truncated]"
	}
	switch o.Status {
	case api.DeferredRan:
		return fmt.Sprintf("approved %s (%s): %s ran in session %s:\n%s\n", d.ID, decision, o.Tool, d.Request.Session, out)
	case api.DeferredFailed:
		return fmt.Sprintf("approved %s (%s): %s ran in session %s and failed:\n%s\n", d.ID, decision, o.Tool, d.Request.Session, out)
	case api.DeferredRefused:
		return fmt.Sprintf("approved %s (%s), but %s was not run:\n%s\n", d.ID, decision, o.Tool, out)
	case api.DeferredQueued:
		return fmt.Sprintf("approved %s (%s): queued; %s runs when the turn running in session %s ends\n", d.ID, decision, o.Tool, d.Request.Session)
	}
	return fmt.Sprintf("denied %s: %s did not run; session %s is told\n", d.ID, o.Tool, d.Request.Session)
}
