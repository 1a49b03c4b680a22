package sdk

import (
	"encoding/json"
	"time"
)

// The JSON payloads of the host functions that take or return structured
// data. Byte fields are base64 in JSON, as encoding/json writes []byte.

// HTTPRequest is the a argument of FnHTTPRequest.
type HTTPRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// HTTPResponse is the payload of FnHTTPRequest.
type HTTPResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// FileInfo is the payload of FnFSStat and an entry of FnFSReadDir.
type FileInfo struct {
	Name    string    `json:"name"`
	Dir     bool      `json:"dir"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
}

// Message is an entry of FnIPCPoll's payload. Topic is as the capsule
// named it (without the host's prefix).
type Message struct {
	Topic   string `json:"topic"`
	From    string `json:"from"`
	Payload []byte `json:"payload"`
}

// ElicitRequest is the a argument of FnElicit.
type ElicitRequest struct {
	Prompt string `json:"prompt"`
	Secret bool   `json:"secret,omitempty"`
}

// HookEvent is the input of a KindHook call.
type HookEvent struct {
	Event   string `json:"event"`
	Session string `json:"session"`
	Tool    string `json:"tool,omitempty"`
	Args    []byte `json:"args,omitempty"`
	Result  string `json:"result,omitempty"`
}

// HookVerdict is the output of a KindHook call: Block stops the tool call
// (BeforeToolCall only) with Reason; Note is added to the result the model
// sees (AfterToolCall).
type HookVerdict struct {
	Block  bool   `json:"block,omitempty"`
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
}

// CompletionRequest is the input of a KindComplete call: the conversation
// so far, as an [[llm_provider]] capsule sees it.
type CompletionRequest struct {
	// Model is the model configured for the session (model.model).
	Model    string              `json:"model,omitempty"`
	System   string              `json:"system,omitempty"`
	Messages []CompletionMessage `json:"messages"`
	Tools    []CompletionTool    `json:"tools,omitempty"`
	// MaxTokens caps the reply; 0 means no cap was asked for.
	MaxTokens int64 `json:"max_tokens,omitempty"`
}

// CompletionMessage is one turn: Role "user" or "assistant". An
// assistant turn may carry ToolCalls; the user turn after it carries
// their ToolResults.
type CompletionMessage struct {
	Role        string                 `json:"role"`
	Text        string                 `json:"text,omitempty"`
	ToolCalls   []CompletionToolCall   `json:"tool_calls,omitempty"`
	ToolResults []CompletionToolResult `json:"tool_results,omitempty"`
}

// CompletionTool is a tool the model may call.
type CompletionTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// CompletionToolCall is a tool call the model makes: Arguments is a JSON
// object. ID is echoed back in the CompletionToolResult; the host makes
// one up when it is empty.
type CompletionToolCall struct {
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// CompletionToolResult answers a tool call.
type CompletionToolResult struct {
	CallID  string `json:"call_id"`
	Content string `json:"content"`
	IsError bool   `json:"is_error,omitempty"`
}

// CompletionResponse is the output of a KindComplete call: the model's
// turn. StopReason is "end_turn", "tool_use" or "max_tokens" (empty: the
// host infers it from ToolCalls).
type CompletionResponse struct {
	Text         string               `json:"text,omitempty"`
	ToolCalls    []CompletionToolCall `json:"tool_calls,omitempty"`
	StopReason   string               `json:"stop_reason,omitempty"`
	InputTokens  int64                `json:"input_tokens,omitempty"`
	OutputTokens int64                `json:"output_tokens,omitempty"`
}
