package capsule

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/sdk"
)

// Per-call bounds on what a capsule may ask of the host.
const (
	// maxOutput bounds what a call returns (a tool's text, a verdict).
	maxOutput = 1 << 20
	// maxHostCalls bounds the host calls of one call into a capsule.
	maxHostCalls = 100_000
	// maxLogLines and maxLogLine bound FnLog per call; lines beyond are
	// dropped.
	maxLogLines = 200
	maxLogLine  = 4 << 10
	// maxArg bounds the a argument of every host function (paths, keys,
	// topics, JSON requests); b has per-function bounds.
	maxArg = 64 << 10
)

// hostImpl implements one host function for the call in progress. a and b
// alias guest memory: an implementation copies what it keeps.
type hostImpl func(ctx context.Context, cs *callState, a, b []byte) ([]byte, error)

// hostFuncs are the host functions of a Manager's engine.
type hostFuncs struct {
	m     *Manager
	funcs map[string]hostImpl
}

// callKey carries the *callState of the call in progress in the context
// given to the guest's exports, which wazero hands to host functions.
type callKey struct{}

// callState is what the host knows about one call into a capsule.
type callState struct {
	c    *Capsule
	sess security.Session
	// output is what the guest gave with FnOutput.
	output    []byte
	outputSet bool
	// pending is a result too large for the guest's buffer, kept for
	// FnResult until the next host call.
	pending   []byte
	hostCalls int
	logLines  int
	publishes int
	// resume is the deferred approval this call resumes (deferred.go);
	// deferred is set when the interceptor deferred the call's action.
	resume   string
	deferred *security.DeferredError
}

// hostError is a refusal or failure with the status the guest sees.
type hostError struct {
	status sdk.Status
	msg    string
}

func (e *hostError) Error() string { return e.msg }

func hostErrf(st sdk.Status, format string, args ...any) error {
	return &hostError{status: st, msg: fmt.Sprintf(format, args...)}
}

// killError ends the call into the capsule: the host function traps, the
// call fails with the reason, and the instance is replaced.
type killError struct{ reason string }

func (e *killError) Error() string { return e.reason }

// statusOf maps an error to the status the guest sees.
func statusOf(err error) sdk.Status {
	var he *hostError
	var de *security.DeniedError
	var fe *security.DeferredError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.As(err, &de):
		return sdk.StatusDenied
	case errors.As(err, &fe):
		return sdk.StatusDeferred
	case errors.Is(err, fs.ErrNotExist):
		return sdk.StatusNotFound
	}
	return sdk.StatusFailed
}

// adapt turns an implementation into a wazero function of the ABI type
// (a_ptr, a_len, b_ptr, b_len, out_ptr, out_cap i32) -> i64.
func (h *hostFuncs) adapt(name string, fn hostImpl) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		mem := mod.Memory()
		a, okA := mem.Read(uint32(stack[0]), uint32(stack[1]))
		b, okB := mem.Read(uint32(stack[2]), uint32(stack[3]))
		outPtr, outCap := uint32(stack[4]), uint32(stack[5])
		_, okOut := mem.Read(outPtr, outCap)
		if !okA || !okB || !okOut {
			// NOTE: a guest that hands out-of-bounds pointers is broken or
			// hostile; trapping ends its call and its instance.
			panic(&killError{reason: "host call " + name + ": pointer outside the capsule's memory"})
		}
		cs, _ := ctx.Value(callKey{}).(*callState)
		var payload []byte
		var err error
		switch {
		case cs == nil:
			err = hostErrf(sdk.StatusFailed, "%s: no call in progress (host functions cannot be used from init)", name)
		case cs.hostCalls >= maxHostCalls:
			panic(&killError{reason: fmt.Sprintf("more than %d host calls in one call", maxHostCalls)})
		case len(a) > maxArg:
			err = hostErrf(sdk.StatusLimit, "%s: argument of %d bytes, more than %d", name, len(a), maxArg)
		default:
			cs.hostCalls++
			if name != sdk.FnResult {
				cs.pending = nil
			}
			payload, err = fn(ctx, cs, a, b)
		}
		st := sdk.StatusOK
		if err != nil {
			var ke *killError
			if errors.As(err, &ke) {
				panic(ke)
			}
			st, payload = statusOf(err), []byte(err.Error())
		}
		if cs != nil && cs.deferred != nil {
			// The approval was deferred: the call is recorded so that its
			// result reaches the capsule once a human answers.
			de := cs.deferred
			cs.deferred = nil
			st, payload = sdk.StatusDeferred, deferredPayload(de)
			if rerr := h.m.recordDeferred(ctx, cs, name, a, b, de.ID); rerr != nil {
				h.m.log.Error("a deferred capsule call was not recorded", "capsule", cs.c.id, "approval", de.ID, "err", rerr)
				payload = append(payload, "; its result will not be delivered: "+rerr.Error()...)
			}
		}
		n := uint32(len(payload))
		switch {
		case n <= outCap:
			mem.Write(outPtr, payload)
		case cs != nil && name != sdk.FnResult:
			cs.pending = payload
		default:
			st, n = sdk.StatusInvalid, 0
		}
		stack[0] = sdk.Pack(st, n)
	}
}

