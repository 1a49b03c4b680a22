package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/events"
)

// Caller is who makes a call: one authenticated connection.
type Caller struct {
	// Conn numbers the connection within this daemon process.
	Conn uint64
	// Frontend is what the client declared in the Astrid-Frontend header
	// ("cli", "tui", "telegram", ...); informative only.
	Frontend string
	// User is the verified user: whoever could read the 0600 token file,
	// that is the local user ("local:<name>").
	User string
}

// Backend is the agent runtime as the daemon serves it: sessions and
// turns, the relay of approvals and elicitations, MCP servers and
// capsules. The daemon decodes and validates params (api.Validator) before
// calling, so a Backend sees only well-formed params; it maps its errors
// onto the api sentinels (api.ErrNotFound, api.ErrConflict, ...) with %w,
// and any other error reaches the client as "internal error".
//
// Every method is called concurrently from many connections and must be
// safe for that. Methods must return promptly: sendInput starts a turn and
// returns, the turn's output goes to Events. A method that needs a
// subsystem the backend lacks returns an error wrapping api.ErrUnavailable.
//
// Approvals: the daemon publishes approval_needed, approval_resolved and
// budget_warning itself, from the interceptor's notices (core.Options.
// Notify); the backend must not publish them again. Its job is to make the
// session's approval.Asker wait for ApprovalResponse: the first valid
// answer for a request id is returned by Ask, later ones get api.ErrConflict
// and answers for ids nobody waits on get api.ErrNotFound.
type Backend interface {
	CreateSession(ctx context.Context, c Caller, p api.CreateSessionParams) (api.SessionInfo, error)
	ResumeSession(ctx context.Context, c Caller, p api.ResumeSessionParams) (api.SessionInfo, error)
	ListSessions(ctx context.Context, c Caller, p api.ListSessionsParams) (api.ListSessionsResult, error)
	EndSession(ctx context.Context, c Caller, p api.EndSessionParams) (api.Empty, error)
	SendInput(ctx context.Context, c Caller, p api.SendInputParams) (api.SendInputResult, error)
	CancelTurn(ctx context.Context, c Caller, p api.CancelTurnParams) (api.CancelTurnResult, error)
	ApprovalResponse(ctx context.Context, c Caller, p api.ApprovalResponseParams) (api.Empty, error)
	ElicitationResponse(ctx context.Context, c Caller, p api.ElicitationResponseParams) (api.Empty, error)
	SessionBudget(ctx context.Context, c Caller, p api.SessionBudgetParams) (api.Budget, error)
	// ShowSession, DeleteSession and CleanupSessions serve the saved
	// sessions a backend may hold loaded (see api.DeleteSessionParams):
	// a loaded session is shown as it is in memory, and one deleted must
	// never be saved again. The daemon calls them only when Stats says
	// Runtime, and audits the deletions itself.
	ShowSession(ctx context.Context, c Caller, p api.ShowSessionParams) (api.SessionDetail, error)
	DeleteSession(ctx context.Context, c Caller, p api.DeleteSessionParams) (api.Empty, error)
	CleanupSessions(ctx context.Context, c Caller, p api.CleanupSessionsParams) (api.CleanupSessionsResult, error)

	ListServers(ctx context.Context, c Caller, p api.Empty) (api.ListServersResult, error)
	StartServer(ctx context.Context, c Caller, p api.ServerParams) (api.ServerInfo, error)
	StopServer(ctx context.Context, c Caller, p api.ServerParams) (api.Empty, error)
	BeginServerLogin(ctx context.Context, c Caller, p api.ServerParams) (api.ServerLogin, error)
	FinishServerLogin(ctx context.Context, c Caller, p api.FinishServerLoginParams) (api.Empty, error)
	ServerLogout(ctx context.Context, c Caller, p api.ServerParams) (api.Empty, error)
	ListTools(ctx context.Context, c Caller, p api.ListToolsParams) (api.ListToolsResult, error)

	ListCapsules(ctx context.Context, c Caller, p api.Empty) (api.ListCapsulesResult, error)
	LoadCapsule(ctx context.Context, c Caller, p api.LoadCapsuleParams) (api.CapsuleInfo, error)
	UnloadCapsule(ctx context.Context, c Caller, p api.UnloadCapsuleParams) (api.Empty, error)

	ListHooks(ctx context.Context, c Caller, p api.ListHooksParams) (api.ListHooksResult, error)
	TestHooks(ctx context.Context, c Caller, p api.TestHooksParams) (api.TestHooksResult, error)
	TrustHooks(ctx context.Context, c Caller, p api.TrustHooksParams) (api.TrustHooksResult, error)

	// Stats reports counts for astrid.status and the idle shutdown of an
	// ephemeral daemon. It must not block.
	Stats() BackendStats
	// Shutdown is called once, after the daemon stopped taking calls and
	// before it closes the Core: cancel or finish the running turns, save
	// the sessions, stop MCP servers and capsules, within ctx's deadline.
	Shutdown(ctx context.Context) error
}

