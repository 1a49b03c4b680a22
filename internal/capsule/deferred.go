package capsule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/sdk"
)

// Deferred host calls. When nobody answers the approval of a gated host
// call (fs, http, kv, ...), the interceptor queues the action durably as
// a deferred approval and the capsule gets status deferred with the
// payload "approval <id>: <reason>". The Manager records the call (host
// function, arguments, session) in its own store, keyed by the capsule and
// the approval id. Once a human resolves the approval (astrid approvals,
// the daemon's resolveApproval), the Manager, from its scheduler loop or
// when the capsule asks (deferred_result), either runs the call again
// through security.Interceptor.RunDeferred, which claims the approval so
// that the action runs exactly once, or, for a denial, records the
// refusal. The capsule takes the outcome with the host function
// deferred_result(id): the payload and status the call would have had,
// delivered once and then forgotten. Records persist in the state
// database, so a restart of the daemon loses nothing; only the capsule
// that made the call can read its result.
//
// NOTE: the call is made again, after the approval, with the capsule's
// grants and the policy as they are then, and only if what it would do is
// exactly the action the human approved (same kind, resource and
// arguments); otherwise it is refused (security.RuleDeferredChanged), the
// approval is used up and nothing runs.

// Bounds of the deferred calls a capsule may have waiting.
const (
	maxDeferredCalls = 100
	maxDeferredBytes = 32 << 20
	// deferredInterval is how often Start looks for resolved approvals.
	deferredInterval = 2 * time.Second
)

// deferredCall is a recorded deferred host call and, once resolved, its
// outcome.
type deferredCall struct {
	Fn      string           `json:"fn"`
	A       []byte           `json:"a,omitempty"`
	B       []byte           `json:"b,omitempty"`
	Session security.Session `json:"session"`
	Done    bool             `json:"done,omitempty"`
	Status  sdk.Status       `json:"status,omitempty"`
	Payload []byte           `json:"payload,omitempty"`
}

// run is how host functions run an action through the interceptor: a
// deferral is noted for the host call to record, and a resumed call runs
// its approved deferred action instead (once).
func (cs *callState) run(ctx context.Context, a security.Action, ex security.Executor) ([]byte, error) {
	m := cs.c.m
	if id := cs.resume; id != "" {
		cs.resume = ""
		return m.runApproved(ctx, cs, id, a, ex)
	}
	out, err := m.ic.Run(ctx, a, ex)
	var de *security.DeferredError
	if errors.As(err, &de) {
		cs.deferred = de
	}
	return out, err
}

// runApproved runs deferred approval id for a resumed call whose action
// is a.
func (m *Manager) runApproved(ctx context.Context, cs *callState, id string, a security.Action, ex security.Executor) ([]byte, error) {
	// ReplayDeferred claims the approval first, so a refusal uses it up:
	// the approved action can never run later either.
	return m.ic.ReplayDeferred(ctx, id, func(approved security.Action) (security.Executor, error) {
		if approved.Kind != a.Kind || approved.Resource != a.Resource || !bytes.Equal(approved.Args, a.Args) {
			return nil, errors.New("the call no longer matches the action approved as " + id)
		}
		return ex, nil
	})
}

// deferredPayload is what the capsule is told of a deferral.
func deferredPayload(de *security.DeferredError) []byte {
	return []byte("approval " + de.ID + ": " + de.Reason)
}

// recordDeferred stores a deferred host call. It returns an error when it
// cannot (the capsule is told its result will not be delivered).
func (m *Manager) recordDeferred(ctx context.Context, cs *callState, fn string, a, b []byte, id string) error {
	if m.o.Deferred == nil {
		return errors.New("this runtime does not resume deferred calls")
	}
	rec, err := json.Marshal(deferredCall{Fn: fn, A: a, B: b, Session: cs.sess})
	if err != nil {
		return err
	}
	ok, err := m.kv.Set(context.WithoutCancel(ctx), capsulepkg.DeferredNS(cs.c.id), id, rec, maxDeferredBytes, maxDeferredCalls)
	if err == nil && !ok {
		err = fmt.Errorf("the capsule has %d deferred calls (or %d bytes of them) waiting already", maxDeferredCalls, maxDeferredBytes)
	}
	return err
}

// deferredResult implements the host function deferred_result(id).
func (m *Manager) deferredResult(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	id := string(a)
	if id == "" || len(id) > 64 {
		return nil, hostErrf(sdk.StatusInvalid, "deferred_result: want an approval id")
	}
	rec, err := m.resumeOne(ctx, cs.c.id, id)
	if err != nil {
		return nil, err
	}
	if !rec.Done {
		return nil, hostErrf(sdk.StatusDeferred, "approval %s: still waiting for a human's answer", id)
	}
	if err := m.kv.Delete(ctx, capsulepkg.DeferredNS(cs.c.id), id); err != nil {
		return nil, err
	}
	if rec.Status != sdk.StatusOK {
		return nil, hostErrf(rec.Status, "%s", rec.Payload)
	}
	return rec.Payload, nil
}

