// Command astrid-tui is the terminal chat UI of Astrid: the astrid command
// line with the Bubble Tea interface of package tui linked in. `astrid chat`
// on a terminal execs it with its own arguments (`astrid-tui chat ...`), so
// that the astrid CLI itself stays small and quick to start.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/astrid-runtime/astrid/internal/cli"
	"github.com/astrid-runtime/astrid/internal/tui"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.MainTUI(ctx, os.Args[1:], tui.Run)
	stop()
	os.Exit(code)
}