// DeferredRunner is implemented by a Backend that runs its own deferred
// actions (an agent's tool calls) once a human answers them:
// resolveApproval calls DeferredResolved after the answer to d is
// recorded. An approved action it owns runs before it returns, exactly
// once (security.Interceptor.RunDeferred claims it), or is queued for its
// session; a denial is told to the session. It returns what it did, or
// nil for an action that is not its own (a capsule's host call, which its
// capsule resumes). Unlike other methods it may take as long as the
// action runs.
type DeferredRunner interface {
	DeferredResolved(ctx context.Context, d approval.Deferred) (*api.DeferredResult, error)
}

// BackendStats are a backend's counts.
type BackendStats struct {
	// Runtime is false for a backend without an agent runtime
	// (Unavailable).
	Runtime  bool
	Sessions int
	Servers  int
	Capsules int
	// BusyTurns counts running turns; an ephemeral daemon does not shut
	// down while it is above zero.
	BusyTurns int
}

// Publisher is where a backend sends events; the daemon numbers them and
// fans them out to subscribers without blocking.
type Publisher interface {
	Publish(e api.Event) api.Event
}

// BackendDeps is what the daemon hands a backend at start.
type BackendDeps struct {
	// Core is the daemon's one Core; the backend must not close it.
	Core   *core.Core
	Config *config.Config
	Events Publisher
	// Bus is the daemon's typed event bus (package events); nil lets the
	// backend make its own.
	Bus    *events.Bus
	Logger *slog.Logger
}

// NewBackendFunc builds the backend once the Core is open.
type NewBackendFunc func(ctx context.Context, deps BackendDeps) (Backend, error)

// Unavailable is the Backend of a daemon without an agent runtime: every
// method answers api.ErrUnavailable with Reason. (The daemon serves the
// saved-session methods from the store itself when Stats says no Runtime.)
type Unavailable struct {
	Reason string
}

func (u Unavailable) err(what string) error {
	return fmt.Errorf("%w: %s: %s", api.ErrUnavailable, what, u.Reason)
}

// CreateSession implements Backend.
func (u Unavailable) CreateSession(context.Context, Caller, api.CreateSessionParams) (api.SessionInfo, error) {
	return api.SessionInfo{}, u.err("sessions")
}

// ResumeSession implements Backend.
func (u Unavailable) ResumeSession(context.Context, Caller, api.ResumeSessionParams) (api.SessionInfo, error) {
	return api.SessionInfo{}, u.err("sessions")
}

// ListSessions implements Backend.
func (u Unavailable) ListSessions(context.Context, Caller, api.ListSessionsParams) (api.ListSessionsResult, error) {
	return api.ListSessionsResult{}, u.err("sessions")
}

// EndSession implements Backend.
func (u Unavailable) EndSession(context.Context, Caller, api.EndSessionParams) (api.Empty, error) {
	return api.Empty{}, u.err("sessions")
}

// SendInput implements Backend.
func (u Unavailable) SendInput(context.Context, Caller, api.SendInputParams) (api.SendInputResult, error) {
	return api.SendInputResult{}, u.err("turns")
}

// CancelTurn implements Backend.
func (u Unavailable) CancelTurn(context.Context, Caller, api.CancelTurnParams) (api.CancelTurnResult, error) {
	return api.CancelTurnResult{}, u.err("turns")
}

// ApprovalResponse implements Backend.
func (u Unavailable) ApprovalResponse(context.Context, Caller, api.ApprovalResponseParams) (api.Empty, error) {
	return api.Empty{}, u.err("live approvals")
}

