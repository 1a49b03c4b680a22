package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// ErrorKind classifies a failed model call. Callers branch on it:
//
//   - KindAuth: the API key is missing, wrong or lacks access; tell the
//     user to fix the configuration. Not retried.
//   - KindRateLimit, KindOverloaded, KindServer, KindNetwork: transient;
//     already retried as configured. Retryable says whether trying again
//     later makes sense.
//   - KindBadRequest: the request was refused as malformed or too large
//     (often: the context is too long). Not retried.
//   - KindNotFound: unknown model or wrong base URL. Not retried.
//   - KindProtocol: the server's stream broke the wire format (malformed
//     SSE, a stream cut mid-way, invalid tool JSON). Not retried once
//     events were delivered.
//   - KindCanceled: ctx was cancelled or its deadline passed.
type ErrorKind string

// The kinds of errors.
const (
	KindAuth       ErrorKind = "auth"
	KindRateLimit  ErrorKind = "rate_limit"
	KindOverloaded ErrorKind = "overloaded"
	KindBadRequest ErrorKind = "bad_request"
	KindNotFound   ErrorKind = "not_found"
	KindServer     ErrorKind = "server"
	KindNetwork    ErrorKind = "network"
	KindProtocol   ErrorKind = "protocol"
	KindCanceled   ErrorKind = "canceled"
)

