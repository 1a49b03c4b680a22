// Command astridd is the Astrid daemon.
//
// All the work happens in package daemon; this main wires the agent
// runtime in as the daemon's backend, the process signals and exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/runtime"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := daemon.Main(ctx, os.Args[1:], runtime.NewBackend)
	stop()
	os.Exit(code)
}
