package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// Deferred tool calls. When nobody answers the approval of an agent's
// tool call, the interceptor queues the action durably (with the tool
// that prepared it, security.Action.Tool) and the model is told it is
// pending. Once a human answers it (the daemon's resolveApproval calls
// DeferredResolved), the runtime settles it in its session:
//
//   - approved: the session's registry prepares the call again from the
//     approved arguments and runs it exactly once through
//     security.Interceptor.ReplayDeferred, under the policy and budget in
//     force now, and only if it is exactly the approved action
//     (tools.Registry.RunDeferred); otherwise it is refused and audited;
//   - denied: nothing runs.
//
// Either way the session's frontends get a deferred_result event and the
// model a note, fenced as untrusted data, before its next turn. The
// session is held (busy) while a call is settled, like a turn: while a
// turn runs, the answer is queued and settled when the turn ends, so the
// note never lands between a tool call and its result. Approved calls
// left unclaimed (the daemon stopped between the answer and the run, or
// while one was queued) are run by ResumeDeferred when the daemon starts.
//
// The PreToolCall hooks and the capsules' BeforeToolCall interceptors run
// again on the approved call before it runs, as they would on a fresh one
// (they may have changed since the model made it): a block refuses it,
// and so does a rewrite of its arguments, since the human approved these
// arguments and no others; an ask stands answered by the approval.
// Deferred actions without a tool (a capsule's host calls) belong to the
// capsule manager, which resumes them itself.

// agentCall decodes the action of a deferred approval and reports whether
// it is an agent's tool call (the runtime's to settle).
func agentCall(d approval.Deferred) (security.Action, bool) {
	var a security.Action
	if err := json.Unmarshal(d.Action, &a); err != nil || a.Tool == "" || a.Session.ID != d.SessionID {
		return a, false
	}
	return a, true
}

