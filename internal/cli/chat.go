package cli

import (
	"bufio"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/config"
)

func newChatCmd(env *Env) *cobra.Command {
	var sessionID, workspace, mode string
	cmd := &cobra.Command{
		Use:   "chat [--session ID] [--workspace DIR] [--mode safe|guided|autonomous]",
		Short: "Start an interactive chat session",
		Long: `Start an interactive chat session in a workspace (default: the current directory),
or resume one with --session. Each line you type is one turn; approval requests are
asked inline. With no model provider configured, chat offers a local Ollama server,
pasting an API key, or an offline demo.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			opts, err := env.loadOptions(workspace)
			if err != nil {
				return err
			}
			res, err := config.Load(opts)
			if err != nil {
				return invalidConfig(err)
			}
			in := bufio.NewReader(env.Stdin)
			if problem := providerProblem(res.Config.Model); problem != "" {
				ready, err := env.firstRun(ctx, in, problem)
				if err != nil || !ready {
					return err
				}
				fmt.Fprintln(env.Stdout, "Restarting the daemon so that it uses the new model...")
				h, _ := env.home()
				_ = client.Stop(ctx, h)
			}
			c, _, err := env.connect(ctx, true)
			if err != nil {
				return err
			}
			defer c.Close()
			var info api.SessionInfo
			if sessionID != "" {
				info, err = c.ResumeSession(ctx, sessionID)
			} else {
				ws := opts.Workspace
				if !filepath.IsAbs(ws) {
					ws = filepath.Join(env.Dir, ws)
				}
				info, err = c.CreateSession(ctx, api.CreateSessionParams{Workspace: ws, Mode: mode})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "session %s in %s (%s mode); an empty line or end of input quits\n", info.ID, info.Workspace, info.Mode)
			for {
				fmt.Fprint(env.Stdout, "> ")
				line, rerr := in.ReadString('\n')
				text := strings.TrimSpace(line)
				if text == "" || text == "/exit" {
					fmt.Fprintf(env.Stdout, "\nresume with: astrid chat --session %s\n", info.ID)
					return nil
				}
				if err := env.interactiveTurn(ctx, c, info.ID, text, in); err != nil {
					return err
				}
				if rerr != nil {
					return nil
				}
			}
		},
	}
	cmd.Flags().StringVar(&sessionID, "session", "", "resume this session")
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace directory (default: the current directory)")
	cmd.Flags().StringVar(&mode, "mode", "", "safe, guided or autonomous (default: from the configuration)")
	return cmd
}
