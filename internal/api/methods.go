package api

import (
	"encoding/json"
	"errors"
	"time"
)

// Method names. Each one's contract is on its params type.
const (
	MethodCreateSession       = "astrid.createSession"
	MethodResumeSession       = "astrid.resumeSession"
	MethodListSessions        = "astrid.listSessions"
	MethodEndSession          = "astrid.endSession"
	MethodShowSession         = "astrid.showSession"
	MethodDeleteSession       = "astrid.deleteSession"
	MethodCleanupSessions     = "astrid.cleanupSessions"
	MethodSendInput           = "astrid.sendInput"
	MethodCancelTurn          = "astrid.cancelTurn"
	MethodApprovalResponse    = "astrid.approvalResponse"
	MethodElicitationResponse = "astrid.elicitationResponse"
	MethodListApprovals       = "astrid.listApprovals"
	MethodResolveApproval     = "astrid.resolveApproval"
	MethodStatus              = "astrid.status"
	MethodListServers         = "astrid.listServers"
	MethodStartServer         = "astrid.startServer"
	MethodStopServer          = "astrid.stopServer"
	MethodBeginServerLogin    = "astrid.beginServerLogin"
	MethodFinishServerLogin   = "astrid.finishServerLogin"
	MethodServerLogout        = "astrid.serverLogout"
	MethodListTools           = "astrid.listTools"
	MethodSessionBudget       = "astrid.sessionBudget"
	MethodSessionAllowances   = "astrid.sessionAllowances"
	MethodSessionAudit        = "astrid.sessionAudit"
	MethodListAudit           = "astrid.listAudit"
	MethodShowAudit           = "astrid.showAudit"
	MethodAuditStats          = "astrid.auditStats"
	MethodAuditCheckpoint     = "astrid.auditCheckpoint"
	MethodVerifyAudit         = "astrid.verifyAudit"
	MethodListCapsules        = "astrid.listCapsules"
	MethodLoadCapsule         = "astrid.loadCapsule"
	MethodUnloadCapsule       = "astrid.unloadCapsule"
	MethodListHooks           = "astrid.listHooks"
	MethodTestHooks           = "astrid.testHooks"
	MethodTrustHooks          = "astrid.trustHooks"
	MethodListTokens          = "astrid.listTokens"
	MethodShowToken           = "astrid.showToken"
	MethodRevokeToken         = "astrid.revokeToken"
	MethodShutdown            = "astrid.shutdown"
	MethodReloadConfig        = "astrid.reloadConfig"
	MethodSubscribeEvents     = "astrid.subscribeEvents"
	MethodUnsubscribeEvents   = "astrid.unsubscribeEvents"

	// NotifyEvent is the notification the daemon sends to subscribers; its
	// params are one Event.
	NotifyEvent = "astrid.event"
)

// Methods lists every method name, in the order above.
var Methods = []string{
	MethodCreateSession, MethodResumeSession, MethodListSessions, MethodEndSession,
	MethodSendInput, MethodCancelTurn, MethodApprovalResponse, MethodElicitationResponse,
	MethodListApprovals, MethodResolveApproval, MethodStatus, MethodListServers,
	MethodStartServer, MethodStopServer, MethodBeginServerLogin, MethodFinishServerLogin, MethodServerLogout, MethodListTools, MethodSessionBudget,
	MethodSessionAllowances, MethodSessionAudit, MethodListCapsules, MethodLoadCapsule,
	MethodUnloadCapsule, MethodListHooks, MethodTestHooks, MethodTrustHooks,
	MethodListTokens, MethodShowToken, MethodRevokeToken, MethodShutdown, MethodSubscribeEvents, MethodUnsubscribeEvents, MethodReloadConfig,
	MethodListResources, MethodReadResource, MethodListPrompts, MethodGetPrompt,
	MethodShowSession, MethodDeleteSession, MethodCleanupSessions,
	MethodListAudit, MethodShowAudit, MethodAuditStats, MethodAuditCheckpoint, MethodVerifyAudit,
}

// Errors the daemon answers with. Package rpc maps each to a stable
// JSON-RPC code, and the client maps the code back, so errors.Is works the
// same on both sides of the connection. See package client's errors.go for
// what a caller should do about each.
var (
	// ErrInvalidParams: the params are malformed, have unknown fields or
	// miss a required one (-32602).
	ErrInvalidParams = errors.New("invalid params")
	// ErrUnauthorized: the caller may not do this (-32001).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound: the session, approval, server, capsule or subscription
	// does not exist (-32002).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the state changed under the caller; for approvals,
	// someone else answered first (-32003).
	ErrConflict = errors.New("conflict")
	// ErrDenied: the security policy or a human refused the action (-32004).
	ErrDenied = errors.New("denied")
	// ErrDeferred: the action waits for a human in the deferred queue
	// (-32005).
	ErrDeferred = errors.New("deferred")
	// ErrBudgetExceeded: the session or workspace budget is spent (-32006).
	ErrBudgetExceeded = errors.New("budget exceeded")
	// ErrUnavailable: the subsystem behind the method is not running in
	// this daemon, or the daemon is shutting down (-32007).
	ErrUnavailable = errors.New("unavailable")
	// ErrUpstream: a server the daemon talks to on the caller's behalf (an
	// MCP server, an OAuth authorization server) failed, refused or did
	// not answer; the message says which and why (-32008).
	ErrUpstream = errors.New("upstream failed")
	// ErrTampered: the audit log does not match itself or its signed
	// checkpoints where the method looked (an entry disagrees with its
	// index, a proof fails); the message names the entry. Run
	// astrid.verifyAudit for the whole log (-32009).
	ErrTampered = errors.New("audit log tampered")
)

