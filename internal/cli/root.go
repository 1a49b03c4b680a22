// Package cli implements the astrid command-line client.
//
// Main is the entry point of cmd/astrid; tests call Run with their own Env.
// Every subcommand lives in its own file (config.go, keys.go, ...) and is
// registered in newRootCmd. The CLI holds no state of its own: it reads the
// layered configuration, and (until the daemon lands) the store under
// $ASTRID_HOME.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/lineui"
	"github.com/astrid-runtime/astrid/internal/version"
)

// Env is what a command may touch of the outside world. Tests build one with
// buffers and a fake environment; Main builds it from the process.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv looks up environment variables; it must not be nil.
	Getenv func(string) string
	// Dir is the working directory, the default workspace.
	Dir string

	// systemConfigFile overrides config.DefaultSystemFile; tests set it.
	systemConfigFile string

	// chatUI runs the terminal chat UI in this process; only astrid-tui
	// sets it (MainTUI). Without it, chat on a terminal execs astrid-tui.
	chatUI ChatUI
	// args are the command line Run was given (chat hands them on).
	args []string

	// Set from global flags while a command runs.
	format  string
	verbose int
	logger  *slog.Logger
}

// ExitError carries a specific process exit code. Commands return it when
// the code means something (for example `audit verify`: 1 tampered, 2 could
// not run); any other error exits with 1.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// errSilent marks an error whose message the command has already printed.
var errSilent = errors.New("")

// ChatUI runs the terminal chat UI on a terminal until the user quits
// (tui.Run).
type ChatUI func(ctx context.Context, opts lineui.Options, in io.Reader, out io.Writer) error

// Main runs the CLI with the process's environment and returns the exit code.
func Main(ctx context.Context, args []string) int { return MainTUI(ctx, args, nil) }

// MainTUI is Main for astrid-tui: `chat` on a terminal runs ui in this
// process instead of execing astrid-tui.
func MainTUI(ctx context.Context, args []string, ui ChatUI) int {
	wd, err := os.Getwd()
	if err != nil {
		wd = "."
	}
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Dir: wd, chatUI: ui}
	return ExitCode(env, Run(ctx, env, args))
}

// ExitCode prints err (if any) to env.Stderr and returns the exit code for it.
func ExitCode(env *Env, err error) int {
	if err == nil {
		return 0
	}
	if !errors.Is(err, errSilent) {
		fmt.Fprintf(env.Stderr, "astrid: %v\n", err)
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// Run executes one astrid command line.
func Run(ctx context.Context, env *Env, args []string) error {
	env.args = args
	root := newRootCmd(env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	return root.ExecuteContext(ctx)
}

func newRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "astrid",
		Short:         "A secure runtime for AI agents: the model proposes, you approve, the runtime enforces",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch env.format {
			case "pretty", "json", "toml":
			default:
				return fmt.Errorf("--format %q: must be pretty or json (config show also takes toml)", env.format)
			}
			level := slog.LevelWarn
			switch {
			case env.verbose >= 2:
				level = slog.LevelDebug
			case env.verbose == 1:
				level = slog.LevelInfo
			}
			env.logger = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	root.SetVersionTemplate("astrid {{.Version}}\n")
	root.PersistentFlags().StringVar(&env.format, "format", "pretty", "output format: pretty or json (config show also takes toml)")
	root.PersistentFlags().CountVarP(&env.verbose, "verbose", "v", "more log output (-v info, -vv debug)")
	root.AddCommand(
		newChatCmd(env),
		newKeysCmd(env),
		newDoctorCmd(env),
		newConfigCmd(env),
		newInitCmd(env),
		newTokensCmd(env),
		newAuditCmd(env),
		newApprovalsCmd(env),
		newDaemonCmd(env),
		newExecCmd(env),
		newSessionsCmd(env),
		newServersCmd(env),
		newCapsuleCmd(env),
		newHooksCmd(env),
	)
	return root
}

// home resolves $ASTRID_HOME for a command.
func (e *Env) home() (home.Dir, error) { return home.Resolve(e.Getenv) }

// log returns the logger configured by the global flags.
func (e *Env) log() *slog.Logger {
	if e.logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return e.logger
}
