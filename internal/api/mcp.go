package api

import "errors"

// ---- MCP resources and prompts ----

// Method names of the user's access to MCP servers' resources and prompts.
// The agent reaches the same through its mcp_* tools, each call judged by
// the interceptor; these methods are the human's own reading.
const (
	MethodListResources = "astrid.listResources"
	MethodReadResource  = "astrid.readResource"
	MethodListPrompts   = "astrid.listPrompts"
	MethodGetPrompt     = "astrid.getPrompt"
)

// MCPServerParams name a running MCP server. Session, when set, resolves
// the name in that session's workspace, where servers added by the
// workspace's .astrid/config.toml are visible too.
type MCPServerParams struct {
	Server  string `json:"server"`
	Session string `json:"session,omitempty"`
}

// Validate implements Validator.
func (p MCPServerParams) Validate() error { return required("server", p.Server) }

// ResourceInfo describes a resource an MCP server offers.
type ResourceInfo struct {
	URI         string `json:"uri"`
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	MIMEType    string `json:"mime_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
}

// ResourceTemplateInfo describes a parameterised resource (RFC 6570 URI
// template).
type ResourceTemplateInfo struct {
	URITemplate string `json:"uri_template"`
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	MIMEType    string `json:"mime_type,omitempty"`
}

// ListResourcesResult is the result of astrid.listResources (params:
// MCPServerParams): the server's resources and resource templates.
type ListResourcesResult struct {
	Resources []ResourceInfo         `json:"resources"`
	Templates []ResourceTemplateInfo `json:"templates"`
}

// ReadResourceParams are the params of astrid.readResource.
type ReadResourceParams struct {
	Server  string `json:"server"`
	Session string `json:"session,omitempty"`
	URI     string `json:"uri"`
}

// Validate implements Validator.
func (p ReadResourceParams) Validate() error {
	if err := required("server", p.Server); err != nil {
		return err
	}
	return required("uri", p.URI)
}

// ResourceContent is one part of a read resource: Text, or Blob (base64).
type ResourceContent struct {
	URI      string `json:"uri"`
	MIMEType string `json:"mime_type,omitempty"`
	Text     string `json:"text,omitempty"`
	Blob     string `json:"blob,omitempty"`
}

// ReadResourceResult is the result of astrid.readResource.
type ReadResourceResult struct {
	Contents []ResourceContent `json:"contents"`
}

// PromptArgument is an argument a prompt takes.
type PromptArgument struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// PromptInfo describes a prompt an MCP server offers.
type PromptInfo struct {
	Name        string           `json:"name"`
	Title       string           `json:"title,omitempty"`
	Description string           `json:"description,omitempty"`
	Arguments   []PromptArgument `json:"arguments,omitempty"`
}

// ListPromptsResult is the result of astrid.listPrompts (params:
// MCPServerParams).
type ListPromptsResult struct {
	Prompts []PromptInfo `json:"prompts"`
}

// GetPromptParams are the params of astrid.getPrompt.
type GetPromptParams struct {
	Server    string            `json:"server"`
	Session   string            `json:"session,omitempty"`
	Name      string            `json:"name"`
	Arguments map[string]string `json:"arguments,omitempty"`
}

// Validate implements Validator.
func (p GetPromptParams) Validate() error {
	if err := required("server", p.Server); err != nil {
		return err
	}
	if err := required("name", p.Name); err != nil {
		return err
	}
	for k := range p.Arguments {
		if k == "" {
			return errors.New("argument names must not be empty")
		}
	}
	return nil
}

// PromptMessage is one message of a prompt; non-text content is a
// placeholder such as "[image image/png]".
type PromptMessage struct {
	Role string `json:"role"`
	Text string `json:"text"`
}

// GetPromptResult is the result of astrid.getPrompt.
type GetPromptResult struct {
	Description string          `json:"description,omitempty"`
	Messages    []PromptMessage `json:"messages"`
}

// MCP event types: a server's progress on a tool call, the status of a
// tool call running as an MCP task, and the end of a URL elicitation.
const (
	EventMCPProgress          EventType = "mcp_progress"          // MCPProgress
	EventMCPTask              EventType = "mcp_task"              // MCPTask
	EventElicitationCompleted EventType = "elicitation_completed" // ElicitationCompleted
	EventMCPResourceUpdated   EventType = "mcp_resource_updated"  // MCPResourceUpdated
)

// MCPProgress is a progress notification of a tool call. Total 0 means
// unknown.
type MCPProgress struct {
	Server   string  `json:"server"`
	Tool     string  `json:"tool"`
	Progress float64 `json:"progress"`
	Total    float64 `json:"total,omitempty"`
	Message  string  `json:"message,omitempty"`
}

// MCPTask is the status of a tool call that runs as an MCP task: working,
// input_required (the server waits for an elicitation or sampling answer,
// relayed as its own event), completed, failed or cancelled.
type MCPTask struct {
	Server  string `json:"server"`
	Tool    string `json:"tool"`
	Task    string `json:"task"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// ElicitationCompleted says a server finished the out-of-band interaction
// of a URL elicitation (notifications/elicitation/complete).
type ElicitationCompleted struct {
	Server        string `json:"server"`
	ElicitationID string `json:"elicitation_id"`
}

// MCPResourceUpdated says a subscribed resource changed.
type MCPResourceUpdated struct {
	Server string `json:"server"`
	URI    string `json:"uri"`
}