// ResumeDeferred looks at the deferred calls of the loaded capsules and
// resolves those whose approval was answered: an approved call runs (once)
// and a denied one records the denial. Start calls it periodically.
func (m *Manager) ResumeDeferred(ctx context.Context) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.loaded))
	for id := range m.loaded {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, cid := range ids {
		keys, err := m.kv.List(ctx, capsulepkg.DeferredNS(cid), "", maxDeferredCalls)
		if err != nil {
			m.log.Warn("listing deferred capsule calls", "capsule", cid, "err", err)
			continue
		}
		for _, id := range keys {
			if _, err := m.resumeOne(ctx, cid, id); err != nil {
				m.log.Warn("resuming a deferred capsule call", "capsule", cid, "approval", id, "err", err)
			}
		}
	}
}

// resumeOne brings the record of capsule cid's deferred call id up to
// date with its approval and returns it. An unknown id is not found.
func (m *Manager) resumeOne(ctx context.Context, cid, id string) (deferredCall, error) {
	m.resumeMu.Lock()
	defer m.resumeMu.Unlock()
	var rec deferredCall
	if m.o.Deferred == nil {
		return rec, hostErrf(sdk.StatusNotFound, "deferred_result: this runtime does not resume deferred calls")
	}
	raw, ok, err := m.kv.Get(ctx, capsulepkg.DeferredNS(cid), id)
	if err != nil {
		return rec, err
	}
	if !ok {
		return rec, hostErrf(sdk.StatusNotFound, "deferred_result: no deferred call %q of this capsule", clipString(id, 64))
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, fmt.Errorf("deferred call %s: bad record: %w", id, err)
	}
	if rec.Done {
		return rec, nil
	}
	d, err := m.o.Deferred.GetDeferred(ctx, id)
	if errors.Is(err, approval.ErrNotFound) {
		rec.Done, rec.Status, rec.Payload = true, sdk.StatusFailed, []byte("approval "+id+" no longer exists")
		return rec, m.saveDeferred(ctx, cid, id, rec)
	}
	if err != nil {
		return rec, err
	}
	switch d.Status {
	case approval.Pending:
		return rec, nil
	case approval.Denied:
		who := ""
		if d.Answer != nil {
			who = " by " + d.Answer.By
			if d.Answer.Reason != "" {
				who += ": " + d.Answer.Reason
			}
		}
		rec.Done, rec.Status, rec.Payload = true, sdk.StatusDenied, []byte("approval "+id+" was denied"+who)
	case approval.Approved:
		c, ok := m.Capsule(cid)
		if !ok {
			return rec, nil // it runs when the capsule is loaded again
		}
		rec.Status, rec.Payload = m.replay(ctx, c, id, rec)
		rec.Done = true
	default:
		// Claimed by a run whose outcome was not recorded here (the
		// daemon stopped during it): say what the queue knows.
		rec.Done, rec.Status = true, sdk.StatusFailed
		rec.Payload = []byte("approval " + id + ": the call was run but its result was lost (" + string(d.Status) + ": " + d.Result + ")")
		if d.Status == approval.Done && d.Result == "done" {
			rec.Status = sdk.StatusOK
			rec.Payload = nil
		}
	}
	return rec, m.saveDeferred(ctx, cid, id, rec)
}

// replay makes the recorded host call again as the resumption of approval
// id and returns the status and payload the capsule gets.
func (m *Manager) replay(ctx context.Context, c *Capsule, id string, rec deferredCall) (sdk.Status, []byte) {
	fn, ok := m.hf.funcs[rec.Fn]
	if !ok {
		return sdk.StatusFailed, []byte("unknown host function " + rec.Fn)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.eng.limits.Timeout)
	defer cancel()
	cs := &callState{c: c, sess: rec.Session, resume: id}
	out, err := fn(ctx, cs, rec.A, rec.B)
	if err != nil {
		var ke *killError
		if errors.As(err, &ke) {
			return sdk.StatusFailed, []byte(ke.reason)
		}
		return statusOf(err), []byte(strings.ToValidUTF8(err.Error(), "\uFFFD"))
	}
	return sdk.StatusOK, out
}

func (m *Manager) saveDeferred(ctx context.Context, cid, id string, rec deferredCall) error {
	rec.A, rec.B = nil, nil // the call is over
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ok, err := m.kv.Set(context.WithoutCancel(ctx), capsulepkg.DeferredNS(cid), id, raw, maxDeferredBytes+maxOutput, maxDeferredCalls)
	if err == nil && !ok {
		err = errors.New("the deferred calls' store is full")
	}
	return err
}
