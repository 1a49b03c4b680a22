package runtime

import (
	"context"
	"fmt"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/daemon"
)

// The user's own reading of MCP servers' resources and prompts
// (daemon.MCPBackend). The model reaches the same through the mcp_* tools,
// judged by the interceptor; these answer the human at the frontend.

// loadWorkspace makes the servers a workspace root's configuration adds
// known to the MCP manager (they are loaded with the workspace's
// registry).
func (b *Backend) loadWorkspace(workspace string) error {
	if workspace == "" {
		return nil
	}
	if workspace[0] != '/' {
		return fmt.Errorf("%w: workspace must be an absolute path", api.ErrInvalidParams)
	}
	_, err := b.R.registry(workspace)
	return err
}

// mcpWorkspace returns the workspace a session's MCP server names resolve
// in ("" without a session).
func (b *Backend) mcpWorkspace(ctx context.Context, session string) (string, error) {
	if b.MCP == nil {
		return "", fmt.Errorf("%w: MCP servers: %s", api.ErrUnavailable, b.Unavailable.Reason)
	}
	if session == "" {
		return "", nil
	}
	rec, err := b.R.Resume(ctx, session)
	if err != nil {
		return "", err
	}
	return rec.Workspace, b.loadWorkspace(rec.Workspace)
}

// ListResources implements daemon.MCPBackend.
func (b *Backend) ListResources(ctx context.Context, _ daemon.Caller, p api.MCPServerParams) (api.ListResourcesResult, error) {
	ws, err := b.mcpWorkspace(ctx, p.Session)
	if err != nil {
		return api.ListResourcesResult{}, err
	}
	return b.MCP.ListResources(ctx, ws, p.Server)
}

// ReadResource implements daemon.MCPBackend.
func (b *Backend) ReadResource(ctx context.Context, _ daemon.Caller, p api.ReadResourceParams) (api.ReadResourceResult, error) {
	ws, err := b.mcpWorkspace(ctx, p.Session)
	if err != nil {
		return api.ReadResourceResult{}, err
	}
	return b.MCP.ReadResource(ctx, ws, p.Server, p.URI)
}

// ListPrompts implements daemon.MCPBackend.
func (b *Backend) ListPrompts(ctx context.Context, _ daemon.Caller, p api.MCPServerParams) (api.ListPromptsResult, error) {
	ws, err := b.mcpWorkspace(ctx, p.Session)
	if err != nil {
		return api.ListPromptsResult{}, err
	}
	return b.MCP.ListPrompts(ctx, ws, p.Server)
}

// GetPrompt implements daemon.MCPBackend.
func (b *Backend) GetPrompt(ctx context.Context, _ daemon.Caller, p api.GetPromptParams) (api.GetPromptResult, error) {
	ws, err := b.mcpWorkspace(ctx, p.Session)
	if err != nil {
		return api.GetPromptResult{}, err
	}
	return b.MCP.GetPrompt(ctx, ws, p.Server, p.Name, p.Arguments)
}
