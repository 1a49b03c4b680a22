// Package daemon implements astridd, the process that holds every session,
// token, budget and the audit log, and serves frontends over JSON-RPC.
//
// This first version prepares the state directory (config, keys, store) and
// reports what it found; the JSON-RPC server arrives with the daemon issue.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/sandbox/helper"
	"github.com/astrid-runtime/astrid/internal/version"
)

// Main runs astridd with the process environment and returns the exit code.
//
// `astridd __sandbox-exec` (sandbox.HelperArg) is the hidden sandbox
// helper: it is dispatched here, before anything else, because it must
// control its exit status and, on success, never returns (it becomes the
// sandboxed program).
func Main(ctx context.Context, args []string) int {
	if len(args) > 0 && args[0] == sandbox.HelperArg {
		return helper.Main(args[1:])
	}
	if err := Run(ctx, args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "astridd: %v\n", err)
		return 1
	}
	return 0
}

// Run executes astridd with the given arguments.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	for _, a := range args {
		if a == "--version" {
			fmt.Fprintf(stdout, "astridd %s\n", version.String())
			return nil
		}
	}
	return errors.New("the daemon's JSON-RPC server is not built yet; use the astrid CLI commands (config, keys, doctor)")
}