// Validator is implemented by params with constraints beyond their JSON
// shape; the daemon calls Validate after decoding and answers
// ErrInvalidParams with its message.
type Validator interface {
	Validate() error
}

func required(name, v string) error {
	if v == "" {
		return errors.New(name + " is required")
	}
	return nil
}

// Empty is the result of methods that return nothing, and the params of
// methods that take nothing.
type Empty struct{}

// ---- sessions ----

// SessionInfo describes a session.
type SessionInfo struct {
	ID        string    `json:"id"`
	Workspace string    `json:"workspace"`
	Mode      string    `json:"mode"`
	Title     string    `json:"title,omitempty"`
	Model     string    `json:"model,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Active says the session is loaded in the daemon (not only saved).
	Active bool `json:"active"`
	// Busy says a turn is running.
	Busy  bool `json:"busy"`
	Turns int  `json:"turns"`
	// SpentUSD is what the session's model calls and tools have cost.
	SpentUSD float64 `json:"spent_usd"`
}

// CreateSessionParams are the params of astrid.createSession, which opens
// a new session in an absolute workspace directory and returns it. Mode
// (safe, guided, autonomous) can only be as strict as or stricter than the
// workspace configuration allows; empty means the configured mode.
type CreateSessionParams struct {
	Workspace string `json:"workspace"`
	Mode      string `json:"mode,omitempty"`
	Title     string `json:"title,omitempty"`
}

// Validate implements Validator.
func (p CreateSessionParams) Validate() error {
	if len(p.Workspace) == 0 || p.Workspace[0] != '/' {
		return errors.New("workspace must be an absolute path")
	}
	switch p.Mode {
	case "", "safe", "guided", "autonomous":
		return nil
	}
	return errors.New(`mode must be "safe", "guided" or "autonomous"`)
}

// ResumeSessionParams are the params of astrid.resumeSession, which loads a
// saved session (or returns the loaded one) and returns it. ErrNotFound if
// no such session exists.
type ResumeSessionParams struct {
	Session string `json:"session"`
}

// Validate implements Validator.
func (p ResumeSessionParams) Validate() error { return required("session", p.Session) }

// ListSessionsParams are the params of astrid.listSessions, which returns
// the saved and active sessions, newest first, optionally only those of
// one workspace.
type ListSessionsParams struct {
	Workspace string `json:"workspace,omitempty"`
}

// ListSessionsResult is the result of astrid.listSessions.
type ListSessionsResult struct {
	Sessions []SessionInfo `json:"sessions"`
}

// EndSessionParams are the params of astrid.endSession, which cancels the
// running turn if any, saves the session and unloads it. The session stays
// listed and can be resumed. Result: Empty.
type EndSessionParams struct {
	Session string `json:"session"`
}

// Validate implements Validator.
func (p EndSessionParams) Validate() error { return required("session", p.Session) }

// ShowSessionParams are the params of astrid.showSession, which returns a
// saved session as it was last saved: its SessionInfo (Active and Busy say
// whether the daemon holds it now), summary and messages. ErrNotFound if
// no such session is saved.
type ShowSessionParams struct {
	Session string `json:"session"`
}

// Validate implements Validator.
func (p ShowSessionParams) Validate() error { return required("session", p.Session) }

// SessionDetail is the result of astrid.showSession. Messages is the
// conversation in the runtime's message form (role and parts: text,
// tool_call, tool_result), oldest first; earlier messages condensed into
// Summary are no longer in it.
type SessionDetail struct {
	SessionInfo
	Summary  string          `json:"summary,omitempty"`
	Messages json.RawMessage `json:"messages"`
}

// DeleteSessionParams are the params of astrid.deleteSession, which
// deletes a saved session for good. A session the daemon holds loaded but
// idle is dropped from memory first, so that nothing saves it again; a
// busy one (a turn runs) is refused with ErrConflict: cancel or finish the
// turn first. The deletion is audited (kind session_delete, resource
// session://ID). ErrNotFound if no such session exists. Result: Empty.
type DeleteSessionParams struct {
	Session string `json:"session"`
}

// Validate implements Validator.
func (p DeleteSessionParams) Validate() error { return required("session", p.Session) }

// CleanupSessionsParams are the params of astrid.cleanupSessions, which
// deletes the saved sessions last updated before Before, except those the
// daemon holds loaded (idle or busy), which are listed as Kept. Each
// deletion is audited as by deleteSession.
type CleanupSessionsParams struct {
	Before time.Time `json:"before"`
}

// Validate implements Validator.
func (p CleanupSessionsParams) Validate() error {
	if p.Before.IsZero() {
		return errors.New("before is required")
	}
	return nil
}

// CleanupSessionsResult is the result of astrid.cleanupSessions: the ids
// deleted, oldest first, and those old enough but kept because they are
// loaded.
type CleanupSessionsResult struct {
	Deleted []string `json:"deleted"`
	Kept    []string `json:"kept,omitempty"`
}

// ---- turns ----

// SendInputParams are the params of astrid.sendInput, which starts a turn
// with the user's text and returns at once with the turn's id; the output
// streams as events (text_delta, tool_call_start, ..., turn_complete).
// ErrConflict if a turn is already running in the session.
type SendInputParams struct {
	Session string `json:"session"`
	Text    string `json:"text"`
}

// Validate implements Validator.
func (p SendInputParams) Validate() error {
	if err := required("session", p.Session); err != nil {
		return err
	}
	return required("text", p.Text)
}

// SendInputResult is the result of astrid.sendInput.
type SendInputResult struct {
	Turn string `json:"turn"`
}

// CancelTurnParams are the params of astrid.cancelTurn, which cancels the
// running turn of a session (any turn when Turn is empty). Cancelled is
// false when no such turn was running; the turn ends with a turn_complete
// event whose stop reason is "cancelled".
type CancelTurnParams struct {
	Session string `json:"session"`
	Turn    string `json:"turn,omitempty"`
}

// Validate implements Validator.
func (p CancelTurnParams) Validate() error { return required("session", p.Session) }

// CancelTurnResult is the result of astrid.cancelTurn.
type CancelTurnResult struct {
	Cancelled bool `json:"cancelled"`
}

// ---- humans in the loop ----

// The answers to an approval request.
const (
	DecisionAllowOnce      = "allow_once"
	DecisionAllowSession   = "allow_session"
	DecisionAllowWorkspace = "allow_workspace"
	DecisionAllowAlways    = "allow_always"
	DecisionDeny           = "deny"
)

func validDecision(d string) error {
	switch d {
	case DecisionAllowOnce, DecisionAllowSession, DecisionAllowWorkspace, DecisionAllowAlways, DecisionDeny:
		return nil
	}
	return errors.New(`decision must be "allow_once", "allow_session", "allow_workspace", "allow_always" or "deny"`)
}

// ApprovalResponseParams are the params of astrid.approvalResponse, the
// answer to a live approval_needed event. The first valid answer wins;
// later ones get ErrConflict, and ErrNotFound means the request is no
// longer waiting (answered, timed out and deferred, or its turn ended).
// Result: Empty.
type ApprovalResponseParams struct {
	Session  string `json:"session"`
	Request  string `json:"request"`
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
}

// Validate implements Validator.
func (p ApprovalResponseParams) Validate() error {
	if err := required("session", p.Session); err != nil {
		return err
	}
	if err := required("request", p.Request); err != nil {
		return err
	}
	return validDecision(p.Decision)
}

// The answers to an elicitation request (as in MCP).
const (
	ElicitAccept  = "accept"
	ElicitDecline = "decline"
	ElicitCancel  = "cancel"
)

// ElicitationResponseParams are the params of astrid.elicitationResponse,
// the answer to an elicitation_needed event. Content is the filled form
// (accept only) and is checked against the request's schema by the
// backend. First answer wins, like approvals. Result: Empty.
type ElicitationResponseParams struct {
	Session string          `json:"session"`
	Request string          `json:"request"`
	Action  string          `json:"action"`
	Content json.RawMessage `json:"content,omitempty"`
}

// Validate implements Validator.
func (p ElicitationResponseParams) Validate() error {
	if err := required("session", p.Session); err != nil {
		return err
	}
	if err := required("request", p.Request); err != nil {
		return err
	}
	switch p.Action {
	case ElicitAccept, ElicitDecline, ElicitCancel:
		return nil
	}
	return errors.New(`action must be "accept", "decline" or "cancel"`)
}

// ---- deferred approvals ----

// ApprovalRequest is what a human is asked: the action, the exact resource,
// its risk, why it needs approval, and the pattern an allow for the session
// or workspace would cover.
type ApprovalRequest struct {
	ID        string    `json:"id"`
	Session   string    `json:"session"`
	Principal string    `json:"principal,omitempty"`
	Workspace string    `json:"workspace,omitempty"`
	Kind      string    `json:"kind"`
	Resource  string    `json:"resource"`
	Risk      string    `json:"risk"`
	Reason    string    `json:"reason"`
	Pattern   string    `json:"pattern,omitempty"`
	Summary   string    `json:"summary,omitempty"`
	Dynamic   bool      `json:"dynamic,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ApprovalAnswer is a human's recorded answer.
type ApprovalAnswer struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	By       string `json:"by,omitempty"`
	Frontend string `json:"frontend,omitempty"`
}

