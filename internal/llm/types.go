package llm

import (
	"context"
	"encoding/json"
	"iter"

	"github.com/astrid-runtime/astrid/internal/budget"
)

// Provider streams model turns. Implementations are safe for concurrent use:
// one Provider serves every session.
type Provider interface {
	// Name is the provider's configured name: "anthropic", "openai", "zai"
	// or "replay". It is the Provider field of every *Error it returns.
	Name() string
	// Model is the model every request is sent to.
	Model() string
	// Stream sends req and returns the model's turn as a stream of events.
	// The request is sent when the caller starts ranging; see the package
	// documentation for the contract of the stream. Stream does not retain
	// req after the iterator returns.
	Stream(ctx context.Context, req *Request) iter.Seq2[Event, error]
	// EstimateCost is an upper-bound guess of what req will cost, for the
	// budget reservation made before the call (see EstimateCost).
	EstimateCost(req *Request) budget.Micros
}

// Role says who wrote a message.
type Role string

// The roles of a conversation. System text travels in Request.System, not
// as a message.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one turn of the conversation.
type Message struct {
	Role  Role
	Parts []Part
}

// PartKind says which field of a Part is set.
type PartKind string

// The kinds of message parts.
const (
	// PartText is plain text, from either role.
	PartText PartKind = "text"
	// PartImage is an image in a user message (Anthropic and vision-capable
	// OpenAI-compatible models).
	PartImage PartKind = "image"
	// PartReasoning is the model's earlier reasoning, in an assistant
	// message. Anthropic needs it back, signature included, when extended
	// thinking and tools are used together; other providers drop it.
	PartReasoning PartKind = "reasoning"
	// PartToolCall is a tool call the model made, in an assistant message.
	PartToolCall PartKind = "tool_call"
	// PartToolResult answers a tool call, in a user message.
	PartToolResult PartKind = "tool_result"
)

// Part is one piece of a message; Kind says which fields are set.
type Part struct {
	Kind PartKind
	// Text is the text of a PartText or PartReasoning.
	Text string
	// Signature is the provider's signature of a PartReasoning, returned
	// verbatim; Redacted is the opaque payload of a redacted reasoning block.
	Signature string
	Redacted  string
	// Image is set for PartImage.
	Image *Image
	// ToolCall is set for PartToolCall.
	ToolCall *ToolCall
	// ToolResult is set for PartToolResult.
	ToolResult *ToolResult
}

// Image is an inline image.
type Image struct {
	// MediaType is image/png, image/jpeg, image/gif or image/webp.
	MediaType string
	// Data is the raw image bytes (not base64).
	Data []byte
}

// ToolCall is the model's request to run a tool.
type ToolCall struct {
	// ID is the provider's identifier; the ToolResult answering the call
	// carries it back.
	ID   string
	Name string
	// Arguments is a JSON object. In an EventToolCallStart it is empty.
	Arguments json.RawMessage
}

// ToolResult is the outcome of a tool call, sent back to the model.
type ToolResult struct {
	// CallID is the ToolCall.ID this result answers.
	CallID string
	// Content is the tool's output (the runtime tags it as untrusted data
	// before it gets here).
	Content string
	// IsError marks a failed call.
	IsError bool
}

// Tool describes a tool the model may call.
type Tool struct {
	Name        string
	Description string
	// InputSchema is the JSON Schema of the arguments object. Nil means an
	// object with no declared properties.
	InputSchema json.RawMessage
}

// Request is one model call.
type Request struct {
	// System is the system prompt. Anthropic receives it as the system
	// field with a cache breakpoint; OpenAI-compatible servers as the first
	// system message.
	System string
	// Summary condenses earlier turns that no longer fit the context. It is
	// sent right after System as a second system block (message), never
	// dropped.
	Summary  string
	Messages []Message
	Tools    []Tool
	// MaxTokens caps the reply; zero means the provider's configured value.
	MaxTokens int64
	// Temperature overrides the configured temperature when non-nil.
	// Anthropic ignores it while extended thinking is on.
	Temperature *float64
	// ThinkingBudget, when positive, turns on extended thinking (Anthropic:
	// budget_tokens, which must be below the max tokens; Z.AI: thinking
	// enabled). Reasoning then streams as EventReasoning.
	ThinkingBudget int64
}

// EventKind says what an Event carries.
type EventKind uint8

// The kinds of events.
const (
	// EventText carries a fragment of the reply in Text.
	EventText EventKind = iota + 1
	// EventReasoning carries a fragment of the model's reasoning in Text.
	EventReasoning
	// EventReasoningEnd closes a reasoning block; Signature (or Redacted,
	// for a redacted block) is what Part{Kind: PartReasoning} needs to send
	// it back.
	EventReasoningEnd
	// EventToolCallStart opens tool call number Index; ToolCall has the ID
	// and Name.
	EventToolCallStart
	// EventToolCallDelta carries a fragment of the arguments of call Index
	// in Text. Fragments are for display: they need not be valid JSON.
	EventToolCallDelta
	// EventToolCallEnd closes call Index; ToolCall is complete and its
	// Arguments are a valid JSON object.
	EventToolCallEnd
	// EventUsage reports the final token counts and cost of the response.
	EventUsage
	// EventStop is the last event of a successful stream; StopReason says
	// why the model stopped.
	EventStop
)

var eventKindNames = [...]string{"", "text", "reasoning", "reasoning_end", "tool_call_start", "tool_call_delta", "tool_call_end", "usage", "stop"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && k != 0 {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event is one step of a streamed response; Kind says which fields are set.
type Event struct {
	Kind EventKind
	// Text is the fragment of an EventText, EventReasoning or
	// EventToolCallDelta.
	Text string
	// Index numbers the tool calls of one response from 0, in the order they
	// started.
	Index int
	// ToolCall is set for the tool call events.
	ToolCall ToolCall
	// Signature and Redacted are set for EventReasoningEnd.
	Signature string
	Redacted  string
	// Usage is set for EventUsage.
	Usage Usage
	// StopReason is set for EventStop.
	StopReason StopReason
}

// Usage is the token count and cost of one response. InputTokens excludes
// tokens read from or written to the prompt cache, so that the four counts
// add up to everything billed.
type Usage struct {
	InputTokens      int64
	OutputTokens     int64
	CacheReadTokens  int64
	CacheWriteTokens int64
	// Cost is the response's price under the provider's Pricing.
	Cost budget.Micros
	// Estimated is true when the server reported no usage and the counts
	// are estimates (see EstimateTokens).
	Estimated bool
}

// StopReason says why the model stopped. Providers map their own values to
// the constants below; a value they do not know passes through unchanged.
type StopReason string

// The common stop reasons.
const (
	StopEndTurn   StopReason = "end_turn"
	StopToolUse   StopReason = "tool_use"
	StopMaxTokens StopReason = "max_tokens"
	StopSequence  StopReason = "stop_sequence"
	// StopRefusal: the provider refused or filtered the content.
	StopRefusal StopReason = "refusal"
	// StopPause: the provider paused a long turn; send it back to continue.
	StopPause StopReason = "pause_turn"
)
