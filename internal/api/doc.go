// Package api is the reference of astridd's JSON-RPC API: the method names,
// their parameters and results, the events the daemon streams, and the
// errors it answers with. It imports nothing of Astrid, so that every
// frontend (the CLI, the TUI, bots, the web page) can share it.
//
// # Transport
//
// The daemon speaks JSON-RPC 2.0 over one WebSocket per client, one JSON
// object per text message, on a loopback address written to
// $ASTRID_HOME/daemon.port. The upgrade request must carry
//
//	Authorization: Bearer <contents of $ASTRID_HOME/daemon.token>
//
// or the daemon answers HTTP 401 and never upgrades. A browser Origin other
// than the daemon's own (http://127.0.0.1:PORT) gets HTTP 403. The optional
// header Astrid-Frontend names the frontend ("cli", "tui", "telegram") for
// the audit trail. Package rpc documents the framing, the size limit and the
// error codes; package client is the Go client.
//
// Parameters are decoded strictly: an unknown field is refused with code
// -32602 and a message naming the field. Methods that take no parameters
// accept an absent params member, null or {}.
//
// # Methods
//
// Every method name is in the "astrid." namespace; the constants below give
// the full names. Each params type documents its method's contract.
//
//	sessions      createSession resumeSession listSessions endSession
//	              showSession deleteSession cleanupSessions
//	turns         sendInput cancelTurn
//	humans        approvalResponse elicitationResponse
//	deferred      listApprovals resolveApproval
//	inspection    status sessionBudget sessionAllowances sessionAudit
//	audit log     listAudit showAudit auditStats auditCheckpoint verifyAudit
//	tokens        listTokens showToken revokeToken
//	MCP servers   listServers startServer stopServer listTools
//	              listResources readResource listPrompts getPrompt
//	capsules      listCapsules loadCapsule unloadCapsule
//	hooks         listHooks testHooks trustHooks
//	events        subscribeEvents unsubscribeEvents
//	lifecycle     shutdown reloadConfig
//
// Methods whose subsystem is not part of the running daemon answer with
// ErrUnavailable (code -32007); callers should say so, not retry.
//
// # Events
//
// After subscribeEvents, the daemon sends notifications with method
// "astrid.event" whose params are one Event. Events of one session arrive in
// order with increasing Seq. Each subscriber has a bounded buffer; a
// subscriber that falls behind loses events and is then sent one event of
// type "lagged" (payload Lagged) saying how many it missed, so it can
// re-read state (listApprovals, sessionBudget) instead of trusting a stream
// with holes. A slow subscriber never delays the others.
//
// Approvals: every subscriber of a session gets approval_needed; the first
// valid approvalResponse wins, later ones get ErrConflict, and every
// subscriber then gets approval_resolved so it can drop its prompt. An
// action nobody answered in time is deferred; when a human later answers
// an agent's deferred tool call (resolveApproval), its session's
// subscribers get deferred_result (payload DeferredResult) once it ran, was
// refused, or was denied.
package api