// DeferredResolved settles deferred approval d, just answered, if it is a
// tool call of an agent session: an approved one runs now, exactly once
// (or, while a turn runs in its session, when that turn ends: status
// queued), and a denial is told. It returns the outcome, or nil when d is
// not the runtime's (a capsule's host call) or another runner has
// claimed it.
func (r *Runtime) DeferredResolved(ctx context.Context, d approval.Deferred) (*api.DeferredResult, error) {
	a, ok := agentCall(d)
	if !ok || d.Answer == nil {
		return nil, nil
	}
	l, err := r.load(ctx, d.SessionID)
	if errors.Is(err, api.ErrNotFound) {
		return r.orphan(ctx, d, a), nil
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	if closing {
		return nil, nil // an approved call runs at the next start
	}
	l.mu.Lock()
	if l.busy {
		l.queued = append(l.queued, d)
		l.mu.Unlock()
		return &api.DeferredResult{ID: d.ID, Tool: a.Tool, Resource: a.Resource, Decision: string(d.Answer.Decision), By: d.Answer.By, Status: api.DeferredQueued}, nil
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	l.busy, l.turn, l.cancel = true, "", cancel
	l.mu.Unlock()
	r.turns.Add(1)
	defer r.turns.Done()
	res := r.settle(rctx, l, d, a)
	r.release(rctx, l, nil)
	return res, nil
}

// ResumeDeferred settles the approved tool calls nobody ran yet (the
// daemon stopped before it could): the daemon's start calls it.
func (r *Runtime) ResumeDeferred(ctx context.Context) error {
	ds, err := r.o.Core.DB.Deferred().ListDeferred(ctx, approval.Approved)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range ds {
		if res, err := r.DeferredResolved(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("deferred %s: %w", d.ID, err))
		} else if res != nil {
			r.log.Info("ran an approved deferred call at start", "id", d.ID, "session", d.SessionID, "tool", res.Tool, "status", res.Status)
		}
	}
	return errors.Join(errs...)
}

// release drains the answers queued while l was held, then lets l go;
// atEnd, if set, runs with l.mu held just before (the end of a turn). The
// session is saved. Nothing is run while the daemon shuts down: approved
// calls stay approved for the next start.
func (r *Runtime) release(ctx context.Context, l *live, atEnd func()) {
	for {
		r.mu.Lock()
		closing := r.closing
		r.mu.Unlock()
		l.mu.Lock()
		var d approval.Deferred
		next := false
		for len(l.queued) > 0 && !next {
			d, l.queued = l.queued[0], l.queued[1:]
			next = !closing || d.Status != approval.Approved
		}
		if !next {
			if atEnd != nil {
				atEnd()
			}
			l.busy, l.turn, l.cancel = false, "", nil
			l.mu.Unlock()
			break
		}
		rctx, cancel := context.WithCancel(ctx)
		l.cancel = cancel
		l.mu.Unlock()
		if a, ok := agentCall(d); ok {
			r.settle(rctx, l, d, a)
		}
		cancel()
	}
	_ = r.save(ctx, l)
}

// settle runs or refuses deferred approval d of session l (held by the
// caller) and tells the session. It returns nil when another runner
// claimed it.
func (r *Runtime) settle(ctx context.Context, l *live, d approval.Deferred, a security.Action) *api.DeferredResult {
	res := &api.DeferredResult{ID: d.ID, Tool: a.Tool, Resource: a.Resource, Decision: string(d.Answer.Decision), By: d.Answer.By}
	var text string
	if d.Status == approval.Denied {
		res.Status, text = api.DeferredDenied, "nothing ran"
		if d.Answer.Reason != "" {
			text += ": " + d.Answer.Reason
		}
	} else {
		ws := l.workspace()
		reg, err := r.registry(ws)
		var out tools.Result
		if err == nil {
			sess := l.securitySession(r)
			sess.Asker = nil // the human has answered
			pre := hooks.Payload{Event: hooks.PreToolCall, SessionID: l.topID(), Workspace: ws, CallID: d.ID, Tool: a.Tool, Server: serverOf(a.Tool), Arguments: json.RawMessage(a.Args)}
			switch hr := r.beforeToolCall(ctx, sess, pre); {
			case hr.Blocked():
				sess.HookBlock = hr.Why()
			case hr.Arguments != nil:
				sess.HookBlock = fmt.Sprintf("hook %s: it rewrites the approved arguments", strings.Join(hr.Modifiers, ", "))
			}
			out, err = reg.RunDeferred(withLive(ctx, l), r.o.Core.Interceptor, sess, d.ID)
		}
		if err != nil {
			if !errors.Is(err, approval.ErrAlreadyResolved) {
				r.log.Error("running an approved deferred call", "id", d.ID, "session", d.SessionID, "err", err)
			}
			return nil // not claimed here: it stays approved, or another runner has it
		}
		text = out.Text
		switch {
		case out.Refused:
			res.Status = api.DeferredRefused
		case out.IsError:
			res.Status = api.DeferredFailed
		default:
			res.Status = api.DeferredRan
		}
	}
	res.Output, res.Truncated = text, false
	if len(res.Output) > maxEventOutput {
		res.Output, res.Truncated = res.Output[:maxEventOutput], true
	}
	r.publish(l.topID(), api.EventDeferredResult, *res)
	appendUserText(l, deferredNote(res, text))
	return res
}

// orphan settles a deferred call whose session no longer exists: an
// approved one is refused (audited), nothing runs.
func (r *Runtime) orphan(ctx context.Context, d approval.Deferred, a security.Action) *api.DeferredResult {
	res := &api.DeferredResult{ID: d.ID, Tool: a.Tool, Resource: a.Resource, Decision: string(d.Answer.Decision), By: d.Answer.By, Status: api.DeferredDenied}
	if d.Status != approval.Approved {
		return res
	}
	_, err := r.o.Core.Interceptor.ReplayDeferred(ctx, d.ID, func(security.Action) (security.Executor, error) {
		return nil, fmt.Errorf("its session %s no longer exists", d.SessionID)
	})
	var de *security.DeniedError
	if !errors.As(err, &de) {
		return nil // another runner has it
	}
	res.Status, res.Output = api.DeferredRefused, de.Error()
	return res
}

// deferredNote is what the model is told of a settled deferred call; the
// result is data, fenced like tool results.
func deferredNote(res *api.DeferredResult, text string) string {
	who := res.By
	if who == "" {
		who = "a human"
	}
	var what string
	switch res.Status {
	case api.DeferredRan:
		what = fmt.Sprintf("was approved by %s (%s) and ran; its result:", who, res.Decision)
	case api.DeferredFailed:
		what = fmt.Sprintf("was approved by %s (%s) and ran, but failed:", who, res.Decision)
	case api.DeferredRefused:
		what = fmt.Sprintf("was approved by %s (%s) but was not run:", who, res.Decision)
	default:
		what = fmt.Sprintf("was denied by %s; it did not run:", who)
	}
	return fmt.Sprintf("[astrid] The deferred call %s (approval %s, %s) %s\n%s", res.Tool, res.ID, res.Resource, what,
		security.UntrustedData(res.Tool, text).ForModel())
}

// appendUserText adds text to the conversation as the user's: to the last
// message when it is the user's plain text (a note waiting for the next
// prompt, or the prompt waiting for notes), else as a new message, so the
// roles keep alternating and no tool result is separated from its call.
func appendUserText(l *live, text string) {
	part := llm.Part{Kind: llm.PartText, Text: text}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.rec.Messages); n > 0 && l.rec.Messages[n-1].Role == llm.RoleUser && plainText(l.rec.Messages[n-1]) {
		m := &l.rec.Messages[n-1]
		m.Parts = append(m.Parts[:len(m.Parts):len(m.Parts)], part)
		return
	}
	l.rec.Messages = append(l.rec.Messages, llm.Message{Role: llm.RoleUser, Parts: []llm.Part{part}})
}

func plainText(m llm.Message) bool {
	for _, p := range m.Parts {
		if p.Kind != llm.PartText {
			return false
		}
	}
	return len(m.Parts) > 0
}