// DeferredApproval is an action in the deferred queue. Status is pending,
// approved, denied, executing or done.
type DeferredApproval struct {
	ID         string          `json:"id"`
	Status     string          `json:"status"`
	Request    ApprovalRequest `json:"request"`
	Answer     *ApprovalAnswer `json:"answer,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	ResolvedAt *time.Time      `json:"resolved_at,omitempty"`
	Result     string          `json:"result,omitempty"`
	// Outcome is set only in the result of resolveApproval, for an
	// agent's tool call: what the daemon did with it once answered.
	Outcome *DeferredResult `json:"outcome,omitempty"`
}

// ListApprovalsParams are the params of astrid.listApprovals, which lists
// the deferred queue, oldest first: pending ones only unless All, and of
// one session when Session is set.
type ListApprovalsParams struct {
	Session string `json:"session,omitempty"`
	All     bool   `json:"all,omitempty"`
}

// ListApprovalsResult is the result of astrid.listApprovals.
type ListApprovalsResult struct {
	Approvals []DeferredApproval `json:"approvals"`
}

// ResolveApprovalParams are the params of astrid.resolveApproval, which
// answers a deferred action. The answer is audited and every subscriber of
// its session gets approval_resolved. An approved tool call of an agent
// session runs exactly once, before the method returns (or, while a turn
// runs in its session, when that turn ends); its session's subscribers
// get deferred_result and its model is told before its next turn, as it
// is of a denial. Other deferred actions (a capsule's host calls) run when
// their owner claims them. ErrNotFound for an unknown id, ErrConflict when
// it was already answered. Result: the updated DeferredApproval, with
// Outcome for an agent's tool call.
type ResolveApprovalParams struct {
	ID       string `json:"id"`
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
}

// Validate implements Validator.
func (p ResolveApprovalParams) Validate() error {
	if err := required("id", p.ID); err != nil {
		return err
	}
	return validDecision(p.Decision)
}

// ---- inspection ----

// Daemon modes.
const (
	ModePersistent = "persistent"
	ModeEphemeral  = "ephemeral"
)

// Status is the result of astrid.status (params: Empty), which any
// authenticated client may call at any time; the CLI uses it to tell that
// a daemon is ready.
type Status struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	Mode      string    `json:"mode"`
	Home      string    `json:"home"`
	StartedAt time.Time `json:"started_at"`
	// UptimeSecs is seconds since StartedAt.
	UptimeSecs float64 `json:"uptime_secs"`
	// Connections counts open client connections, this one included.
	Connections int `json:"connections"`
	Subscribers int `json:"subscribers"`
	Sessions    int `json:"sessions"`
	Servers     int `json:"servers"`
	Capsules    int `json:"capsules"`
	// PendingApprovals counts the deferred queue's pending entries.
	PendingApprovals int `json:"pending_approvals"`
	// LandlockABI is the kernel's Landlock ABI version; 0 means none, and
	// then every shell command needs approval.
	LandlockABI int `json:"landlock_abi"`
	// Runtime says whether the agent runtime is part of this daemon; when
	// false the session, server and capsule methods answer ErrUnavailable.
	Runtime bool `json:"runtime"`
}

// SessionBudgetParams are the params of astrid.sessionBudget, which
// returns a session's spending against its limits.
type SessionBudgetParams struct {
	Session string `json:"session"`
}

// Validate implements Validator.
func (p SessionBudgetParams) Validate() error { return required("session", p.Session) }

// Budget is the result of astrid.sessionBudget, in US dollars. A zero
// limit means no limit.
type Budget struct {
	Session           string  `json:"session"`
	SpentUSD          float64 `json:"spent_usd"`
	ReservedUSD       float64 `json:"reserved_usd"`
	SessionLimitUSD   float64 `json:"session_limit_usd"`
	WorkspaceSpentUSD float64 `json:"workspace_spent_usd"`
	WorkspaceLimitUSD float64 `json:"workspace_limit_usd"`
	WarnAtPercent     int     `json:"warn_at_percent"`
}

// SessionAllowancesParams are the params of astrid.sessionAllowances,
// which lists the recorded "allow for the session" answers of Session and,
// when Workspace is set, the "allow for the workspace" answers of that
// absolute workspace root.
type SessionAllowancesParams struct {
	Session   string `json:"session"`
	Workspace string `json:"workspace,omitempty"`
}

// Validate implements Validator.
func (p SessionAllowancesParams) Validate() error {
	if err := required("session", p.Session); err != nil {
		return err
	}
	if p.Workspace != "" && p.Workspace[0] != '/' {
		return errors.New("workspace must be an absolute path")
	}
	return nil
}

// Allowance is a recorded allow-for-session or allow-for-workspace answer.
type Allowance struct {
	ID         string    `json:"id"`
	Scope      string    `json:"scope"`
	Binding    string    `json:"binding"`
	Pattern    string    `json:"pattern"`
	Permission string    `json:"permission"`
	CreatedAt  time.Time `json:"created_at"`
	// Approval is the hash of the audit entry of the approval.
	Approval string `json:"approval,omitempty"`
}

// SessionAllowancesResult is the result of astrid.sessionAllowances.
type SessionAllowancesResult struct {
	Allowances []Allowance `json:"allowances"`
}

// MaxAuditLimit bounds SessionAuditParams.Limit.
const MaxAuditLimit = 1000

// SessionAuditParams are the params of astrid.sessionAudit, which returns
// the newest Limit (default 100, at most MaxAuditLimit) audit entries of a
// session at or after Since, oldest first. Entries whose stored index
// disagrees with their content are refused (run `astrid audit verify`).
type SessionAuditParams struct {
	Session string    `json:"session"`
	Since   time.Time `json:"since,omitzero"`
	Limit   int       `json:"limit,omitempty"`
}

// Validate implements Validator.
func (p SessionAuditParams) Validate() error {
	if err := required("session", p.Session); err != nil {
		return err
	}
	if p.Limit < 0 || p.Limit > MaxAuditLimit {
		return errors.New("limit must be between 0 and 1000")
	}
	return nil
}

// AuditEntry is one audit log entry. Hashes are in the tlog text form
// (base64). Prev is the hash of the entry before (zero for the first);
// ArgsHash hashes the action's arguments. A decision entry has Decision and
// the proof fields (Rule, TokenID, AllowanceID, Approval); an outcome entry
// has RefSeq and RefHash (its decision entry), Status and OutputHash. Text
// is the reason of a decision or the message of an outcome.
type AuditEntry struct {
	Seq         int64     `json:"seq"`
	Hash        string    `json:"hash"`
	Time        time.Time `json:"time"`
	Prev        string    `json:"prev"`
	Type        string    `json:"type"`
	Session     string    `json:"session"`
	Principal   string    `json:"principal,omitempty"`
	Frontend    string    `json:"frontend,omitempty"`
	Kind        string    `json:"kind,omitempty"`
	Resource    string    `json:"resource,omitempty"`
	ArgsHash    string    `json:"args_hash,omitempty"`
	Decision    string    `json:"decision,omitempty"`
	Rule        string    `json:"rule,omitempty"`
	TokenID     string    `json:"token_id,omitempty"`
	AllowanceID string    `json:"allowance_id,omitempty"`
	Approval    string    `json:"approval,omitempty"`
	RefSeq      *int64    `json:"ref_seq,omitempty"`
	RefHash     string    `json:"ref_hash,omitempty"`
	Status      string    `json:"status,omitempty"`
	OutputHash  string    `json:"output_hash,omitempty"`
	Text        string    `json:"text,omitempty"`
}

// SessionAuditResult is the result of astrid.sessionAudit.
type SessionAuditResult struct {
	Entries []AuditEntry `json:"entries"`
}

// ListAuditParams are the params of astrid.listAudit, which returns the
// newest Limit (default 100, at most MaxAuditLimit) audit entries matching
// every filter given, oldest first: of Session, at or after Since, decision
// entries whose decision is Decision ("allowed", "denied" or "deferred"),
// with a sequence number below BeforeSeq (when above 0; page backwards by
// passing the first Seq of the previous page). Entries whose stored index
// disagrees with their content are refused with ErrTampered.
type ListAuditParams struct {
	Session   string    `json:"session,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Decision  string    `json:"decision,omitempty"`
	Limit     int       `json:"limit,omitempty"`
	BeforeSeq int64     `json:"before_seq,omitempty"`
}