// ElicitationResponse implements Backend.
func (u Unavailable) ElicitationResponse(context.Context, Caller, api.ElicitationResponseParams) (api.Empty, error) {
	return api.Empty{}, u.err("elicitations")
}

// SessionBudget implements Backend.
func (u Unavailable) SessionBudget(context.Context, Caller, api.SessionBudgetParams) (api.Budget, error) {
	return api.Budget{}, u.err("session budgets")
}

// ShowSession implements Backend.
func (u Unavailable) ShowSession(context.Context, Caller, api.ShowSessionParams) (api.SessionDetail, error) {
	return api.SessionDetail{}, u.err("sessions")
}

// DeleteSession implements Backend.
func (u Unavailable) DeleteSession(context.Context, Caller, api.DeleteSessionParams) (api.Empty, error) {
	return api.Empty{}, u.err("sessions")
}

// CleanupSessions implements Backend.
func (u Unavailable) CleanupSessions(context.Context, Caller, api.CleanupSessionsParams) (api.CleanupSessionsResult, error) {
	return api.CleanupSessionsResult{}, u.err("sessions")
}

// ListServers implements Backend.
func (u Unavailable) ListServers(context.Context, Caller, api.Empty) (api.ListServersResult, error) {
	return api.ListServersResult{}, u.err("MCP servers")
}

// StartServer implements Backend.
func (u Unavailable) StartServer(context.Context, Caller, api.ServerParams) (api.ServerInfo, error) {
	return api.ServerInfo{}, u.err("MCP servers")
}

// BeginServerLogin implements Backend.
func (u Unavailable) BeginServerLogin(context.Context, Caller, api.ServerParams) (api.ServerLogin, error) {
	return api.ServerLogin{}, u.err("MCP servers")
}

// FinishServerLogin implements Backend.
func (u Unavailable) FinishServerLogin(context.Context, Caller, api.FinishServerLoginParams) (api.Empty, error) {
	return api.Empty{}, u.err("MCP servers")
}

// ServerLogout implements Backend.
func (u Unavailable) ServerLogout(context.Context, Caller, api.ServerParams) (api.Empty, error) {
	return api.Empty{}, u.err("MCP servers")
}

// StopServer implements Backend.
func (u Unavailable) StopServer(context.Context, Caller, api.ServerParams) (api.Empty, error) {
	return api.Empty{}, u.err("MCP servers")
}

// ListTools implements Backend.
func (u Unavailable) ListTools(context.Context, Caller, api.ListToolsParams) (api.ListToolsResult, error) {
	return api.ListToolsResult{}, u.err("tools")
}

// ListCapsules implements Backend.
func (u Unavailable) ListCapsules(context.Context, Caller, api.Empty) (api.ListCapsulesResult, error) {
	return api.ListCapsulesResult{}, u.err("capsules")
}

// LoadCapsule implements Backend.
func (u Unavailable) LoadCapsule(context.Context, Caller, api.LoadCapsuleParams) (api.CapsuleInfo, error) {
	return api.CapsuleInfo{}, u.err("capsules")
}

// UnloadCapsule implements Backend.
func (u Unavailable) UnloadCapsule(context.Context, Caller, api.UnloadCapsuleParams) (api.Empty, error) {
	return api.Empty{}, u.err("capsules")
}

// ListHooks implements Backend.
func (u Unavailable) ListHooks(context.Context, Caller, api.ListHooksParams) (api.ListHooksResult, error) {
	return api.ListHooksResult{}, u.err("hooks")
}

// TestHooks implements Backend.
func (u Unavailable) TestHooks(context.Context, Caller, api.TestHooksParams) (api.TestHooksResult, error) {
	return api.TestHooksResult{}, u.err("hooks")
}

// TrustHooks implements Backend.
func (u Unavailable) TrustHooks(context.Context, Caller, api.TrustHooksParams) (api.TrustHooksResult, error) {
	return api.TrustHooksResult{}, u.err("hooks")
}

// Stats implements Backend.
func (Unavailable) Stats() BackendStats { return BackendStats{} }

// Shutdown implements Backend.
func (Unavailable) Shutdown(context.Context) error { return nil }