// Error is every error a Provider's stream returns.
type Error struct {
	// Provider names the provider ("anthropic", "openai", "zai", "replay").
	Provider string
	// Status is the HTTP status code, or 0 when there was no HTTP response
	// (network, protocol, cancellation) or the error arrived inside a 200
	// stream.
	Status int
	Kind   ErrorKind
	// Message is the cause, taken from the provider's error body when there
	// is one. It never contains the API key.
	Message string
	// Retryable is true when the same request may succeed later.
	Retryable bool
	// RetryAfter is the wait the server asked for, if it named one.
	RetryAfter time.Duration
	// Err is the underlying Go error, if any (context.Canceled for a
	// cancellation, a *net.OpError for a reset connection).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	b.WriteString(string(e.Kind))
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the underlying error, so errors.Is(err, context.Canceled)
// works on a cancelled stream.
func (e *Error) Unwrap() error { return e.Err }

// ErrNoAPIKey is wrapped by the error of a provider constructor when the
// provider needs an API key and none is configured. A first-run setup
// branches on it to offer a local model instead (see DetectOllama).
var ErrNoAPIKey = errors.New("no API key configured")

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// maxMessage bounds the Message of an Error taken from a response body.
const maxMessage = 1 << 10

// ErrorFromResponse builds the *Error for an HTTP error response. body is
// the start of the response body; the provider's error message is taken
// from it when it has one of the usual JSON shapes:
//
//	{"type":"error","error":{"type":"overloaded_error","message":"…"}}   Anthropic
//	{"error":{"message":"…","type":"…","code":"…"}}                      OpenAI
//	{"error":"…"}                                                         Ollama
//	{"message":"…"}                                                       others
//
// and is otherwise the body's text, shortened.
func ErrorFromResponse(provider string, status int, header http.Header, body []byte, now time.Time) *Error {
	e := &Error{Provider: provider, Status: status}
	typ, msg := parseErrorBody(body)
	if msg == "" {
		msg = http.StatusText(status)
	}
	e.Message = msg
	e.Kind, e.Retryable = classifyStatus(status, typ)
	if d, ok := ParseRetryAfter(header, now); ok {
		e.RetryAfter = d
	}
	return e
}

// StreamError builds the *Error for an error event inside a 200 stream
// (Anthropic's "event: error", an OpenAI chunk with an "error" member).
func StreamError(provider string, data []byte) *Error {
	typ, msg := parseErrorBody(data)
	if msg == "" {
		msg = "error event in stream"
	}
	kind, retry := classifyStatus(0, typ)
	if typ == "" {
		kind, retry = KindServer, true
	}
	return &Error{Provider: provider, Kind: kind, Message: msg, Retryable: retry}
}

// classifyStatus maps an HTTP status and a provider error type to a kind.
func classifyStatus(status int, typ string) (ErrorKind, bool) {
	switch typ {
	case "overloaded_error":
		return KindOverloaded, true
	case "rate_limit_error", "rate_limit_exceeded":
		return KindRateLimit, true
	case "authentication_error", "permission_error", "invalid_api_key":
		return KindAuth, false
	case "not_found_error", "model_not_found":
		return KindNotFound, false
	case "api_error":
		if status == 0 {
			return KindServer, true
		}
	case "invalid_request_error", "request_too_large":
		if status == 0 {
			return KindBadRequest, false
		}
	}
	switch {
	case status == 529:
		return KindOverloaded, true
	case status == http.StatusTooManyRequests:
		return KindRateLimit, true
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return KindAuth, false
	case status == http.StatusNotFound:
		return KindNotFound, false
	case status == http.StatusRequestTimeout || status == http.StatusConflict:
		return KindServer, true
	case status == http.StatusServiceUnavailable:
		return KindOverloaded, true
	case status >= 500:
		return KindServer, true
	case status >= 400:
		return KindBadRequest, false
	case status == 0:
		return KindServer, true
	}
	return KindProtocol, false
}

// parseErrorBody extracts an error type and message from the usual shapes.
func parseErrorBody(body []byte) (typ, msg string) {
	var v struct {
		Type    string          `json:"type"`
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil {
		msg = v.Message
		if v.Type != "error" {
			typ = v.Type
		}
		if len(v.Error) > 0 {
			var s string
			var inner struct {
				Type    string `json:"type"`
				Message string `json:"message"`
				Code    any    `json:"code"`
			}
			switch {
			case json.Unmarshal(v.Error, &s) == nil:
				msg = s
			case json.Unmarshal(v.Error, &inner) == nil:
				if inner.Message != "" {
					msg = inner.Message
				}
				typ = inner.Type
				if c, ok := inner.Code.(string); ok && (c == "model_not_found" || c == "invalid_api_key" || c == "rate_limit_exceeded") {
					typ = c
				}
			}
		}
		return typ, shorten(msg)
	}
	return "", shorten(strings.TrimSpace(string(body)))
}

// shorten bounds a message taken from the network and keeps it one line of
// valid UTF-8.
func shorten(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// ErrorFromGo maps a Go error from a transport or a stream decoder to an
// *Error. An *Error passes through unchanged; a cancelled ctx (checked
// first, since a closed body often surfaces as some other error) becomes
// KindCanceled; connection resets, refusals, timeouts and a body cut short
// become KindNetwork and retryable; anything else is KindProtocol.
func ErrorFromGo(ctx context.Context, provider string, err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	if cerr := ctx.Err(); cerr != nil {
		return &Error{Provider: provider, Kind: KindCanceled, Message: cerr.Error(), Err: cerr}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Provider: provider, Kind: KindCanceled, Message: err.Error(), Err: err}
	}
	if se, ok := errors.AsType[*StallError](err); ok {
		return &Error{Provider: provider, Kind: KindNetwork, Message: se.Error(), Retryable: true, Err: err}
	}
	if isNetworkError(err) {
		return &Error{Provider: provider, Kind: KindNetwork, Message: err.Error(), Retryable: true, Err: err}
	}
	return &Error{Provider: provider, Kind: KindProtocol, Message: err.Error(), Err: err}
}

func isNetworkError(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	// The HTTP/2 and HTTP/1 transports report some resets only as text.
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "stream error") ||
		strings.Contains(msg, "server closed") || strings.Contains(msg, "unexpected EOF")
}

// ProtocolError is the *Error for a stream that broke the wire format.
func ProtocolError(provider, format string, args ...any) *Error {
	return &Error{Provider: provider, Kind: KindProtocol, Message: fmt.Sprintf(format, args...)}
}

// FromStream is err, from an SDK's streaming call or from reading its
// body, as an *Error of provider: an *Error passes through, anything else
// goes through ErrorFromGo, and a protocol error says the event stream was
// malformed.
func FromStream(ctx context.Context, provider string, err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	e := ErrorFromGo(ctx, provider, err)
	if e.Kind == KindProtocol {
		e.Message = "malformed event stream: " + e.Message
	}
	return e
}