// Validate implements Validator.
func (p ListAuditParams) Validate() error {
	switch p.Decision {
	case "", "allowed", "denied", "deferred":
	default:
		return errors.New(`decision must be "allowed", "denied" or "deferred"`)
	}
	if p.Limit < 0 || p.Limit > MaxAuditLimit {
		return errors.New("limit must be between 0 and 1000")
	}
	if p.BeforeSeq < 0 {
		return errors.New("before_seq must not be negative")
	}
	return nil
}

// ListAuditResult is the result of astrid.listAudit.
type ListAuditResult struct {
	Entries []AuditEntry `json:"entries"`
}

// ShowAuditParams are the params of astrid.showAudit, which returns one
// entry with its inclusion proof in the latest signed checkpoint.
// ErrNotFound for a sequence number past the end of the log; ErrTampered
// when the entry disagrees with its index, is not covered by a valid
// signed checkpoint, or its proof fails.
type ShowAuditParams struct {
	Seq int64 `json:"seq"`
}

// Validate implements Validator.
func (p ShowAuditParams) Validate() error {
	if p.Seq < 0 {
		return errors.New("seq must not be negative")
	}
	return nil
}

// AuditInclusion proves that an entry is in a signed tree: Proof holds the
// hashes (hex) of the RFC 6962 inclusion proof in the tree of TreeSize
// entries with root hash Root, signed by SignedBy. The daemon checked it.
type AuditInclusion struct {
	Proof    []string `json:"proof"`
	Root     string   `json:"root"`
	SignedBy string   `json:"signed_by"`
	TreeSize int64    `json:"tree_size"`
	Verified bool     `json:"verified"`
}

