package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/home"
)

// DaemonExeVar names the environment variable that points the CLI at an
// astridd executable; by default it is the one next to astrid, else on
// PATH.
const DaemonExeVar = "ASTRID_DAEMON_EXE"

// exitNotRunning is `astrid daemon status`'s exit code when no daemon runs
// (as LSB init scripts' "program is not running").
const exitNotRunning = 3

// NOTE: the CLI links package client only; `daemon run` starts the astridd
// executable rather than linking the daemon, so the astrid binary stays
// small and never holds the store open.

func newDaemonCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run, inspect or stop astridd, the daemon that holds sessions and state",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDaemonRunCmd(env), newDaemonStatusCmd(env), newDaemonStopCmd(env))
	return cmd
}

// connect dials the daemon of $ASTRID_HOME; with autoStart it starts an
// ephemeral one when none answers (the commands that need a daemon).
func (e *Env) connect(ctx context.Context, autoStart bool) (*client.Client, home.Dir, error) {
	return e.connectAs(ctx, autoStart, "cli")
}

// connectAs is connect for a frontend other than "cli" (the chat UI is
// "tui").
func (e *Env) connectAs(ctx context.Context, autoStart bool, frontend string) (*client.Client, home.Dir, error) {
	h, err := e.home()
	if err != nil {
		return nil, "", err
	}
	c, err := client.Connect(ctx, h, client.ConnectOptions{
		DialOptions: client.DialOptions{Frontend: frontend},
		AutoStart:   autoStart,
		FindExe:     e.daemonExe,
	})
	return c, h, err
}

// daemonExe finds astridd: the one DaemonExeVar names, else next to
// astrid, else on PATH, else (for `go run ./cmd/astrid`) one built from
// the source, as for astrid-tui (see programFinder).
func (e *Env) daemonExe(ctx context.Context) (string, error) {
	return e.newProgramFinder().find(ctx, client.DaemonName, DaemonExeVar)
}

func newDaemonRunCmd(env *Env) *cobra.Command {
	var ephemeral bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run astridd in the foreground (Ctrl+C or `astrid daemon stop` stops it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := env.home()
			if err != nil {
				return err
			}
			exe, err := env.daemonExe(cmd.Context())
			if err != nil {
				return err
			}
			args := []string{}
			if ephemeral {
				args = append(args, "--ephemeral")
			}
			c := exec.CommandContext(cmd.Context(), exe, args...)
			c.Env = append(os.Environ(), home.EnvVar+"="+h.Path())
			c.Stdin, c.Stdout, c.Stderr = nil, env.Stdout, env.Stderr
			// On SIGTERM/Ctrl+C of astrid, ask astridd to stop gracefully.
			c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
			c.WaitDelay = 30 * time.Second
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) && cmd.Context().Err() == nil {
					return &ExitError{Code: ee.ExitCode(), Err: errSilent} // astridd printed why
				}
				if cmd.Context().Err() != nil && c.ProcessState != nil {
					return nil // stopped by a signal, gracefully
				}
				return err
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&ephemeral, "ephemeral", false, "stop [gateway] idle_shutdown_secs after the last client leaves")
	return cmd
}

func newDaemonStatusCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether astridd runs, and its state (exit code 3 when it does not)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			c, _, err := env.connect(ctx, false)
			if errors.Is(err, client.ErrNotRunning) {
				if env.jsonOutput() {
					printJSON(env.Stdout, map[string]bool{"running": false})
				} else {
					fmt.Fprintln(env.Stdout, "astridd is not running")
				}
				return &ExitError{Code: exitNotRunning, Err: errSilent}
			}
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, st)
			}
			runtime := "not available in this build"
			if st.Runtime {
				runtime = "yes"
			}
			landlock := "not available: every shell command needs approval"
			if st.LandlockABI > 0 {
				landlock = "ABI " + strconv.Itoa(st.LandlockABI)
			}
			return table(env.Stdout, [][]string{
				{"astridd", "running"},
				{"version", st.Version},
				{"pid", strconv.Itoa(st.PID)},
				{"address", "127.0.0.1:" + strconv.Itoa(c.Port())},
				{"mode", st.Mode},
				{"uptime", (time.Duration(st.UptimeSecs) * time.Second).String()},
				{"connections", strconv.Itoa(st.Connections)},
				{"sessions", strconv.Itoa(st.Sessions)},
				{"servers", strconv.Itoa(st.Servers)},
				{"capsules", strconv.Itoa(st.Capsules)},
				{"pending approvals", strconv.Itoa(st.PendingApprovals)},
				{"agent runtime", runtime},
				{"landlock", landlock},
				{"home", st.Home},
			})
		},
	}
}

func newDaemonStopCmd(env *Env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop astridd gracefully and wait until it is gone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := env.home()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			err = client.Stop(ctx, h)
			if errors.Is(err, client.ErrNotRunning) {
				_, err = fmt.Fprintln(env.Stdout, "astridd is not running")
				return err
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(env.Stdout, "astridd stopped")
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the daemon to finish")
	return cmd
}
