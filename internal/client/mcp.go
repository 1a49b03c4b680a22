package client

import (
	"context"

	"github.com/astrid-runtime/astrid/internal/api"
)

// ListResources calls astrid.listResources.
func (c *Client) ListResources(ctx context.Context, p api.MCPServerParams) (api.ListResourcesResult, error) {
	return call[api.ListResourcesResult](ctx, c, api.MethodListResources, p)
}

// ReadResource calls astrid.readResource.
func (c *Client) ReadResource(ctx context.Context, p api.ReadResourceParams) (api.ReadResourceResult, error) {
	return call[api.ReadResourceResult](ctx, c, api.MethodReadResource, p)
}

// ListPrompts calls astrid.listPrompts.
func (c *Client) ListPrompts(ctx context.Context, p api.MCPServerParams) (api.ListPromptsResult, error) {
	return call[api.ListPromptsResult](ctx, c, api.MethodListPrompts, p)
}

// GetPrompt calls astrid.getPrompt.
func (c *Client) GetPrompt(ctx context.Context, p api.GetPromptParams) (api.GetPromptResult, error) {
	return call[api.GetPromptResult](ctx, c, api.MethodGetPrompt, p)
}