// ShowAuditResult is the result of astrid.showAudit.
type ShowAuditResult struct {
	Entry     AuditEntry     `json:"entry"`
	Inclusion AuditInclusion `json:"inclusion"`
}

// AuditCount is a count of entries with one value of a column.
type AuditCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// AuditStats are counts over the audit log's index columns, largest
// first.
type AuditStats struct {
	Entries     int64        `json:"entries"`
	Checkpoints int64        `json:"checkpoints"`
	ByType      []AuditCount `json:"by_type"`
	ByDecision  []AuditCount `json:"by_decision"`
	ByKind      []AuditCount `json:"by_kind"`
	BySession   []AuditCount `json:"by_session"`
}

// AuditStatsResult is the result of astrid.auditStats (params: Empty):
// the counts and the latest signed checkpoint's tree (TreeSize 0 and empty
// Root and SignedBy for an empty log). ErrTampered when that checkpoint
// does not verify.
type AuditStatsResult struct {
	Root     string     `json:"root"`
	SignedBy string     `json:"signed_by"`
	Stats    AuditStats `json:"stats"`
	TreeSize int64      `json:"tree_size"`
}

// AuditCheckpoint is the result of astrid.auditCheckpoint (params: Empty):
// the latest signed checkpoint, verified; Note is its signed note as
// stored, to keep elsewhere and pass to verifyAudit later. ErrNotFound for
// an empty log, ErrTampered when the checkpoint does not verify.
type AuditCheckpoint struct {
	Note     string `json:"note"`
	Origin   string `json:"origin"`
	Root     string `json:"root"`
	TreeSize int64  `json:"tree_size"`
}

