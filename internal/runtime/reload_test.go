package runtime

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/mcp"
)

// TestBackendReloadConfig: a reloaded configuration starts a new
// auto_start MCP server and stops a removed one, and the hooks are
// discovered again under the new [hooks] settings.
func TestBackendReloadConfig(t *testing.T) {
	w := newWorld(t, `{"text":"x"}`, "")
	srv := sdk.NewServer(&sdk.Implementation{Name: "web", Version: "1.0.0"}, nil)
	type in struct{}
	sdk.AddTool(srv, &sdk.Tool{Name: "ping", Description: "Pong."}, func(context.Context, *sdk.CallToolRequest, in) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "pong"}}}, nil, nil
	})
	ts := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, nil))
	defer func() {
		ts.CloseClientConnections()
		ts.Close()
	}()
	b, err := NewBackendWith(daemon.BackendDeps{Core: w.core, Config: w.rt.o.Config, Events: w.ev, Logger: slog.New(slog.DiscardHandler)}, w.rt.o.Provider)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	if b.MCP == nil {
		t.Fatal("no MCP manager")
	}
	w.userHooks("[[hook]]\nname = \"stop\"\nevent = \"UserPrompt\"\ncommand = [\"./no.sh\"]\n",
		map[string]string{"no.sh": "#!/bin/sh\necho '{\"decision\":\"block\",\"reason\":\"closed\"}'\n"})
	prompt := hooks.Payload{Event: hooks.UserPrompt, SessionID: "s1", Prompt: "hi"}
	if !b.R.FireHook(context.Background(), "", prompt).Blocked() {
		t.Fatal("the hook does not block before the reload")
	}

	cfg := *w.rt.o.Config
	cfg.Servers = map[string]config.Server{"web": {Transport: "streamable-http", URL: ts.URL, Trusted: true, AutoStart: true, RestartPolicy: "never"}}
	cfg.Hooks.Enabled = false
	changes, err := b.ReloadConfig(context.Background(), &cfg)
	if err != nil || !maps.Equal(changes, map[string]string{"web": mcp.ServerAdded}) {
		t.Fatalf("reload: %v %v", changes, err)
	}
	if l := b.MCP.List(); len(l) != 1 || l[0].State != mcp.StateRunning || l[0].Tools != 1 {
		t.Errorf("servers after the reload: %+v", l)
	}
	if b.R.FireHook(context.Background(), "", prompt).Blocked() {
		t.Error("hooks disabled by the reload still run")
	}

	cfg.Servers = nil
	cfg.Hooks.Enabled = true
	changes, err = b.ReloadConfig(context.Background(), &cfg)
	if err != nil || !maps.Equal(changes, map[string]string{"web": mcp.ServerRemoved}) {
		t.Fatalf("second reload: %v %v", changes, err)
	}
	if l := b.MCP.List(); len(l) != 0 {
		t.Errorf("servers after removal: %+v", l)
	}
	if !b.R.FireHook(context.Background(), "", prompt).Blocked() {
		t.Error("hooks enabled again by the reload do not run")
	}
}
