package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/lineui"
)

func newChatCmd(env *Env) *cobra.Command {
	var sessionID, workspace, mode string
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "Chat with the agent in a session (a terminal UI; line mode in a pipe)",
		Long: `Chat with the agent in a session of the daemon, which is started when none runs.

On a terminal, chat is a full-screen UI: /help lists its commands and keys.
When stdin or stdout is not a terminal it runs in line mode: each input line
is sent as one message, the answer is printed as it streams, and an approval
request is answered by the next line (o, s, w, a or d); at the end of the
input, a request still unanswered is denied.

Quitting saves the session; resume it with --session.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch mode {
			case "", "safe", "guided", "autonomous":
			default:
				return fmt.Errorf("--mode %q: must be safe, guided or autonomous", mode)
			}
			if sessionID != "" && (mode != "" || workspace != "") {
				return errors.New("--mode and --workspace apply to a new session, not to one resumed with --session")
			}
			return runChat(cmd.Context(), env, sessionID, workspace, mode)
		},
	}
	cmd.Flags().StringVar(&sessionID, "session", "", "resume this session instead of starting one")
	cmd.Flags().StringVar(&workspace, "workspace", "", "the workspace directory of a new session (default: the working directory)")
	cmd.Flags().StringVar(&mode, "mode", "", "the mode of a new session: safe, guided or autonomous (default: the configured one)")
	return cmd
}

func runChat(ctx context.Context, env *Env, sessionID, workspace, mode string) error {
	interactive := isTerminal(env.Stdin) && isTerminal(env.Stdout)
	if interactive && env.chatUI == nil {
		// The terminal UI is its own executable, so that astrid links no
		// UI library; it runs this same command line.
		exe, err := env.newProgramFinder().find(ctx, TUIName, TUIExeVar)
		if err == nil {
			return execProgram(exe, env.args)
		}
		msg, _, _ := strings.Cut(err.Error(), "\n")
		fmt.Fprintf(env.Stderr, "astrid: no terminal UI, chatting in line mode: %s\n", msg)
		interactive = false
	}
	// A newcomer without a model gets choices instead of an error.
	in := bufio.NewReader(env.Stdin)
	lopts, err := env.loadOptions(workspace)
	if err != nil {
		return err
	}
	res, err := config.Load(lopts)
	if err != nil {
		return invalidConfig(err)
	}
	if problem := providerProblem(res.Config.Model); problem != "" {
		ready, err := env.firstRun(ctx, in, problem)
		if err != nil || !ready {
			return err
		}
		// A running daemon still has the old model: restart it.
		if h, err := env.home(); err == nil {
			_ = client.Stop(ctx, h)
		}
	}
	frontend := "cli"
	if interactive {
		frontend = "tui"
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := env.connectAs(cctx, true, frontend)
	if err != nil {
		return err
	}
	defer c.Close()

	var sess api.SessionInfo
	if sessionID != "" {
		sess, err = c.ResumeSession(cctx, sessionID)
	} else {
		var ws string
		if ws, err = workspaceDir(env.Dir, workspace); err != nil {
			return err
		}
		sess, err = c.CreateSession(cctx, api.CreateSessionParams{Workspace: ws, Mode: mode})
	}
	if errors.Is(err, client.ErrUnavailable) {
		return fmt.Errorf("this daemon cannot hold chat sessions: %w", err)
	}
	if err != nil {
		return err
	}
	sub, err := c.Subscribe(cctx, sess.ID)
	if err != nil {
		return err
	}
	cancel()

	opts := lineui.Options{Client: c, Events: c.Events(), Session: sess}
	if interactive {
		opts.OpenURL = openURL
		err = env.chatUI(ctx, opts, env.Stdin, env.Stdout)
	} else {
		err = lineui.RunLines(ctx, opts, in, env.Stdout)
	}

	// Save the session on the way out, even when ctx ended (Ctrl+C of a
	// pipe), but not for long.
	ectx, ecancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer ecancel()
	_ = c.Unsubscribe(ectx, sub)
	if eerr := c.EndSession(ectx, sess.ID); eerr == nil {
		fmt.Fprintf(env.Stderr, "session %s saved; resume it with: astrid chat --session %s\n", sess.ID, sess.ID)
	} else if !errors.Is(eerr, client.ErrUnavailable) && err == nil {
		err = fmt.Errorf("saving the session: %w", eerr)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: a normal way to leave
	}
	return err
}

// workspaceDir resolves --workspace against the working directory and
// checks that it is a directory.
func workspaceDir(wd, flag string) (string, error) {
	ws := flag
	if ws == "" {
		ws = wd
	}
	if !filepath.IsAbs(ws) {
		ws = filepath.Join(wd, ws)
	}
	ws = filepath.Clean(ws)
	fi, err := os.Stat(ws)
	if err != nil {
		return "", fmt.Errorf("workspace: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("workspace %s is not a directory", ws)
	}
	return ws, nil
}

// isTerminal reports whether v is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(f.Fd())
}

// openURL opens a URL an elicitation asked for, with the desktop's opener
// when there is one; the TUI shows the URL either way.
func openURL(u string) error {
	for _, opener := range []string{"xdg-open", "open"} {
		if p, err := exec.LookPath(opener); err == nil {
			c := exec.Command(p, u)
			if err := c.Start(); err != nil {
				return err
			}
			go func() { _ = c.Wait() }() // reap it
			return nil
		}
	}
	return fmt.Errorf("no program to open URLs with; open %s yourself", u)
}

// execProgram replaces this process with exe, run with args (astrid's own
// command line) and the same environment.
func execProgram(exe string, args []string) error {
	argv := append([]string{filepath.Base(exe)}, args...)
	if err := syscall.Exec(exe, argv, os.Environ()); err != nil {
		return fmt.Errorf("running %s: %w", exe, err)
	}
	return nil // not reached
}