// VerifyAuditParams are the params of astrid.verifyAudit, which checks the
// whole audit log: every entry hash, the chain links, the Merkle tree
// against every signed checkpoint and every signature; with Checkpoint (a
// note from auditCheckpoint kept earlier, at most 4096 bytes) also that the
// log still extends it. A big log takes seconds; the check stops when the
// call's context ends.
type VerifyAuditParams struct {
	Checkpoint string `json:"checkpoint,omitempty"`
}

// VerifyAuditResult is the result of astrid.verifyAudit. A log found
// altered is a result, not an error: OK is false and Seq names the first
// bad entry (-1 when the problem is the kept checkpoint itself), Reason
// says what is wrong. When OK, Entries and TreeHash are the recomputed
// tree, Checkpoints counts the checkpoints checked, and KeptSize is the
// size of the kept checkpoint the log extends. An error means the log
// could not be checked.
type VerifyAuditResult struct {
	OK          bool   `json:"ok"`
	Seq         int64  `json:"seq,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Entries     int64  `json:"entries,omitempty"`
	TreeHash    string `json:"tree_hash,omitempty"`
	Checkpoints int64  `json:"checkpoints,omitempty"`
	KeptSize    *int64 `json:"kept_checkpoint_size,omitempty"`
}

// ---- MCP servers ----

// ServerInfo describes a configured MCP server. State is stopped,
// starting, running or failed.
type ServerInfo struct {
	Name      string `json:"name"`
	Transport string `json:"transport"`
	State     string `json:"state"`
	Tools     int    `json:"tools"`
	Error     string `json:"error,omitempty"`
	// Workspace is the root of the workspace whose .astrid/config.toml
	// added the server (untrusted: never auto-started, every call asks);
	// empty for servers of the system and user configuration.
	Workspace string `json:"workspace,omitempty"`
}

// ListServersResult is the result of astrid.listServers (params: Empty),
// the configured MCP servers and their state.
type ListServersResult struct {
	Servers []ServerInfo `json:"servers"`
}

// ServerParams are the params of astrid.startServer and astrid.stopServer.
// startServer starts a configured server (returns its ServerInfo once it
// answered initialize, ErrNotFound if not configured); stopServer stops it
// (Empty; stopping a stopped server is not an error).
type ServerParams struct {
	Name string `json:"name"`
	// Workspace names the workspace root whose .astrid/config.toml added
	// the server; empty for configured servers.
	Workspace string `json:"workspace,omitempty"`
}

// Validate implements Validator.
func (p ServerParams) Validate() error { return required("name", p.Name) }

// ServerLogin is the result of astrid.beginServerLogin (params:
// ServerParams), which starts an OAuth authorization of a configured
// streamable-http server in the daemon (ErrNotFound if not configured).
// Show URL, with Domain prominently, to the user; their browser comes back
// to RedirectURL, a loopback listener of the daemon's machine. Then call
// astrid.finishServerLogin with Login. When Done is set instead, the
// server was authorized without the user (the client credentials grant):
// there is nothing to show or finish. astrid.serverLogout (params:
// ServerParams, result Empty) forgets a server's tokens and client
// registration.
type ServerLogin struct {
	Done        bool     `json:"done,omitempty"`
	Login       string   `json:"login"`
	Server      string   `json:"server"`
	URL         string   `json:"url"`
	Domain      string   `json:"domain"`
	Issuer      string   `json:"issuer,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
	RedirectURL string   `json:"redirect_url"`
}

// FinishServerLoginParams are the params of astrid.finishServerLogin,
// which waits until the login's authorization completed (Empty) or failed
// (the error says why; ErrNotFound for an unknown or finished login). A
// login not finished within the daemon's time limit is abandoned.
type FinishServerLoginParams struct {
	Login string `json:"login"`
}

// Validate implements Validator.
func (p FinishServerLoginParams) Validate() error { return required("login", p.Login) }

// ListToolsParams are the params of astrid.listTools, which lists the
// tools a session's model may call (built-in, MCP and capsule tools), or
// every known tool when Session is empty, optionally of one server.
type ListToolsParams struct {
	Session string `json:"session,omitempty"`
	Server  string `json:"server,omitempty"`
}

