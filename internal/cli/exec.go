package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/frontend"
	"github.com/astrid-runtime/astrid/internal/lineui"
)

func newExecCmd(env *Env) *cobra.Command {
	var workspace, mode, approve string
	cmd := &cobra.Command{
		Use:   "exec [--workspace DIR] [--mode safe|guided|autonomous] [--approve defer|deny|allow] PROMPT",
		Short: "Run one headless turn through the daemon, exactly as chat does",
		Long: `Run one headless turn through the daemon (started on demand), exactly as chat does.

--approve answers every approval request of the turn: defer (the default) leaves it
unanswered so it is queued as a deferred approval (see astrid approvals); deny refuses
it; allow approves it once (for CI: policy and the sandbox still apply). An MCP
server's sampling request is an approval too; its other requests for input (a form, a
URL to open) are declined, as nobody is there to answer them, unless --approve defer.
With --format json every event is printed as a JSON line. The exit code is 0 when the
turn completed, 1 when it failed or was cancelled.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch approve {
			case "defer", "deny", "allow":
			default:
				return fmt.Errorf("--approve %q: want defer, deny or allow", approve)
			}
			ws := workspace
			if ws == "" {
				ws = env.Dir
			} else if !filepath.IsAbs(ws) {
				ws = filepath.Join(env.Dir, ws)
			}
			c, _, err := env.connect(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer c.Close()
			return runExec(cmd.Context(), env, c, ws, mode, approve, args[0])
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace directory (default: the current directory)")
	cmd.Flags().StringVar(&mode, "mode", "", "safe, guided or autonomous (default: from the configuration)")
	cmd.Flags().StringVar(&approve, "approve", "defer", "answer to approval requests: defer, deny or allow")
	return cmd
}

func runExec(ctx context.Context, env *Env, c *client.Client, ws, mode, approve, prompt string) error {
	info, err := c.CreateSession(ctx, api.CreateSessionParams{Workspace: ws, Mode: mode, Title: clipTitle(prompt)})
	if err != nil {
		return err
	}
	if _, err := c.Subscribe(ctx, info.ID); err != nil {
		return err
	}
	turn, err := c.SendInput(ctx, info.ID, prompt)
	if err != nil {
		return err
	}
	var failure error
	p := lineui.NewPrinter(env.Stdout, env.Stderr)
	for {
		select {
		case <-ctx.Done():
			_, _ = c.CancelTurn(context.WithoutCancel(ctx), api.CancelTurnParams{Session: info.ID, Turn: turn})
			return ctx.Err()
		case <-c.Done():
			return errors.New("the daemon closed the connection during the turn")
		case ev := <-c.Events():
			if ev.Session != info.ID {
				continue
			}
			if env.jsonOutput() {
				if err := printJSONLine(env, ev); err != nil {
					return err
				}
			} else {
				p.Event(ev)
			}
			switch ev.Type {
			case api.EventApprovalNeeded:
				var an api.ApprovalNeeded
				if json.Unmarshal(ev.Data, &an) != nil {
					continue
				}
				if !env.jsonOutput() {
					p.Approval(an.Request)
					if approve == "defer" {
						p.Notef("[approval] left unanswered (--approve defer): it becomes a deferred approval, see astrid approvals\n")
					}
				}
				if approve != "defer" {
					d := api.DecisionDeny
					if approve == "allow" {
						d = api.DecisionAllowOnce
					}
					if err := c.ApprovalResponse(ctx, api.ApprovalResponseParams{Session: info.ID, Request: an.Request.ID, Decision: d, Reason: "astrid exec --approve " + approve}); err != nil && !errors.Is(err, api.ErrConflict) {
						return err
					}
				}
			case api.EventElicitationNeeded:
				var en api.ElicitationNeeded
				if json.Unmarshal(ev.Data, &en) != nil {
					continue
				}
				action, content, note := execElicit(en, approve)
				if !env.jsonOutput() {
					p.Notef("[input] %s: %s\n", frontend.SanitizeLine(en.Server), note)
				}
				if action == "" {
					continue
				}
				err := c.ElicitationResponse(ctx, api.ElicitationResponseParams{Session: info.ID, Request: en.Request, Action: action, Content: content})
				if err != nil && !errors.Is(err, api.ErrConflict) && !errors.Is(err, api.ErrNotFound) {
					return err
				}
			case api.EventApprovalResolved:
				var x api.ApprovalResolved
				if !env.jsonOutput() && json.Unmarshal(ev.Data, &x) == nil {
					p.Notef("[approval] %s\n", lineui.DecisionText(x.Decision))
				}
			case api.EventError:
				var e api.ErrorEvent
				if json.Unmarshal(ev.Data, &e) == nil && e.Turn == turn {
					failure = errors.New(e.Message)
				}
			case api.EventTurnComplete:
				var tc api.TurnComplete
				if json.Unmarshal(ev.Data, &tc) != nil || tc.Turn != turn {
					continue
				}
				if !env.jsonOutput() {
					p.EndLine()
				}
				switch {
				case failure != nil:
					return &ExitError{Code: 1, Err: fmt.Errorf("turn failed: %w", failure)}
				case tc.StopReason == "cancelled" || tc.StopReason == "error":
					return &ExitError{Code: 1, Err: fmt.Errorf("turn ended: %s", tc.StopReason)}
				}
				return nil
			}
		}
	}
}

// execElicit is exec's answer to an MCP server's request for input: no
// user is there to fill in a form or open a URL, so it is declined, unless
// --approve defer leaves it unanswered (declined at the approval timeout).
// The form of a sampling request is an approval: --approve allow accepts it
// as the server asked it, deny declines it.
func execElicit(en api.ElicitationNeeded, approve string) (action string, content json.RawMessage, note string) {
	switch {
	case approve == "defer":
		return "", nil, "left unanswered (--approve defer); declined when the approval times out"
	case en.Sampling && approve == "allow":
		fields, err := frontend.ParseForm(en.Schema)
		if err == nil {
			content, err = frontend.FormContent(fields, nil)
		}
		if err != nil {
			return api.ElicitDecline, nil, "its sampling request could not be read (" + err.Error() + "); declined"
		}
		return api.ElicitAccept, content, "sampling request accepted as asked (--approve allow)"
	case en.Sampling:
		return api.ElicitDecline, nil, "sampling request declined (--approve deny)"
	}
	return api.ElicitDecline, nil, "astrid exec cannot fill in a form or open a URL; declined"
}

func printJSONLine(env *Env, ev api.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
	return err
}

func clipTitle(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
