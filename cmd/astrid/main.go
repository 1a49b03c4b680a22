// Command astrid is the Astrid command-line client.
//
// All the work happens in package cli; this main only wires the process
// signals and exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/astrid-runtime/astrid/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
