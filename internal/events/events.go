// Package events is Astrid's in-process event bus: typed events about
// what the runtime and the daemon do (sessions, turns, model calls, tool
// calls, sub-agents, approvals, budget, hooks, the daemon's lifecycle),
// published where they happen and delivered to any number of
// subscribers.
//
// Publishing never blocks: every subscriber has its own bounded buffer,
// and when it is full the event is dropped for that subscriber only. The
// next event it does receive carries Missed, the number of events it lost
// in between (and Subscription.Lagged counts them all), so a slow
// subscriber always knows it lagged and the runtime never waits for it.
//
// The daemon's stream to frontends (astrid.subscribeEvents) and its
// metrics are fed from the bus: the wire-format events travel as
// StreamEvent, and the metrics count every kind.
//
// Every event has a Kind (category.name), a sequence number unique within
// the Bus, a time, the session it concerns ("" for daemon-wide events)
// and Data, one of the payload types of this package chosen by the Kind
// (see the table on Kind's constants).
package events

import (
	"sync"
	"sync/atomic"
	"time"
)

// Kind names an event type.
type Kind string

// The event kinds, with the type of their Data.
const (
	DaemonStarted Kind = "daemon.started" // Daemon
	DaemonStopped Kind = "daemon.stopped" // Daemon

	SessionCreated Kind = "session.created" // Session
	SessionResumed Kind = "session.resumed" // Session
	SessionEnded   Kind = "session.ended"   // Session
	SessionSaved   Kind = "session.saved"   // Session

	MessageReceived  Kind = "message.received"  // Message: the user's input
	MessageProcessed Kind = "message.processed" // Message: the turn ended

	LLMRequestStarted   Kind = "llm.request_started"   // LLM
	LLMRequestCompleted Kind = "llm.request_completed" // LLM
	LLMStreamStarted    Kind = "llm.stream_started"    // LLM
	LLMStreamCompleted  Kind = "llm.stream_completed"  // LLM
	LLMUsage            Kind = "llm.usage"             // LLM

	ToolCallStarted   Kind = "tool.call_started"   // Tool
	ToolCallCompleted Kind = "tool.call_completed" // Tool
	ToolCallFailed    Kind = "tool.call_failed"    // Tool

	SubagentSpawned   Kind = "subagent.spawned"   // Subagent
	SubagentProgress  Kind = "subagent.progress"  // Subagent: a model round of a running sub-agent ended (Round, Tools)
	SubagentCompleted Kind = "subagent.completed" // Subagent
	SubagentFailed    Kind = "subagent.failed"    // Subagent
	SubagentCancelled Kind = "subagent.cancelled" // Subagent

	MCPServerConnected    Kind = "mcp.server_connected"    // MCP
	MCPServerDisconnected Kind = "mcp.server_disconnected" // MCP
	MCPServerRestarted    Kind = "mcp.server_restarted"    // MCP: connected again after a disconnect
	MCPToolCalled         Kind = "mcp.tool_called"         // MCP: an authorised call was sent to the server (Tool)
	MCPToolCompleted      Kind = "mcp.tool_completed"      // MCP: the server answered it (Error when it failed)

	CapsuleLoaded   Kind = "capsule.loaded"   // Capsule
	CapsuleFailed   Kind = "capsule.failed"   // Capsule
	CapsuleUnloaded Kind = "capsule.unloaded" // Capsule
	CapsuleCronRan  Kind = "capsule.cron_ran" // Capsule: a cron job ran (Job; Error when it failed or was refused)

	ApprovalRequested Kind = "approval.requested" // Approval
	ApprovalGranted   Kind = "approval.granted"   // Approval
	ApprovalDenied    Kind = "approval.denied"    // Approval
	ApprovalDeferred  Kind = "approval.deferred"  // Approval: nobody answered in time
	ApprovalResolved  Kind = "approval.resolved"  // Approval: any answer, after granted/denied

	BudgetWarning  Kind = "budget.warning"  // Budget
	BudgetReserved Kind = "budget.reserved" // Budget: AmountUSD held for an action
	BudgetExceeded Kind = "budget.exceeded" // Budget: an action refused by a limit (Key)

	CapabilityChecked   Kind = "security.capability_checked"   // Security: a token authorised an action
	CapabilityGranted   Kind = "security.capability_granted"   // Security: "Allow Always" issued a token
	CapabilityRevoked   Kind = "security.capability_revoked"   // Security: a token revoked (TokenID), one event per token
	AuthorizationDenied Kind = "security.authorization_denied" // Security: any denial (Step, Rule)
	SecurityViolation   Kind = "security.violation"            // Security: a policy denial (hard boundary)

	AuditEntryCreated Kind = "audit.entry_created" // Audit

	HookBlocked Kind = "hook.blocked" // Hook: a hook refused an action

	ConfigReloaded Kind = "config.reloaded" // Config: a new configuration is in force

	HealthCheckCompleted Kind = "health.check_completed" // Health: one check of a component (an MCP server's ping)

	// StreamEvent carries what the daemon streams to frontends
	// (astrid.subscribeEvents), already in the wire format.
	StreamEvent Kind = "stream.event" // api.Event

	Error Kind = "error" // ErrorData
)

