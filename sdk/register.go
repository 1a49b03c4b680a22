package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Error is a refusal or failure reported by the host (or by a handler,
// to the host). Status says which; Msg is the host's message.
type Error struct {
	Status Status
	Msg    string
}

func (e *Error) Error() string { return e.Status.String() + ": " + e.Msg }

// IsNotFound reports whether err is a StatusNotFound *Error.
func IsNotFound(err error) bool { return statusOf(err) == StatusNotFound }

// DeferredID returns the approval id of a host call that was deferred
// (status deferred, message "approval <id>: <reason>"): pass it to
// DeferredResult later. ok is false for any other error.
func DeferredID(err error) (id string, ok bool) {
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusDeferred {
		return "", false
	}
	rest, found := strings.CutPrefix(e.Msg, "approval ")
	if !found {
		return "", false
	}
	id, _, _ = strings.Cut(rest, ":")
	return id, id != ""
}

// IsDenied reports whether err is a StatusDenied *Error.
func IsDenied(err error) bool { return statusOf(err) == StatusDenied }

func statusOf(err error) Status {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return StatusOK
}

// ToolFunc handles a tool call: args is the call's JSON arguments object;
// the returned text goes to the model (as untrusted data). An error is
// shown to the model as the tool's failure.
type ToolFunc func(args json.RawMessage) (string, error)

// CronFunc runs a cron job with the action from its [[cron]] entry (or
// from CronSchedule).
type CronFunc func(action string) error

// HookFunc judges an interceptor event (see HookEvent, HookVerdict).
type HookFunc func(ev HookEvent) (HookVerdict, error)

// The handlers, registered from init functions before the host's first
// call. A capsule is single-threaded; these maps are not locked.
var (
	tools = map[string]ToolFunc{}
	crons = map[string]CronFunc{}
	hooks = map[string]HookFunc{}
	provs = map[string]ProviderFunc{}
)

// ProviderFunc serves an [[llm_provider]]: the conversation in, the
// model's next turn out.
type ProviderFunc func(req CompletionRequest) (CompletionResponse, error)

// RegisterProvider registers the handler of a provider declared in
// [[llm_provider]].
func RegisterProvider(name string, fn ProviderFunc) {
	if _, dup := provs[name]; dup || fn == nil {
		panic("sdk: provider " + name + " registered twice or nil")
	}
	provs[name] = fn
}

// RegisterTool registers the handler of a tool declared in the capsule's
// [[tool]] table. Call it from an init function; registering a name twice
// panics.
func RegisterTool(name string, fn ToolFunc) {
	if _, dup := tools[name]; dup || fn == nil {
		panic("sdk: tool " + name + " registered twice or nil")
	}
	tools[name] = fn
}

// HandleTool registers a tool whose arguments decode into T, strictly:
// unknown fields and trailing data are errors the model sees.
func HandleTool[T any](name string, fn func(args T) (string, error)) {
	RegisterTool(name, func(raw json.RawMessage) (string, error) {
		var args T
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&args); err != nil {
			return "", &Error{Status: StatusInvalid, Msg: fmt.Sprintf("%s: bad arguments: %v", name, err)}
		}
		if dec.More() {
			return "", &Error{Status: StatusInvalid, Msg: name + ": trailing data after the arguments"}
		}
		return fn(args)
	})
}

// RegisterCron registers the handler of a cron job declared in [[cron]]
// or scheduled with CronSchedule.
func RegisterCron(name string, fn CronFunc) {
	if _, dup := crons[name]; dup || fn == nil {
		panic("sdk: cron job " + name + " registered twice or nil")
	}
	crons[name] = fn
}

// RegisterHook registers the handler of an interceptor event declared in
// [[interceptor]]. An event without a handler gets an empty verdict.
func RegisterHook(event string, fn HookFunc) {
	if _, dup := hooks[event]; dup || fn == nil {
		panic("sdk: hook " + event + " registered twice or nil")
	}
	hooks[event] = fn
}
