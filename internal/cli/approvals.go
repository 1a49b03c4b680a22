package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/core"
)

// NOTE: until the daemon exists these commands work on the store directly.
// Approving records the answer; the action runs when its session's runtime
// claims it (exactly once, whoever claims first).

func newApprovalsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List and answer deferred approvals (actions nobody answered in time)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newApprovalsListCmd(env), newApprovalsShowCmd(env), newApprovalsAnswerCmd(env, true), newApprovalsAnswerCmd(env, false))
	return cmd
}

// approvalView is the printable form of a deferred approval.
type approvalView struct {
	ID         string           `json:"id"`
	Status     approval.Status  `json:"status"`
	Request    approval.Request `json:"request"`
	Answer     *approval.Answer `json:"answer,omitempty"`
	ResolvedAt *time.Time       `json:"resolved_at,omitempty"`
	Result     string           `json:"result,omitempty"`
}

func viewApproval(d approval.Deferred) approvalView {
	v := approvalView{ID: d.ID, Status: d.Status, Request: d.Request, Answer: d.Answer, Result: d.Result}
	if !d.ResolvedAt.IsZero() {
		v.ResolvedAt = &d.ResolvedAt
	}
	return v
}

// readDeferred opens the store read-only; ok is false when there is no
// store yet (so nothing was ever deferred).
func (e *Env) readDeferred(ctx context.Context, f func(approval.DeferredStore) error) (ok bool, err error) {
	h, err := e.home()
	if err != nil {
		return false, err
	}
	if _, err := os.Lstat(h.StateDB()); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	db, _, err := e.openStore(ctx, true)
	if err != nil {
		return false, err
	}
	defer db.Close()
	return true, f(db.Deferred())
}

func newApprovalsListCmd(env *Env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List pending deferred approvals (--all: every state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ds []approval.Deferred
			_, err := env.readDeferred(cmd.Context(), func(s approval.DeferredStore) (err error) {
				if all {
					ds, err = s.ListDeferred(cmd.Context())
				} else {
					ds, err = s.ListDeferred(cmd.Context(), approval.Pending)
				}
				return err
			})
			if err != nil {
				return err
			}
			views := make([]approvalView, len(ds))
			for i, d := range ds {
				views[i] = viewApproval(d)
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
				rows = append(rows, []string{v.ID, string(v.Status), v.Request.Risk, v.Request.Kind, v.Request.Resource,
					v.Request.SessionID, v.Request.CreatedAt.Local().Format(time.DateTime)})
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
			var d approval.Deferred
			ok, err := env.readDeferred(cmd.Context(), func(s approval.DeferredStore) (err error) {
				d, err = s.GetDeferred(cmd.Context(), args[0])
				return err
			})
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: %s", approval.ErrNotFound, args[0])
			}
			v := viewApproval(d)
			if env.jsonOutput() {
				return printJSON(env.Stdout, v)
			}
			r := v.Request
			rows := [][]string{
				{"id", v.ID}, {"status", string(v.Status)}, {"summary", r.Summary}, {"kind", r.Kind},
				{"resource", r.Resource}, {"risk", r.Risk}, {"why", r.Reason}, {"session", r.SessionID},
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
			ans := approval.Answer{Decision: approval.Deny, Reason: reason, By: localUser(), Frontend: "cli"}
			if approve {
				d, err := approval.ParseDecision(scope)
				if err != nil || d == approval.Deny {
					return fmt.Errorf("--scope %q: want once, session, workspace or always", scope)
				}
				ans.Decision = d
			}
			opts, err := env.loadOptions("")
			if err != nil {
				return err
			}
			c, err := core.Open(cmd.Context(), core.Options{Home: opts.Home, Getenv: opts.Getenv, SystemConfigFile: opts.SystemFile, Logger: env.log()})
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := c.Interceptor.Resolve(cmd.Context(), args[0], ans)
			if err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, viewApproval(d))
			}
			if approve {
				_, err = fmt.Fprintf(env.Stdout, "approved %s (%s): it runs when session %s picks it up\n", d.ID, ans.Decision, d.SessionID)
			} else {
				_, err = fmt.Fprintf(env.Stdout, "denied %s\n", d.ID)
			}
			return err
		},
	}
	if approve {
		cmd.Flags().StringVar(&scope, "scope", "once", "once, session, workspace or always")
	}
	cmd.Flags().StringVar(&reason, "reason", "", "a note recorded with the answer")
	return cmd
}

// localUser names who answered from this machine's CLI: whoever can read
// the 0600 state files is the local user.
func localUser() string {
	if u, err := user.Current(); err == nil {
		return "local:" + u.Username
	}
	return fmt.Sprintf("local:uid=%d", os.Getuid())
}
