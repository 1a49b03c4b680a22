package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// EventType names the kind of an Event and so the type of its Data.
type EventType string

// The event types; the comment names the payload type in Data.
const (
	EventTextDelta         EventType = "text_delta"         // TextDelta
	EventReasoningDelta    EventType = "reasoning_delta"    // TextDelta
	EventToolCallStart     EventType = "tool_call_start"    // ToolCallStart
	EventToolCallResult    EventType = "tool_call_result"   // ToolCallResult
	EventApprovalNeeded    EventType = "approval_needed"    // ApprovalNeeded
	EventElicitationNeeded EventType = "elicitation_needed" // ElicitationNeeded
	EventApprovalResolved  EventType = "approval_resolved"  // ApprovalResolved
	EventUsage             EventType = "usage"              // Usage
	EventBudgetWarning     EventType = "budget_warning"     // BudgetWarning
	EventTurnComplete      EventType = "turn_complete"      // TurnComplete
	EventError             EventType = "error"              // ErrorEvent
	EventSessionSaved      EventType = "session_saved"      // SessionSaved
	EventCapsuleLoaded     EventType = "capsule_loaded"     // CapsuleInfo
	EventCapsuleFailed     EventType = "capsule_failed"     // CapsuleInfo (State "failed", Error set)
	EventCapsuleUnloaded   EventType = "capsule_unloaded"   // CapsuleInfo
	EventDeferredResult    EventType = "deferred_result"    // DeferredResult
	// EventLagged is sent by the daemon itself to a subscriber that lost
	// events because it read too slowly.
	EventLagged EventType = "lagged" // Lagged
)

// Event is the params of an astrid.event notification.
type Event struct {
	// Session is the session the event belongs to; empty for daemon-wide
	// events (capsule_*).
	Session string `json:"session,omitempty"`
	// Seq increases by one with each event of a session (daemon-wide
	// events have their own sequence), starting at 1 for each daemon
	// process. A lagged event has Seq 0.
	Seq  uint64    `json:"seq"`
	Type EventType `json:"type"`
	Time time.Time `json:"time"`
	// Data is the payload, whose type Type names.
	Data json.RawMessage `json:"data,omitempty"`
}

// NewEvent builds an event of a session with data encoded as its payload.
// Seq and Time are assigned when it is published.
func NewEvent(session string, t EventType, data any) (Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("event %s: %w", t, err)
	}
	return Event{Session: session, Type: t, Data: b}, nil
}

// Decode decodes the event's payload into v, which should be a pointer to
// the payload type its Type names.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("event %s: %w", e.Type, err)
	}
	return nil
}

// TextDelta is a piece of the model's answer (text_delta) or of its
// reasoning (reasoning_delta).
type TextDelta struct {
	Turn string `json:"turn"`
	Text string `json:"text"`
}

