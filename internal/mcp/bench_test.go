package mcp

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/mcp/mcptest"
)

// BenchmarkToolCall compares one tool call of the same stdio server
// through the whole path (registry, interceptor with its policy, a
// recorded allowance, budget and two audit appends, the Manager's
// transport) with a direct call through the SDK's own stdio client. The
// difference is what Astrid adds per call (goal: under 1 ms).
func BenchmarkToolCall(b *testing.B) {
	b.Run("astrid", func(b *testing.B) {
		e := newEnv(b, map[string]config.Server{"good": selfServer(b, "good", true)})
		e.start("good")
		e.answer = approval.AllowSession // the first call records an allowance
		e.ok("mcp__good__echo", map[string]any{"text": "warm"})
		b.ResetTimer()
		for b.Loop() {
			if res := e.call("mcp__good__echo", map[string]any{"text": "x"}); res.IsError {
				b.Fatal(res.Text)
			}
		}
	})
	b.Run("sdk-direct", func(b *testing.B) {
		exe, err := os.Executable()
		if err != nil {
			b.Fatal(err)
		}
		c, err := client.NewStdioMCPClient(exe, nil, serverArg, "good")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		init := mcpgo.InitializeRequest{}
		init.Params.ProtocolVersion = mcpgo.ProtocolVersion20251125
		init.Params.ClientInfo = mcpgo.Implementation{Name: "bench", Version: "1"}
		if _, err := c.Initialize(ctx, init); err != nil {
			b.Fatal(err)
		}
		req := mcpgo.CallToolRequest{}
		req.Params.Name = "echo"
		req.Params.Arguments = map[string]any{"text": "x"}
		b.ResetTimer()
		for b.Loop() {
			if _, err := c.CallTool(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEverythingColdStart measures server-everything from Start
// (sandbox helper, Node start-up, initialize) to its tools listed.
func BenchmarkEverythingColdStart(b *testing.B) {
	ne := mcptest.Find(b, "server-everything")
	node, script := ne.Node, ne.Script("server-everything")
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, map[string]config.Server{"everything": {Transport: "stdio", Command: node, Args: []string{script, "stdio"}, Trusted: true}})
		b.StartTimer()
		t0 := time.Now()
		e.start("everything")
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms/start")
		b.StopTimer()
		if err := e.m.Stop(context.Background(), "everything"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
