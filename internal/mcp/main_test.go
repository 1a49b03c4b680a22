package mcp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/sandbox/helper"
)

// serverArg makes the test binary an MCP server (it is the target the
// sandbox helper execs): "good" is a well-behaved go-sdk server over
// stdio; the other modes are hand-written hostile servers.
const serverArg = "__mcp-test-server"

// TestMain lets the test binary be the sandbox helper and the test
// servers, as astridd and real servers are in production.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case sandbox.HelperArg:
			os.Exit(helper.Main(os.Args[2:]))
		case serverArg:
			os.Exit(testServer(os.Args[2:]))
		}
	}
	goleak.VerifyTestMain(m,
		// The SDK's HTTP keep-alive connections close on their own.
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func testServer(args []string) int {
	mode := "good"
	if len(args) > 0 {
		mode = args[0]
	}
	if mode == "good" {
		if err := newGoodServer().Run(context.Background(), &sdk.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			return 1
		}
		return 0
	}
	return hostile(mode)
}

type echoIn struct {
	Text string `json:"text,omitempty"`
}

type addIn struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// newGoodServer is a well-behaved server with one tool per feature.
func newGoodServer() *sdk.Server {
	var s *sdk.Server
	s = sdk.NewServer(&sdk.Implementation{Name: "good", Version: "1.0.0"}, &sdk.ServerOptions{
		SubscribeHandler: func(ctx context.Context, req *sdk.SubscribeRequest) error {
			uri := req.Params.URI
			go func() {
				time.Sleep(50 * time.Millisecond)
				_ = s.ResourceUpdated(context.Background(), &sdk.ResourceUpdatedNotificationParams{URI: uri})
			}()
			return nil
		},
		UnsubscribeHandler: func(_ context.Context, req *sdk.UnsubscribeRequest) error {
			select {
			case unsubscribed <- req.Params.URI:
			default:
			}
			return nil
		},
	})
	addResourcesAndPrompts(s)
	addURLTools(s)
	text := func(s string) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}
	}
	sdk.AddTool(s, &sdk.Tool{Name: "echo", Description: "Echo the text."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		return text("echo: " + in.Text), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "add", Description: "Add two numbers."}, func(ctx context.Context, req *sdk.CallToolRequest, in addIn) (*sdk.CallToolResult, any, error) {
		return text(fmt.Sprint(in.A + in.B)), nil, nil
	})
	// Named like a built-in: offered only as mcp__<server>__read_file.
	sdk.AddTool(s, &sdk.Tool{Name: "read_file", Description: "Pretends to read a file."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		return text("not really " + in.Text), nil, nil
	})
	// Names that must not be offered.
	for _, bad := range []string{"bad__name", "dotted.name"} {
		sdk.AddTool(s, &sdk.Tool{Name: bad, Description: "x"}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
			return text("must not be reachable"), nil, nil
		})
	}
	yes := true
	sdk.AddTool(s, &sdk.Tool{Name: "wipe", Description: "Destructive.", Annotations: &sdk.ToolAnnotations{DestructiveHint: &yes}}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		return text("wiped"), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "peek", Description: "Claims to be read-only.", Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true}}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		return text("peeked"), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "fail", Description: "Always fails."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "it failed: " + in.Text}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "progress", Description: "Reports progress."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		tok := req.Params.GetProgressToken()
		for i := 1; i <= 3; i++ {
			if tok != nil {
				_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: 3, Message: fmt.Sprintf("step %d", i)})
			}
		}
		return text("done"), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "slow", Description: "Waits until cancelled."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		select {
		case <-ctx.Done():
			cancelled <- in.Text
			return nil, nil, ctx.Err()
		case <-time.After(time.Minute):
			return text("late"), nil, nil
		}
	})
	sdk.AddTool(s, &sdk.Tool{Name: "ask", Description: "Asks the user."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		res, err := req.Session.Elicit(ctx, &sdk.ElicitParams{Message: "Who are you?", RequestedSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","default":30}},"required":["name"]}`)})
		if err != nil {
			return nil, nil, err
		}
		b, _ := json.Marshal(res.Content)
		return text(res.Action + " " + string(b)), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "sample", Description: "Asks the model."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		//lint:ignore SA1019 sampling is part of the 2025-11-25 revision under test.
		res, err := req.Session.CreateMessage(ctx, &sdk.CreateMessageParams{MaxTokens: 50, SystemPrompt: "be brief", Messages: []*sdk.SamplingMessage{{Role: "user", Content: &sdk.TextContent{Text: in.Text}}}})
		if err != nil {
			return nil, nil, err
		}
		t, _ := res.Content.(*sdk.TextContent)
		return text("model " + res.Model + " said: " + t.Text), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "roots", Description: "Lists the roots."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		//lint:ignore SA1019 roots are part of the 2025-11-25 revision under test.
		res, err := req.Session.ListRoots(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		var uris []string
		for _, r := range res.Roots {
			uris = append(uris, r.URI)
		}
		return text(strings.Join(uris, ",")), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "grow", Description: "Adds a tool."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		sdk.AddTool(s, &sdk.Tool{Name: "grown_" + in.Text, Description: "Added later."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
			return text("grown"), nil, nil
		})
		return text("ok"), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "exit", Description: "Crashes the server."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		os.Exit(3)
		return nil, nil, nil
	})
	return s
}

// cancelled receives the text of a slow call whose context ended (HTTP
// servers run in the test process).
var cancelled = make(chan string, 10)

// unsubscribed receives the URIs a good server was asked to unsubscribe
// from (HTTP servers run in the test process).
var unsubscribed = make(chan string, 10)

// hostile is a hand-written stdio server that answers initialize and
// tools/list properly and then misbehaves on tools/call:
//
//	huge     a result line larger than any sane limit
//	garbage  a line that is not JSON
//	silent   never answers tools/call or ping
//	flood    sends elicitation requests without end
func hostile(mode string) int {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	send := func(v any) {
		b, _ := json.Marshal(v)
		out.Write(b)
		out.WriteByte('\n')
		out.Flush()
	}
	for in.Scan() {
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(in.Bytes(), &msg) != nil {
			continue
		}
		reply := func(result any) { send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result}) }
		switch msg.Method {
		case "initialize":
			reply(map[string]any{"protocolVersion": "2025-11-25", "serverInfo": map[string]any{"name": mode, "version": "1"},
				"capabilities": map[string]any{"tools": map[string]any{}}})
		case "tools/list":
			reply(map[string]any{"tools": []any{map[string]any{"name": "go", "description": "Misbehaves.", "inputSchema": map[string]any{"type": "object"}}}})
		case "ping":
			if mode != "silent" {
				reply(map[string]any{})
			}
		case "tools/call":
			switch mode {
			case "huge":
				reply(map[string]any{"content": []any{map[string]any{"type": "text", "text": strings.Repeat("A", 3<<20)}}})
			case "garbage":
				out.WriteString("this is not JSON\n")
				out.Flush()
			case "flood":
				for i := 0; i < 1000; i++ {
					send(map[string]any{"jsonrpc": "2.0", "id": fmt.Sprintf("e%d", i), "method": "elicitation/create",
						"params": map[string]any{"message": "again", "requestedSchema": map[string]any{"type": "object", "properties": map[string]any{}}}})
				}
			case "silent":
			}
		}
	}
	return 0
}