// ToolCallStart says the model called a tool and the call is being judged
// or run.
type ToolCallStart struct {
	Turn      string          `json:"turn"`
	Call      string          `json:"call"`
	Tool      string          `json:"tool"`
	Resource  string          `json:"resource,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// ToolCallResult is the outcome of a tool call. Status is ok, error,
// denied or deferred.
type ToolCallResult struct {
	Turn   string `json:"turn"`
	Call   string `json:"call"`
	Tool   string `json:"tool"`
	Status string `json:"status"`
	// Output is the (possibly truncated) output shown to the model.
	Output    string `json:"output,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// ApprovalNeeded asks every frontend of the session for an answer; reply
// with astrid.approvalResponse before Deadline, after which the action is
// deferred.
type ApprovalNeeded struct {
	Request  ApprovalRequest `json:"request"`
	Deadline time.Time       `json:"deadline,omitzero"`
}

// ElicitationNeeded relays an MCP server's request for user input: a form
// (Schema, a JSON schema of flat fields) or a URL to open (Mode "url").
// In URL mode Domain is the URL's host, which a frontend shows
// prominently (the user decides whether to trust it), and ElicitationID
// matches the elicitation_completed event that ends it. The model never
// sees the URL.
type ElicitationNeeded struct {
	Request       string          `json:"request"`
	Server        string          `json:"server"`
	Mode          string          `json:"mode"`
	Message       string          `json:"message"`
	Schema        json.RawMessage `json:"schema,omitempty"`
	URL           string          `json:"url,omitempty"`
	Domain        string          `json:"domain,omitempty"`
	ElicitationID string          `json:"elicitation_id,omitempty"`
	// Sampling marks the form of a server's sampling request: accepting
	// it (as shown or edited) lets the server's prompt go to the model,
	// charged to the session; it is an approval, where other forms share
	// the user's data.
	Sampling bool `json:"sampling,omitempty"`
}

// ApprovalResolved says an approval request has its answer (or was
// deferred: Decision "deferred"); frontends drop their prompt for it.
type ApprovalResolved struct {
	Request  string          `json:"request"`
	Decision string          `json:"decision"`
	Answer   *ApprovalAnswer `json:"answer,omitempty"`
	// Deferred is the deferred-queue id when the answer came through
	// resolveApproval or the action was deferred.
	Deferred string `json:"deferred,omitempty"`
}

// Statuses of a DeferredResult.
const (
	DeferredRan     = "ok"      // it ran and succeeded; Output is its result
	DeferredFailed  = "error"   // it ran and failed; Output says how
	DeferredRefused = "refused" // not run: policy or budget refused it now, or the call no longer matches what was approved
	DeferredDenied  = "denied"  // a human denied it; nothing ran
	DeferredQueued  = "queued"  // approved; it runs when the session's running turn ends
)

// DeferredResult (event deferred_result, and DeferredApproval.Outcome in
// the result of resolveApproval) says what became of an agent's tool call
// that was deferred, once a human answered it: the daemon runs an
// approved one exactly once, under the policy and budget in force then
// and only if the tool, prepared again with the approved arguments, would
// do exactly what was approved. The session's model is told the same
// before its next turn. The event is sent once the outcome is final
// (never for "queued").
type DeferredResult struct {
	// ID is the deferred approval.
	ID       string `json:"id"`
	Tool     string `json:"tool"`
	Resource string `json:"resource"`
	// Decision is the human's answer, By who gave it.
	Decision string `json:"decision"`
	By       string `json:"by,omitempty"`
	Status   string `json:"status"`
	// Output is the (possibly truncated) result or error.
	Output    string `json:"output,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Usage reports the tokens and cost of one model call.
type Usage struct {
	Turn             string  `json:"turn"`
	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"`
	CacheReadTokens  int64   `json:"cache_read_tokens,omitempty"`
	CacheWriteTokens int64   `json:"cache_write_tokens,omitempty"`
	CostUSD          float64 `json:"cost_usd"`
	ContextTokens    int64   `json:"context_tokens,omitempty"`
	ContextWindow    int64   `json:"context_window,omitempty"`
}

// BudgetWarning says an account crossed its warning threshold. Account is
// "session" or "workspace"; Key is the session id or workspace root.
type BudgetWarning struct {
	Account  string  `json:"account"`
	Key      string  `json:"key"`
	UsedUSD  float64 `json:"used_usd"`
	LimitUSD float64 `json:"limit_usd"`
}

// TurnComplete ends a turn. StopReason is end_turn, cancelled, error,
// max_iterations or budget.
type TurnComplete struct {
	Turn       string `json:"turn"`
	StopReason string `json:"stop_reason"`
}

// ErrorEvent reports an error outside a method call (the payload of
// "error"). Code is the JSON-RPC code of the matching error, if any.
type ErrorEvent struct {
	Turn    string `json:"turn,omitempty"`
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

// SessionSaved says the session was written to the store.
type SessionSaved struct {
	Turns int `json:"turns"`
}

// Lagged tells a subscriber it missed Dropped events.
type Lagged struct {
	Dropped uint64 `json:"dropped"`
}
