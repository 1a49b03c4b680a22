package client

import (
	"errors"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/rpc"
)

// The errors a caller of this package branches on, with what to do about
// each. Errors from the daemon arrive as *rpc.Error values that unwrap to
// these sentinels, so test them with errors.Is.
var (
	// ErrNotRunning: no daemon answers on this ASTRID_HOME (no port file,
	// or nothing listens on its port: a stale file from a crash). Call
	// Connect with AutoStart, or tell the user to run `astrid daemon run`.
	ErrNotRunning = errors.New("no Astrid daemon is running")

	// ErrStartFailed: auto-start launched astridd but it did not become
	// ready in time. The message quotes its error output and names the
	// daemon log; show it to the user. Do not retry in a loop.
	ErrStartFailed = errors.New("could not start the Astrid daemon")

	// ErrClosed: the connection ended (the daemon stopped or restarted).
	// Connect again, subscribe again, and re-read state such as
	// listApprovals: events sent while disconnected are lost.
	ErrClosed = rpc.ErrClosed

	// ErrUnauthorized: at connect, the daemon refused the token (it
	// restarted between reading its files and dialing; Dial retries once
	// itself) or the Origin/Host (a browser context); on a method, the
	// caller may not do this. Not retryable: check ASTRID_HOME.
	ErrUnauthorized = api.ErrUnauthorized

	// ErrInvalidParams: the request was malformed (the message names the
	// field). A bug in the caller; do not retry.
	ErrInvalidParams = api.ErrInvalidParams

	// ErrNotFound: no such session, approval, server, capsule or
	// subscription. Refresh the list the id came from.
	ErrNotFound = api.ErrNotFound

	// ErrConflict: the state moved on; for approvals, another frontend
	// answered first. Drop the prompt; the approval_resolved event says
	// what was decided.
	ErrConflict = api.ErrConflict

	// ErrDenied: policy or a human refused. Show the reason; do not retry
	// the same action.
	ErrDenied = api.ErrDenied

	// ErrDeferred: the action waits in the deferred queue for a human
	// (`astrid approvals`). Tell the user; it runs once approved.
	ErrDeferred = api.ErrDeferred

	// ErrBudgetExceeded: the budget is spent. Tell the user; raising the
	// limit is a configuration change.
	ErrBudgetExceeded = api.ErrBudgetExceeded

	// ErrUnavailable: this daemon lacks the subsystem (for example the
	// agent runtime), or it is shutting down. Say so plainly; retrying
	// will not help until the daemon is upgraded or restarted.
	ErrUnavailable = api.ErrUnavailable

	// ErrUpstream: an MCP server or OAuth authorization server the daemon
	// talked to for this call failed or refused; show the message, which
	// names it. Retrying may work once that server is fixed.
	ErrUpstream = api.ErrUpstream

	// ErrTampered: the audit log does not match itself or its signed
	// checkpoints; the message names the entry. Show it and suggest
	// `astrid audit verify`; retrying will not help.
	ErrTampered = api.ErrTampered

	// ErrMethodNotFound: the daemon does not know the method; it is older
	// than this client. Ask the user to restart it (`astrid daemon stop`).
	ErrMethodNotFound = rpc.ErrMethodNotFound

	// ErrInternal: the daemon failed; the detail is in its log
	// ($ASTRID_HOME/logs/daemon.log). Report it; retrying may work.
	ErrInternal = rpc.ErrInternal
)
