package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/session"
	"github.com/astrid-runtime/astrid/internal/store"
)

// NOTE: every subcommand goes through the daemon when one runs: it knows
// which sessions are loaded and busy, and a session it holds loaded must be
// deleted through it, or it would save the session again when it ends it.
// With no daemon, list and show read the store read-only; delete and
// cleanup start one, since only the daemon writes the audit log and every
// deletion is audited there.

func newSessionsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "List, show, delete and clean up saved sessions", Args: cobra.NoArgs}
	cmd.AddCommand(newSessionsListCmd(env), newSessionsShowCmd(env), newSessionsDeleteCmd(env), newSessionsCleanupCmd(env))
	return cmd
}

// readSessions opens the store read-only; ok is false when there is none
// yet.
func (e *Env) readSessions(ctx context.Context, f func(session.Store) error) (bool, error) {
	return e.readStore(ctx, func(db *store.DB) error { return f(db.Sessions()) })
}

func newSessionsListCmd(env *Env) *cobra.Command {
	var workspace string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List saved sessions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			views := []api.SessionInfo{}
			err := env.viaDaemon(ctx, func(c *client.Client) (err error) {
				views, err = c.ListSessions(ctx, api.ListSessionsParams{Workspace: workspace})
				return err
			}, func() error {
				_, err := env.readSessions(ctx, func(s session.Store) error {
					recs, err := s.ListSessions(ctx, workspace)
					for _, r := range recs {
						views = append(views, r.Info())
					}
					return err
				})
				return err
			})
			if err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, views)
			}
			if len(views) == 0 {
				_, err := fmt.Fprintln(env.Stdout, "no sessions")
				return err
			}
			rows := [][]string{{"ID", "UPDATED", "TURNS", "MODE", "SPENT", "STATE", "WORKSPACE", "TITLE"}}
			for _, v := range views {
				state := "saved"
				if v.Busy {
					state = "busy"
				} else if v.Active {
					state = "active"
				}
				rows = append(rows, []string{v.ID, v.UpdatedAt.Local().Format(time.DateTime), fmt.Sprint(v.Turns), v.Mode,
					fmt.Sprintf("$%.4f", v.SpentUSD), state, v.Workspace, v.Title})
			}
			return table(env.Stdout, rows)
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "only sessions of this workspace")
	return cmd
}

func newSessionsShowCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a session and its conversation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var d api.SessionDetail
			err := env.viaDaemon(ctx, func(c *client.Client) (err error) {
				d, err = c.ShowSession(ctx, args[0])
				return err
			}, func() error {
				ok, err := env.readSessions(ctx, func(s session.Store) error {
					rec, err := s.LoadSession(ctx, args[0])
					if err != nil {
						return err
					}
					d, err = rec.Detail()
					return err
				})
				if err == nil && !ok {
					err = fmt.Errorf("%w: %s", session.ErrNoSession, args[0])
				}
				return err
			})
			if err != nil {
				return err
			}
			return printSessionDetail(env, d)
		},
	}
}

// printSessionDetail prints a session and its conversation.
func printSessionDetail(env *Env, d api.SessionDetail) error {
	var msgs []llm.Message
	if err := json.Unmarshal(d.Messages, &msgs); err != nil {
		return fmt.Errorf("session %s: messages: %w", d.ID, err)
	}
	if env.jsonOutput() { // typed, so that both paths print alike (unescaped)
		return printJSON(env.Stdout, struct {
			api.SessionInfo
			Summary  string        `json:"summary,omitempty"`
			Messages []llm.Message `json:"messages"`
		}{d.SessionInfo, d.Summary, msgs})
	}
	fmt.Fprintf(env.Stdout, "session %s  (%s mode, %d turns, $%.4f)\nworkspace %s\n", d.ID, d.Mode, d.Turns, d.SpentUSD, d.Workspace)
	if d.Summary != "" {
		fmt.Fprintf(env.Stdout, "\n[summary of earlier messages]\n%s\n", d.Summary)
	}
	for _, m := range msgs {
		for _, p := range m.Parts {
			switch {
			case p.Kind == llm.PartText:
				fmt.Fprintf(env.Stdout, "\n%s: %s\n", m.Role, p.Text)
			case p.ToolCall != nil:
				fmt.Fprintf(env.Stdout, "  [call %s] %s %s\n", p.ToolCall.ID, p.ToolCall.Name, clipTitle(string(p.ToolCall.Arguments)))
			case p.ToolResult != nil:
				status := "ok"
				if p.ToolResult.IsError {
					status = "error"
				}
				fmt.Fprintf(env.Stdout, "  [result %s] %s: %s\n", p.ToolResult.CallID, status, clipTitle(strings.ReplaceAll(p.ToolResult.Content, "\n", " ")))
			}
		}
	}
	return nil
}

func newSessionsDeleteCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a saved session (not one running a turn)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, _, err := env.connect(ctx, true)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.DeleteSession(ctx, args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(env.Stdout, "deleted %s\n", args[0])
			return err
		},
	}
}

func newSessionsCleanupCmd(env *Env) *cobra.Command {
	var olderThan time.Duration
	cmd := &cobra.Command{
		Use:   "cleanup --older-than DURATION",
		Short: "Delete sessions not used for a while (e.g. --older-than 720h)",
		Long: `Deletes the saved sessions last updated longer ago than --older-than.
A running daemon keeps the sessions it holds loaded; they are counted as kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan <= 0 {
				return errors.New("--older-than must be a positive duration such as 720h")
			}
			ctx := cmd.Context()
			before := time.Now().Add(-olderThan)
			c, _, err := env.connect(ctx, true)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.CleanupSessions(ctx, before)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(env.Stdout, "deleted %d sessions\n", len(res.Deleted)); err != nil || len(res.Kept) == 0 {
				return err
			}
			_, err = fmt.Fprintf(env.Stdout, "kept %d the daemon holds loaded\n", len(res.Kept))
			return err
		},
	}
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "delete sessions last updated longer ago than this")
	return cmd
}
