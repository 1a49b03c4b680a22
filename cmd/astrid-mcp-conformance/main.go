// Command astrid-mcp-conformance is the client the official MCP
// conformance suite drives (npx @modelcontextprotocol/conformance client
// --command astrid-mcp-conformance). All the work happens in package
// internal/mcp/conformance.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/astrid-runtime/astrid/internal/mcp/conformance"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := conformance.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