// Event is one published event. Data is the payload type its Kind names.
type Event struct {
	Seq     uint64    `json:"seq"`
	Kind    Kind      `json:"kind"`
	Time    time.Time `json:"time"`
	Session string    `json:"session,omitempty"`
	Data    any       `json:"data,omitempty"`
	// Missed is how many events this subscriber lost (its buffer was
	// full) just before this one.
	Missed uint64 `json:"missed,omitempty"`
}

// Daemon is the data of daemon.* events.
type Daemon struct {
	Reason string `json:"reason,omitempty"`
}

// Session is the data of session.* events.
type Session struct {
	Workspace string `json:"workspace,omitempty"`
	Principal string `json:"principal,omitempty"`
	Frontend  string `json:"frontend,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Message is the data of message.* events.
type Message struct {
	Turn       string `json:"turn"`
	Chars      int    `json:"chars,omitempty"`
	StopReason string `json:"stop_reason,omitempty"`
}

// LLM is the data of llm.* events.
type LLM struct {
	Turn         string        `json:"turn"`
	Model        string        `json:"model"`
	InputTokens  int64         `json:"input_tokens,omitempty"`
	OutputTokens int64         `json:"output_tokens,omitempty"`
	CostUSD      float64       `json:"cost_usd,omitempty"`
	StopReason   string        `json:"stop_reason,omitempty"`
	Error        string        `json:"error,omitempty"`
	Duration     time.Duration `json:"duration_ns,omitempty"`
}

// Tool is the data of tool.* events.
type Tool struct {
	Turn   string `json:"turn"`
	Call   string `json:"call"`
	Tool   string `json:"tool"`
	Status string `json:"status,omitempty"` // ok, error, denied, cancelled
	Error  string `json:"error,omitempty"`
}

// Subagent is the data of subagent.* events.
type Subagent struct {
	Parent      string `json:"parent"`
	Description string `json:"description"`
	Depth       int    `json:"depth"`
	// Round and Tools are set on progress: the model rounds done so far
	// and the tool calls of the last one.
	Round      int    `json:"round,omitempty"`
	Tools      int    `json:"tools,omitempty"`
	StopReason string `json:"stop_reason,omitempty"`
	Error      string `json:"error,omitempty"`
}

// MCP is the data of mcp.* events.
type MCP struct {
	Server string `json:"server"`
	State  string `json:"state,omitempty"`
	// Tool is the server's name for the tool of mcp.tool_* events.
	Tool  string `json:"tool,omitempty"`
	Error string `json:"error,omitempty"`
}

// Capsule is the data of capsule.* events.
type Capsule struct {
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
	Job     string `json:"job,omitempty"` // capsule.cron_ran
	Error   string `json:"error,omitempty"`
}

// Approval is the data of approval.* events.
type Approval struct {
	Request  string `json:"request"`
	Kind     string `json:"kind,omitempty"`
	Resource string `json:"resource,omitempty"`
	Decision string `json:"decision,omitempty"`
	By       string `json:"by,omitempty"`
	Deferred string `json:"deferred,omitempty"`
}

// Budget is the data of budget.* events.
type Budget struct {
	Account   string  `json:"account"`
	Key       string  `json:"key"`
	UsedUSD   float64 `json:"used_usd,omitempty"`
	LimitUSD  float64 `json:"limit_usd,omitempty"`
	AmountUSD float64 `json:"amount_usd,omitempty"`
}

// Security is the data of security.* events.
type Security struct {
	Kind     string `json:"kind"`
	Resource string `json:"resource"`
	Step     string `json:"step,omitempty"`
	Rule     string `json:"rule,omitempty"`
	TokenID  string `json:"token_id,omitempty"`
}

// Audit is the data of audit.* events.
type Audit struct {
	Seq int64 `json:"seq"`
}

// Hook is the data of hook.* events.
type Hook struct {
	Event  string `json:"event"`
	Hook   string `json:"hook,omitempty"`
	Reason string `json:"reason"`
}

// Config is the data of config.reloaded.
type Config struct {
	// Changed lists what changed and took effect ("mode", "policy",
	// "budget", "servers", "hooks", ...).
	Changed []string `json:"changed,omitempty"`
	// Servers says what happened to each MCP server that changed:
	// "added", "removed", "changed".
	Servers map[string]string `json:"servers,omitempty"`
	// Restart lists the changed sections that take effect only after a
	// restart of the daemon.
	Restart []string `json:"restart,omitempty"`
}

// Health is the data of health.* events.
type Health struct {
	// Component is what was checked, e.g. "mcp:<server>".
	Component string        `json:"component"`
	OK        bool          `json:"ok"`
	Error     string        `json:"error,omitempty"`
	Duration  time.Duration `json:"duration_ns,omitempty"`
}

// ErrorData is the data of error events.
type ErrorData struct {
	Message string `json:"message"`
	// Source names what failed when it is not a turn ("config.reload").
	Source string `json:"source,omitempty"`
}

// Bus delivers events to subscribers. The zero value is not usable; call
// New. It is safe for concurrent use.
type Bus struct {
	now func() time.Time
	seq atomic.Uint64

	mu   sync.RWMutex
	subs map[*Subscription]struct{} // guarded by mu
}

// New returns a Bus; now is the clock (nil: time.Now).
func New(now func() time.Time) *Bus {
	if now == nil {
		now = time.Now
	}
	return &Bus{now: now, subs: map[*Subscription]struct{}{}}
}

// Publish stamps and delivers an event to every subscriber whose filter
// accepts it, without blocking, and returns it. A nil Bus drops it.
func (b *Bus) Publish(kind Kind, session string, data any) Event {
	if b == nil {
		return Event{Kind: kind, Session: session, Data: data}
	}
	e := Event{Seq: b.seq.Add(1), Kind: kind, Time: b.now().UTC(), Session: session, Data: data}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		s.deliver(e)
	}
	return e
}

// Subscription receives events on C until Close. C is closed by Close.
type Subscription struct {
	// C delivers the events in publication order (minus the dropped ones).
	C <-chan Event

	b      *Bus
	c      chan Event
	filter func(Event) bool
	mu     sync.Mutex // serialises deliveries so that Missed is exact
	missed uint64     // guarded by mu; dropped since the last delivery
	lagged atomic.Uint64
}

// Subscribe returns a subscription with a buffer of size events (at
// least 1) that receives the events filter accepts (nil: all).
func (b *Bus) Subscribe(size int, filter func(Event) bool) *Subscription {
	if size < 1 {
		size = 1
	}
	c := make(chan Event, size)
	s := &Subscription{C: c, b: b, c: c, filter: filter}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (s *Subscription) deliver(e Event) {
	if s.filter != nil && !s.filter(e) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Missed = s.missed
	select {
	case s.c <- e:
		s.missed = 0
	default:
		s.missed++
		s.lagged.Add(1)
	}
}

// TakeMissed returns the number of events dropped since the last
// delivery and resets it, so that the next event delivered does not
// count them again in Missed. A reader that has drained C uses it to
// learn that it lagged without waiting for another event.
func (s *Subscription) TakeMissed() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.missed
	s.missed = 0
	return n
}

// Lagged is the total number of events this subscription dropped.
func (s *Subscription) Lagged() uint64 { return s.lagged.Load() }

// Close stops deliveries and closes C. It is idempotent.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if _, ok := s.b.subs[s]; ok {
		delete(s.b.subs, s)
		close(s.c)
	}
}