// ToolInfo describes a tool. Source is "builtin", "mcp:<server>" or
// "capsule:<id>".
type ToolInfo struct {
	Name        string          `json:"name"`
	Source      string          `json:"source"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// ListToolsResult is the result of astrid.listTools.
type ListToolsResult struct {
	Tools []ToolInfo `json:"tools"`
}

// ---- capsules ----

// CapsuleInfo describes a capsule. State is loaded, failed or unloaded.
type CapsuleInfo struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Engine  string `json:"engine,omitempty"`
	State   string `json:"state"`
	Error   string `json:"error,omitempty"`
}

// ListCapsulesResult is the result of astrid.listCapsules (params: Empty).
type ListCapsulesResult struct {
	Capsules []CapsuleInfo `json:"capsules"`
}

// LoadCapsuleParams are the params of astrid.loadCapsule, which loads an
// installed capsule by id, or one from an absolute directory holding a
// Capsule.toml. Result: CapsuleInfo; every subscriber gets capsule_loaded
// or capsule_failed.
type LoadCapsuleParams struct {
	ID   string `json:"id,omitempty"`
	Path string `json:"path,omitempty"`
}

// Validate implements Validator.
func (p LoadCapsuleParams) Validate() error {
	switch {
	case (p.ID == "") == (p.Path == ""):
		return errors.New("exactly one of id and path is required")
	case p.Path != "" && p.Path[0] != '/':
		return errors.New("path must be absolute")
	}
	return nil
}

// UnloadCapsuleParams are the params of astrid.unloadCapsule, which
// unloads a capsule (Empty; subscribers get capsule_unloaded).
type UnloadCapsuleParams struct {
	ID string `json:"id"`
}

// Validate implements Validator.
func (p UnloadCapsuleParams) Validate() error { return required("id", p.ID) }

// ---- events ----

// AllSessions subscribes to the events of every session.
const AllSessions = "*"

// SubscribeEventsParams are the params of astrid.subscribeEvents, which
// starts streaming astrid.event notifications for one session (or every
// session with AllSessions) on this connection. Daemon-wide events
// (capsule_*) reach every subscription. A connection may hold several
// subscriptions; they end with unsubscribeEvents or the connection.
type SubscribeEventsParams struct {
	Session string `json:"session"`
}

// Validate implements Validator.
func (p SubscribeEventsParams) Validate() error { return required("session", p.Session) }

// SubscribeEventsResult is the result of astrid.subscribeEvents.
type SubscribeEventsResult struct {
	Subscription string `json:"subscription"`
}

// UnsubscribeEventsParams are the params of astrid.unsubscribeEvents
// (result Empty; ErrNotFound if this connection holds no such
// subscription). Events already queued may still arrive.
type UnsubscribeEventsParams struct {
	Subscription string `json:"subscription"`
}

// Validate implements Validator.
func (p UnsubscribeEventsParams) Validate() error { return required("subscription", p.Subscription) }

// ---- lifecycle ----

// ShutdownParams are the params of astrid.shutdown, which makes the daemon
// stop gracefully after replying: it stops accepting connections, lets the
// runtime cancel its turns and save its sessions, closes the audit log and
// removes its port, pid and token files. Result: Empty.
type ShutdownParams struct{}

// ReloadConfigResult is the result of astrid.reloadConfig (params: Empty;
// SIGHUP does the same), which makes the daemon read its configuration
// files again. They are validated first: if the system or user layer is
// invalid the call fails with ErrInvalidParams naming file:line, and the
// configuration in force stays. Otherwise what can change live takes
// effect: mode, policy, budget limits and approval timeouts (the security
// profiles), MCP servers (added, removed, changed ones started or stopped
// per auto_start), and hooks (discovered again). A workspace layer can
// still only tighten.
type ReloadConfigResult struct {
	// Changed lists the sections that changed and took effect.
	Changed []string `json:"changed"`
	// Servers says what happened to each MCP server that changed:
	// "added", "removed" or "changed".
	Servers map[string]string `json:"servers,omitempty"`
	// Restart lists changed sections (or keys) that take effect only when
	// the daemon restarts.
	Restart []string `json:"restart,omitempty"`
	// Warnings are problems that did not stop the reload: a server that
	// failed to start, a workspace whose own layer is now invalid (its
	// actions are refused until it is fixed).
	Warnings []string `json:"warnings,omitempty"`
}

// HookInfo describes one configured hook (see package hooks for the
// fields' meaning).
type HookInfo struct {
	Name        string   `json:"name"`
	Event       string   `json:"event"`
	Kind        string   `json:"kind"` // "command" or "http"
	Command     []string `json:"command,omitempty"`
	URL         string   `json:"url,omitempty"`
	Tools       []string `json:"tools,omitempty"`
	Servers     []string `json:"servers,omitempty"`
	Glob        []string `json:"glob,omitempty"`
	Regex       string   `json:"regex,omitempty"`
	FailAction  string   `json:"fail_action"`
	Priority    int      `json:"priority"`
	Async       bool     `json:"async,omitempty"`
	TimeoutSecs int64    `json:"timeout_secs"`
	File        string   `json:"file"`
	Line        int      `json:"line"`
	// Workspace marks a hook of the workspace's .astrid/hooks; Trusted is
	// false when it may not run (the workspace is not trusted, or
	// hooks.allow_workspace_hooks is off).
	Workspace bool `json:"workspace,omitempty"`
	Trusted   bool `json:"trusted"`
}

// ListHooksParams are the params of astrid.listHooks: the user's hooks
// and, with Workspace (an absolute directory), that workspace's.
type ListHooksParams struct {
	Workspace string `json:"workspace,omitempty"`
}

// ListHooksResult is the result of astrid.listHooks, in the order the
// hooks run. Error is set when the hooks configuration is invalid (then
// every blocking event is refused).
type ListHooksResult struct {
	Hooks []HookInfo `json:"hooks"`
	Error string     `json:"error,omitempty"`
}

// TestHooksParams are the params of astrid.testHooks, which dry-runs the
// hooks of Event (only Hook, when set) with a sample payload; Tool and
// Arguments replace the sample's for tool events. Nothing is executed but
// the hooks themselves.
type TestHooksParams struct {
	Workspace string          `json:"workspace,omitempty"`
	Event     string          `json:"event"`
	Hook      string          `json:"hook,omitempty"`
	Tool      string          `json:"tool,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// Validate implements Validator.
func (p TestHooksParams) Validate() error { return required("event", p.Event) }

// HookRun is what one hook answered in astrid.testHooks. Error is set when
// it failed; FailAction then says what would happen.
type HookRun struct {
	Hook       string          `json:"hook"`
	Decision   string          `json:"decision,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Arguments  json.RawMessage `json:"arguments,omitempty"`
	Error      string          `json:"error,omitempty"`
	FailAction string          `json:"fail_action"`
	Skipped    string          `json:"skipped,omitempty"`
	Millis     int64           `json:"millis"`
}

// TestHooksResult is the result of astrid.testHooks.
type TestHooksResult struct {
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
	Runs    []HookRun       `json:"runs"`
}

// TrustHooksParams are the params of astrid.trustHooks: trust (or, with
// Revoke, stop trusting) the hooks a workspace has now.
type TrustHooksParams struct {
	Workspace string `json:"workspace"`
	Revoke    bool   `json:"revoke,omitempty"`
}

// Validate implements Validator.
func (p TrustHooksParams) Validate() error { return required("workspace", p.Workspace) }

// TrustHooksResult is the result of astrid.trustHooks: the canonical
// workspace root and the digest of its hooks directory now trusted ("" on
// revoke).
type TrustHooksResult struct {
	Workspace string `json:"workspace"`
	Digest    string `json:"digest,omitempty"`
}

// ---- capability tokens ----

// TokenInfo describes a stored capability token. Status is active,
// pending (not yet valid), expired, used (a single-use token spent) or
// revoked. Approval is the hex hash of the audit entry of the human answer
// that issued it.
type TokenInfo struct {
	ID           string     `json:"id"`
	Parent       string     `json:"parent,omitempty"`
	Principal    string     `json:"principal"`
	Resource     string     `json:"resource"`
	Permissions  []string   `json:"permissions"`
	IssuedAt     time.Time  `json:"issued_at"`
	NotBefore    time.Time  `json:"not_before"`
	ExpiresAt    time.Time  `json:"expires_at"`
	Scope        string     `json:"scope"`
	Binding      string     `json:"binding,omitempty"`
	SingleUse    bool       `json:"single_use"`
	AllowDynamic bool       `json:"allow_dynamic"`
	Issuer       string     `json:"issuer"`
	Approval     string     `json:"approval,omitempty"`
	Status       string     `json:"status"`
	UsedAt       *time.Time `json:"used_at,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
	// Verified and VerifyError are set by showToken only: whether the
	// token verifies now against the trusted keys (the scope binding is
	// checked on use), and why not.
	Verified    *bool  `json:"verified,omitempty"`
	VerifyError string `json:"verify_error,omitempty"`
}

// ListTokensParams are the params of astrid.listTokens, which lists the
// active capability tokens, or every stored one when All.
type ListTokensParams struct {
	All bool `json:"all,omitempty"`
}

// ListTokensResult is the result of astrid.listTokens.
type ListTokensResult struct {
	Tokens []TokenInfo `json:"tokens"`
}

// TokenParams are the params of astrid.showToken, which returns one token
// with Verified set; ErrInvalidParams for an id that is not a token id,
// ErrNotFound for an unknown one.
type TokenParams struct {
	ID string `json:"id"`
}

// Validate implements Validator.
func (p TokenParams) Validate() error { return required("id", p.ID) }

// RevokeTokenParams are the params of astrid.revokeToken, which revokes a
// token and every token attenuated from it, at once for every session. The
// revocation is audited and published on the event bus
// (security.capability_revoked). ErrNotFound for an unknown id.
type RevokeTokenParams struct {
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
}

// Validate implements Validator.
func (p RevokeTokenParams) Validate() error {
	if err := required("id", p.ID); err != nil {
		return err
	}
	if len(p.Reason) > 1024 {
		return errors.New("reason is longer than 1024 bytes")
	}
	return nil
}

// RevokeTokenResult is the result of astrid.revokeToken: the ids newly
// revoked (the token first, then its descendants); empty when the token
// was already revoked.
type RevokeTokenResult struct {
	Revoked []string `json:"revoked"`
}
