package daemon

import (
	"context"

	"github.com/astrid-runtime/astrid/internal/api"
)

// MCPBackend is the part of a backend that reads MCP servers' resources
// and prompts for the user (astrid.listResources, readResource,
// listPrompts, getPrompt). A Backend that does not implement it answers
// those methods with api.ErrUnavailable.
type MCPBackend interface {
	ListResources(ctx context.Context, c Caller, p api.MCPServerParams) (api.ListResourcesResult, error)
	ReadResource(ctx context.Context, c Caller, p api.ReadResourceParams) (api.ReadResourceResult, error)
	ListPrompts(ctx context.Context, c Caller, p api.MCPServerParams) (api.ListPromptsResult, error)
	GetPrompt(ctx context.Context, c Caller, p api.GetPromptParams) (api.GetPromptResult, error)
}

// mcpBackend adapts an MCPBackend method; without one the method is
// unavailable.
func mcpBackend[P, R any](m func(b MCPBackend) func(context.Context, Caller, P) (R, error)) methodFunc {
	return typed(func(d *Daemon, ctx context.Context, c *clientConn, p P) (R, error) {
		b, ok := d.backend.(MCPBackend)
		if !ok {
			var zero R
			return zero, Unavailable{Reason: "MCP resources and prompts are not served by this daemon"}.err("MCP resources and prompts")
		}
		return m(b)(ctx, c.caller, p)
	})
}

func init() {
	methods[api.MethodListResources] = mcpBackend(func(b MCPBackend) func(context.Context, Caller, api.MCPServerParams) (api.ListResourcesResult, error) {
		return b.ListResources
	})
	methods[api.MethodReadResource] = mcpBackend(func(b MCPBackend) func(context.Context, Caller, api.ReadResourceParams) (api.ReadResourceResult, error) {
		return b.ReadResource
	})
	methods[api.MethodListPrompts] = mcpBackend(func(b MCPBackend) func(context.Context, Caller, api.MCPServerParams) (api.ListPromptsResult, error) {
		return b.ListPrompts
	})
	methods[api.MethodGetPrompt] = mcpBackend(func(b MCPBackend) func(context.Context, Caller, api.GetPromptParams) (api.GetPromptResult, error) {
		return b.GetPrompt
	})
}
