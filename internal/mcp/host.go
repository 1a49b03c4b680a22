package mcp

import (
	"context"
	"encoding/json"
)

// The interfaces below are how a server's own requests reach the rest of
// Astrid. The runtime implements them; each may be nil, and then the
// client does not declare the capability and refuses such requests.

// Sampler answers a server's sampling/createMessage request: the server
// asks the model. The implementation asks the human for approval (showing
// the server, the prompt and MaxTokens; the human may edit or reject),
// charges the session's budget, and calls the model. An error refuses the
// request (the server gets a JSON-RPC error). It is called concurrently.
type Sampler interface {
	Sample(ctx context.Context, req SampleRequest) (SampleResult, error)
}

// SampleRequest is a server's request for a model completion.
type SampleRequest struct {
	// Server is the configured name of the asking server.
	Server string
	// Session is the session whose tool call is running on this server
	// when the request came, or "" when no single session is (then the
	// request must not be charged to or shown in an arbitrary session).
	Session string
	// Messages are the conversation the server wants completed; the text
	// of each, images and audio as a placeholder.
	Messages []SampleMessage
	// SystemPrompt, MaxTokens, Temperature (nil: unset) and StopSequences
	// are as the server asked.
	SystemPrompt  string
	MaxTokens     int
	Temperature   *float64
	StopSequences []string
	// ModelHints are the server's model name hints, in order.
	ModelHints []string
	// Params is the request's params exactly as received.
	Params json.RawMessage
}

// SampleMessage is one message of a SampleRequest.
type SampleMessage struct {
	Role string // "user" or "assistant"
	Text string
}

// SampleResult is the model's answer.
type SampleResult struct {
	Text string
	// Model is the model that answered; StopReason is "endTurn",
	// "maxTokens", "stopSequence" or the provider's reason.
	Model      string
	StopReason string
}

// Elicitor answers a server's elicitation/create request: the server asks
// the user. Form mode shows Message and a form built from Schema (a flat
// object schema); URL mode shows Message, the URL and its domain (the
// model never sees the URL). The implementation returns the user's
// answer; an error is reported to the server as a cancellation. It is
// called concurrently, at most ElicitationsPerMinute times a minute per
// server.
type Elicitor interface {
	Elicit(ctx context.Context, req ElicitRequest) (ElicitResult, error)
}

// ElicitRequest is what a server asks the user.
type ElicitRequest struct {
	// ID identifies this request within the process (for the frontend's
	// answer).
	ID string
	// Server and Session are as in SampleRequest.
	Server  string
	Session string
	// Mode is "form" or "url".
	Mode    string
	Message string
	// Schema is the requested schema (form mode).
	Schema json.RawMessage
	// URL and ElicitationID are set in URL mode; Domain is the URL's host.
	URL           string
	Domain        string
	ElicitationID string
	// Sampling marks the form the host shows for a sampling request
	// (api.ElicitationNeeded.Sampling); never set by a server.
	Sampling bool
}

// ElicitResult is the user's answer. Action is "accept", "decline" or
// "cancel"; Content is the form's values (accept, form mode). Fields the
// user left out that have a default in the schema are filled in by the
// client before the answer is sent.
type ElicitResult struct {
	Action  string
	Content map[string]any
}

// Roots tells servers which directories they may work in: the
// workspace roots of the sessions using them. Roots must return promptly.
type Roots interface {
	Roots(server string) []string
}
