package rpc

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/astrid-runtime/astrid/internal/api"
)

// The error codes. The first five are JSON-RPC 2.0's (section 5.1 of the
// specification); the others are Astrid's, in the range the specification
// reserves for implementations (-32000 to -32099). They are stable: clients
// branch on them.
//
//	code    name               Go error                   meaning
//	-32700  parse error        ErrParse                   the frame is not JSON
//	-32600  invalid request    ErrInvalidRequest          not a JSON-RPC 2.0 request: wrong "jsonrpc",
//	                                                      bad id, batch, binary frame, frame over the limit
//	-32601  method not found   ErrMethodNotFound          no such method
//	-32602  invalid params     api.ErrInvalidParams       params malformed, unknown field (named), missing field
//	-32603  internal error     anything else              the daemon failed; details are in its log only
//	-32001  unauthorized       api.ErrUnauthorized        the caller may not do this
//	-32002  not found          api.ErrNotFound            no such session, approval, server, capsule, subscription
//	-32003  conflict           api.ErrConflict            already answered / already running / state changed
//	-32004  denied             api.ErrDenied              policy or a human refused
//	-32005  deferred           api.ErrDeferred            waiting in the deferred approval queue
//	-32006  budget exceeded    api.ErrBudgetExceeded      the budget is spent
//	-32007  unavailable        api.ErrUnavailable         subsystem not running here, or shutting down
//	-32008  upstream failed    api.ErrUpstream            an MCP or authorization server failed or refused
//	-32009  audit tampered     api.ErrTampered            the audit log does not match itself or its checkpoints
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603

	CodeUnauthorized   = -32001
	CodeNotFound       = -32002
	CodeConflict       = -32003
	CodeDenied         = -32004
	CodeDeferred       = -32005
	CodeBudgetExceeded = -32006
	CodeUnavailable    = -32007
	CodeUpstream       = -32008
	CodeTampered       = -32009
)

// Protocol-level errors; the API's own are in package api.
var (
	ErrParse          = errors.New("parse error")
	ErrInvalidRequest = errors.New("invalid request")
	ErrMethodNotFound = errors.New("method not found")
	// ErrInternal is what a caller sees of a daemon failure.
	ErrInternal = errors.New("internal error")
)

// codes is the one table between Go errors and codes, in the order
// ErrorFrom tries them.
var codes = []struct {
	err  error
	code int
}{
	{ErrParse, CodeParseError},
	{ErrInvalidRequest, CodeInvalidRequest},
	{ErrMethodNotFound, CodeMethodNotFound},
	{api.ErrInvalidParams, CodeInvalidParams},
	{api.ErrUnauthorized, CodeUnauthorized},
	{api.ErrNotFound, CodeNotFound},
	{api.ErrConflict, CodeConflict},
	{api.ErrDenied, CodeDenied},
	{api.ErrDeferred, CodeDeferred},
	{api.ErrBudgetExceeded, CodeBudgetExceeded},
	{api.ErrUnavailable, CodeUnavailable},
	{api.ErrUpstream, CodeUpstream},
	{api.ErrTampered, CodeTampered},
	{ErrInternal, CodeInternal},
}

// Error is a JSON-RPC error object. It unwraps to the sentinel of its code,
// so errors.Is(err, api.ErrNotFound) holds for an error received from the
// daemon as for the one the daemon returned.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (code %d)", e.Message, e.Code)
}

// Unwrap returns the sentinel error of e's code, or nil for a code outside
// the table.
func (e *Error) Unwrap() error {
	for _, c := range codes {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}

// ErrorFrom maps a handler's error to the error object sent to the client.
// An *Error passes through; an error wrapping a sentinel of the table gets
// its code and err's text as message (so wrap user-facing text only). Any
// other error is internal: the client sees only "internal error", and
// internal reports true so the caller logs the detail. An error that wraps
// ErrInternal itself is internal too, but its text is meant for the user
// and is sent.
func ErrorFrom(err error) (e *Error, internal bool) {
	if errors.As(err, &e) {
		return e, false
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return &Error{Code: c.code, Message: err.Error()}, c.err == ErrInternal
		}
	}
	return &Error{Code: CodeInternal, Message: ErrInternal.Error()}, true
}
