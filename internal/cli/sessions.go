package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/session"
)

// NOTE: list asks the daemon when one runs (it also knows which sessions are
// loaded and busy), else reads the store read-only. show reads the store
// read-only; delete and cleanup write it directly. A daemon that has a
// deleted session loaded saves it again when it ends it.

func newSessionsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "List, show, delete and clean up saved sessions", Args: cobra.NoArgs}
	cmd.AddCommand(newSessionsListCmd(env), newSessionsShowCmd(env), newSessionsDeleteCmd(env), newSessionsCleanupCmd(env))
	return cmd
}

// withSessions opens the store; ok is false when there is none yet.
func (e *Env) withSessions(ctx context.Context, readOnly bool, f func(session.Store) error) (bool, error) {
	h, err := e.home()
	if err != nil {
		return false, err
	}
	if _, err := os.Lstat(h.StateDB()); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	db, _, err := e.openStore(ctx, readOnly)
	if err != nil {
		return false, err
	}
	defer db.Close()
	return true, f(db.Sessions())
}

// viewSession describes a saved session as the daemon's listSessions does.
func viewSession(r *session.Record) api.SessionInfo {
	return api.SessionInfo{ID: r.ID, Workspace: r.Workspace, Title: r.Title, Mode: r.Mode, Model: r.Model, Turns: r.Turns,
		SpentUSD: r.Spent.USD(), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
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
				_, err := env.withSessions(ctx, true, func(s session.Store) error {
					recs, err := s.ListSessions(ctx, workspace)
					for _, r := range recs {
						views = append(views, viewSession(r))
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
			var rec *session.Record
			ok, err := env.withSessions(cmd.Context(), true, func(s session.Store) (err error) {
				rec, err = s.LoadSession(cmd.Context(), args[0])
				return err
			})
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: %s", session.ErrNoSession, args[0])
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, struct {
					api.SessionInfo
					Summary  string        `json:"summary,omitempty"`
					Messages []llm.Message `json:"messages"`
				}{viewSession(rec), rec.Summary, rec.Messages})
			}
			v := viewSession(rec)
			fmt.Fprintf(env.Stdout, "session %s  (%s mode, %d turns, $%.4f)\nworkspace %s\n", v.ID, v.Mode, v.Turns, v.SpentUSD, v.Workspace)
			if rec.Summary != "" {
				fmt.Fprintf(env.Stdout, "\n[summary of earlier messages]\n%s\n", rec.Summary)
			}
			for _, m := range rec.Messages {
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
		},
	}
}

func newSessionsDeleteCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a saved session",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ok, err := env.withSessions(cmd.Context(), false, func(s session.Store) error {
				return s.DeleteSession(cmd.Context(), args[0])
			})
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: %s", session.ErrNoSession, args[0])
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
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan <= 0 {
				return errors.New("--older-than must be a positive duration such as 720h")
			}
			n := 0
			if _, err := env.withSessions(cmd.Context(), false, func(s session.Store) (err error) {
				n, err = s.DeleteSessionsBefore(cmd.Context(), time.Now().Add(-olderThan))
				return err
			}); err != nil {
				return err
			}
			_, err := fmt.Fprintf(env.Stdout, "deleted %d sessions\n", n)
			return err
		},
	}
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "delete sessions last updated longer ago than this")
	return cmd
}