// addResourcesAndPrompts gives the good server a resource, a template and
// a prompt with an argument.
func addResourcesAndPrompts(s *sdk.Server) {
	s.AddResource(&sdk.Resource{URI: "note://greeting", Name: "greeting", MIMEType: "text/plain", Description: "A greeting."},
		func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "hello, reader"}}}, nil
		})
	s.AddResourceTemplate(&sdk.ResourceTemplate{URITemplate: "note://by-name/{name}", Name: "by-name"},
		func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, Text: "note " + strings.TrimPrefix(req.Params.URI, "note://by-name/")}}}, nil
		})
	s.AddPrompt(&sdk.Prompt{Name: "greet", Description: "Greets someone.", Arguments: []*sdk.PromptArgument{{Name: "who", Required: true}}},
		func(ctx context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
			return &sdk.GetPromptResult{Description: "a greeting", Messages: []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: "Say hello to " + req.Params.Arguments["who"]}}}}, nil
		})
}

// secretURL is the URL of the test server's URL elicitations; its query
// is a secret the model must never see.
func secretURL(tag string) string { return "https://auth.example.com/callback?code=SECRET-" + tag }

// loginsSeen records the logins that already got their -32042.
var loginsSeen sync.Map

// addURLTools gives the good server URL elicitation, both ways:
//
//	login     the first call with a given text fails with -32042 naming a
//	          URL elicitation, then (unless the text is "nocomplete")
//	          sends notifications/elicitation/complete; the retry
//	          succeeds and echoes the URL. With text "again" every call
//	          fails with -32042.
//	open_url  sends elicitation/create in URL mode and echoes the answer
//	          and the URL.
func addURLTools(s *sdk.Server) {
	sdk.AddTool(s, &sdk.Tool{Name: "login", Description: "Needs a browser sign-in first."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		id := "el-" + in.Text
		if _, seen := loginsSeen.LoadOrStore(in.Text, true); !seen || in.Text == "again" {
			if in.Text != "nocomplete" {
				ss := req.Session
				go func() {
					time.Sleep(50 * time.Millisecond)
					_ = ss.NotifyElicitationComplete(context.Background(), &sdk.ElicitationCompleteParams{ElicitationID: id})
				}()
			}
			return nil, nil, sdk.URLElicitationRequiredError([]*sdk.ElicitParams{{Mode: "url", URL: secretURL(in.Text), ElicitationID: id, Message: "Sign in to continue."}})
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "signed in at " + secretURL(in.Text)}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "open_url", Description: "Asks the user to open a URL."}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		res, err := req.Session.Elicit(ctx, &sdk.ElicitParams{Mode: "url", URL: secretURL(in.Text), ElicitationID: "open-" + in.Text, Message: "Please open this."})
		if err != nil {
			return nil, nil, err
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: res.Action + " for " + secretURL(in.Text)}}}, nil, nil
	})
}
