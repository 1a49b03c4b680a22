package lineui

import (
	"context"
	"fmt"
	"strings"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
)

// MCPClient is the part of the daemon API behind /resources and /prompts:
// the user's own reading of MCP servers' resources and prompts.
// *client.Client implements it; a Client without it makes those commands
// say they are not available.
type MCPClient interface {
	ListResources(ctx context.Context, p api.MCPServerParams) (api.ListResourcesResult, error)
	ReadResource(ctx context.Context, p api.ReadResourceParams) (api.ReadResourceResult, error)
	ListPrompts(ctx context.Context, p api.MCPServerParams) (api.ListPromptsResult, error)
	GetPrompt(ctx context.Context, p api.GetPromptParams) (api.GetPromptResult, error)
}

func mcpClient(c Client) (MCPClient, error) {
	mc, ok := c.(MCPClient)
	if !ok {
		return nil, fmt.Errorf("%w: MCP resources and prompts", api.ErrUnavailable)
	}
	return mc, nil
}

// cmdResources and cmdPrompts show text from an MCP server, which is
// untrusted: it is sanitized before it reaches the terminal.
func cmdResources(ctx context.Context, c Client, s api.SessionInfo, arg string) (string, error) {
	out, err := resources(ctx, c, s, arg)
	return frontend.Sanitize(out), err
}

func cmdPrompts(ctx context.Context, c Client, s api.SessionInfo, arg string) (string, error) {
	out, err := prompts(ctx, c, s, arg)
	return frontend.Sanitize(out), err
}

func resources(ctx context.Context, c Client, s api.SessionInfo, arg string) (string, error) {
	mc, err := mcpClient(c)
	if err != nil {
		return "", err
	}
	server, uri, _ := strings.Cut(arg, " ")
	if server == "" {
		return "", fmt.Errorf("%w: usage: /resources SERVER [URI]", api.ErrInvalidParams)
	}
	if uri = strings.TrimSpace(uri); uri != "" {
		res, err := mc.ReadResource(ctx, api.ReadResourceParams{Server: server, Session: s.ID, URI: uri})
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, x := range res.Contents {
			fmt.Fprintf(&b, "── %s %s\n", x.URI, x.MIMEType)
			if x.Blob != "" {
				fmt.Fprintf(&b, "[%d bytes of base64]\n", len(x.Blob))
			} else {
				b.WriteString(x.Text + "\n")
			}
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
	res, err := mc.ListResources(ctx, api.MCPServerParams{Server: server, Session: s.ID})
	if err != nil {
		return "", err
	}
	if len(res.Resources)+len(res.Templates) == 0 {
		return "no resources", nil
	}
	rows := [][]string{{"URI", "NAME", "TYPE", "DESCRIPTION"}}
	for _, x := range res.Resources {
		rows = append(rows, []string{x.URI, x.Name, x.MIMEType, frontend.Clip(x.Description, 50)})
	}
	for _, x := range res.Templates {
		rows = append(rows, []string{x.URITemplate, x.Name, "template", frontend.Clip(x.Description, 50)})
	}
	return table(rows), nil
}

func prompts(ctx context.Context, c Client, s api.SessionInfo, arg string) (string, error) {
	mc, err := mcpClient(c)
	if err != nil {
		return "", err
	}
	fields := strings.Fields(arg)
	if len(fields) == 0 {
		return "", fmt.Errorf("%w: usage: /prompts SERVER [NAME [ARG=VALUE ...]]", api.ErrInvalidParams)
	}
	if len(fields) > 1 {
		p := api.GetPromptParams{Server: fields[0], Session: s.ID, Name: fields[1], Arguments: map[string]string{}}
		for _, kv := range fields[2:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return "", fmt.Errorf("%w: prompt argument %q: want NAME=VALUE", api.ErrInvalidParams, kv)
			}
			p.Arguments[k] = v
		}
		res, err := mc.GetPrompt(ctx, p)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		if res.Description != "" {
			b.WriteString(res.Description + "\n")
		}
		for _, m := range res.Messages {
			fmt.Fprintf(&b, "%s: %s\n", m.Role, m.Text)
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
	res, err := mc.ListPrompts(ctx, api.MCPServerParams{Server: fields[0], Session: s.ID})
	if err != nil {
		return "", err
	}
	if len(res.Prompts) == 0 {
		return "no prompts", nil
	}
	rows := [][]string{{"NAME", "ARGUMENTS", "DESCRIPTION"}}
	for _, x := range res.Prompts {
		var args []string
		for _, a := range x.Arguments {
			if a.Required {
				args = append(args, a.Name+"*")
			} else {
				args = append(args, a.Name)
			}
		}
		rows = append(rows, []string{x.Name, strings.Join(args, " "), frontend.Clip(x.Description, 60)})
	}
	return table(rows), nil
}