// newHostFuncs returns every host function; m serves them.
func newHostFuncs(m *Manager) *hostFuncs {
	return &hostFuncs{m: m, funcs: map[string]hostImpl{
		sdk.FnResult:         hostResult,
		sdk.FnOutput:         hostOutput,
		sdk.FnLog:            m.hostLog,
		sdk.FnConfigGet:      hostConfigGet,
		sdk.FnFSExists:       m.fsExists,
		sdk.FnFSMkdir:        m.fsMkdir,
		sdk.FnFSReadDir:      m.fsReadDir,
		sdk.FnFSStat:         m.fsStat,
		sdk.FnFSRead:         m.fsRead,
		sdk.FnFSWrite:        m.fsWrite,
		sdk.FnFSUnlink:       m.fsUnlink,
		sdk.FnHTTPRequest:    m.httpRequest,
		sdk.FnKVGet:          m.kvGet,
		sdk.FnKVSet:          m.kvSet,
		sdk.FnKVDelete:       m.kvDelete,
		sdk.FnKVList:         m.kvList,
		sdk.FnIPCPublish:     m.ipcPublish,
		sdk.FnIPCSubscribe:   m.ipcSubscribe,
		sdk.FnIPCPoll:        m.ipcPoll,
		sdk.FnUplinkRegister: m.uplinkRegister,
		sdk.FnUplinkSend:     m.uplinkSend,
		sdk.FnCronSchedule:   m.cronSchedule,
		sdk.FnCronCancel:     m.cronCancel,
		sdk.FnElicit:         m.elicit,
		sdk.FnDeferredResult: m.deferredResult,
	}}
}

// hostResult hands over a pending result that did not fit the guest's
// buffer (see the ABI).
func hostResult(_ context.Context, cs *callState, _, _ []byte) ([]byte, error) {
	if cs.pending == nil {
		return nil, hostErrf(sdk.StatusInvalid, "no pending result")
	}
	p := cs.pending
	cs.pending = nil
	return p, nil
}

// hostOutput records the call's output.
func hostOutput(_ context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	if len(a) > maxOutput {
		return nil, hostErrf(sdk.StatusLimit, "output of %d bytes, more than %d", len(a), maxOutput)
	}
	cs.output = append(cs.output[:0], a...)
	cs.outputSet = true
	return nil, nil
}

func (m *Manager) hostLog(_ context.Context, cs *callState, a, b []byte) ([]byte, error) {
	if cs.logLines >= maxLogLines {
		return nil, nil
	}
	cs.logLines++
	if len(b) > maxLogLine {
		b = b[:maxLogLine]
	}
	msg := strings.ToValidUTF8(string(b), "\uFFFD")
	lg := m.log.With("capsule", cs.c.id, "session", cs.sess.ID)
	switch string(a) {
	case string(rune(sdk.LevelDebug)):
		lg.Debug(msg)
	case string(rune(sdk.LevelWarn)):
		lg.Warn(msg)
	case string(rune(sdk.LevelError)):
		lg.Error(msg)
	default:
		lg.Info(msg)
	}
	return nil, nil
}

// hostConfigGet returns an [env] value of the capsule. It is not gated:
// the values are the capsule's own, given by the user at install.
func hostConfigGet(_ context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	v, ok := cs.c.env[string(a)]
	if !ok {
		return nil, hostErrf(sdk.StatusNotFound, "no config value %q", clipString(string(a), 64))
	}
	return []byte(v), nil
}

func clipString(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
