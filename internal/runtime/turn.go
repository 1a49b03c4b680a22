package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// Stop reasons of a turn beyond the model's own.
const (
	StopCancelled     = "cancelled"
	StopMaxIterations = "max_iterations"
	StopError         = "error"
	// StopBlocked: a UserPrompt hook refused the prompt.
	StopBlocked = "blocked"
)

// maxEventOutput bounds the tool output copied into tool_call_result
// events (the model gets the whole result).
const maxEventOutput = 4096

// Send starts a turn with the user's text and returns its id; the turn runs
// in the background and its output streams as events. api.ErrConflict if a
// turn is already running in the session.
func (r *Runtime) Send(ctx context.Context, sessionID, text string) (string, error) {
	l, err := r.load(ctx, sessionID)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	if closing {
		return "", fmt.Errorf("%w: the daemon is shutting down", api.ErrUnavailable)
	}
	turn := newID("t-")
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.mu.Lock()
	if l.deleted {
		l.mu.Unlock()
		cancel()
		return "", fmt.Errorf("%w: session %s was deleted", api.ErrNotFound, sessionID)
	}
	if l.busy {
		l.mu.Unlock()
		cancel()
		return "", fmt.Errorf("%w: a turn is already running in session %s", api.ErrConflict, sessionID)
	}
	l.busy, l.turn, l.cancel = true, turn, cancel
	l.mu.Unlock()
	r.turns.Add(1)
	go func() {
		defer r.turns.Done()
		stop := r.runTurn(tctx, l, turn, text)
		cancel()
		// Deferred calls answered during the turn are settled now, before
		// the session is let go (and saved).
		r.release(context.WithoutCancel(tctx), l, func() { l.rec.Turns++ })
		r.publish(l.rec.ID, api.EventTurnComplete, api.TurnComplete{Turn: turn, StopReason: stop})
		r.emit(events.MessageProcessed, l.rec.ID, events.Message{Turn: turn, StopReason: stop})
	}()
	return turn, nil
}

// Cancel cancels the running turn of a session (any turn when turn is
// empty) and reports whether one was running.
func (r *Runtime) Cancel(ctx context.Context, sessionID, turn string) (bool, error) {
	l, err := r.load(ctx, sessionID)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.busy || (turn != "" && turn != l.turn) || l.cancel == nil {
		return false, nil
	}
	l.cancel()
	return true, nil
}

// RunTurn runs one turn synchronously and returns the final text and the
// stop reason (sub-agents and tests use it).
func (r *Runtime) runTurn(ctx context.Context, l *live, turn, text string) string {
	if l.depth == 0 {
		r.emit(events.MessageReceived, l.rec.ID, events.Message{Turn: turn, Chars: len(text)})
		res := r.FireHook(ctx, l.workspace(), hooks.Payload{Event: hooks.UserPrompt, SessionID: l.rec.ID, Turn: turn, Prompt: text})
		if res.Blocked() {
			r.turnError(l, turn, "the prompt was blocked by hook "+res.Hook+": "+res.Reason)
			return StopBlocked
		}
		r.capsuleEvent(ctx, l.securitySession(r), "UserPrompt", text)
	}
	// Notes of deferred calls settled since the last turn and the prompt
	// reach the model as one user message.
	appendUserText(l, text)
	maxIter := int(r.o.Config.Runtime.MaxTurnIterations)
	if maxIter <= 0 {
		maxIter = 50
	}
	for round := 1; round <= maxIter; round++ {
		if ctx.Err() != nil {
			return StopCancelled
		}
		if err := r.compact(ctx, l, turn); err != nil {
			if ctx.Err() != nil {
				return StopCancelled
			}
			r.turnError(l, turn, "summarising the conversation failed: "+err.Error())
			return StopError
		}
		resp, err := r.callModel(ctx, l, turn)
		if err != nil {
			if ctx.Err() != nil {
				return StopCancelled
			}
			r.turnError(l, turn, err.Error())
			return StopError
		}
		l.mu.Lock()
		l.rec.Messages = append(l.rec.Messages, resp.Message())
		l.mu.Unlock()
		if len(resp.ToolCalls) == 0 {
			return string(resp.StopReason)
		}
		results := r.runTools(ctx, l, turn, resp.ToolCalls)
		l.mu.Lock()
		l.rec.Messages = append(l.rec.Messages, llm.Message{Role: llm.RoleUser, Parts: results})
		l.mu.Unlock()
		if l.parent != nil {
			r.emit(events.SubagentProgress, l.rec.ID, events.Subagent{Parent: l.topID(), Description: l.rec.Title, Depth: l.depth, Round: round, Tools: len(resp.ToolCalls)})
		}
		// Save at every round, so that a daemon that dies mid-turn loses
		// at most the round in flight; the conversation saved is always
		// well-formed (every call has its result).
		_ = r.save(ctx, l)
		if ctx.Err() != nil {
			return StopCancelled
		}
	}
	return StopMaxIterations
}

func (r *Runtime) turnError(l *live, turn, msg string) {
	r.publish(l.rec.ID, api.EventError, api.ErrorEvent{Turn: turn, Message: msg})
	r.emit(events.Error, l.topID(), events.ErrorData{Message: msg})
	r.notify(context.Background(), l.workspace(), l.topID(), "error", msg)
}

// request builds the model request from the session.
func (r *Runtime) request(l *live, reg *tools.Registry) *llm.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	req := &llm.Request{
		System:   r.systemPrompt(l.rec.Workspace, l.depth),
		Summary:  l.rec.Summary,
		Messages: append([]llm.Message(nil), l.rec.Messages...),
	}
	for _, s := range reg.Specs() {
		if l.depth > 0 && s.Name == "task" && l.depth >= r.sub.maxDepth {
			continue
		}
		req.Tools = append(req.Tools, llm.Tool{Name: s.Name, Description: s.Description, InputSchema: s.InputSchema})
	}
	return req
}

// callModel makes one model call: it reserves the estimated cost, streams
// the response to the session's events and charges the real cost.
func (r *Runtime) callModel(ctx context.Context, l *live, turn string) (*llm.Response, error) {
	if r.capsuleWorkspace != nil {
		if err := r.capsuleWorkspace(ctx, l.rec.Workspace); err != nil {
			r.log.Debug("workspace capsules not loaded", "workspace", l.rec.Workspace, "err", err)
		}
	}
	reg, err := r.registry(l.rec.Workspace)
	if err != nil {
		return nil, err
	}
	req := r.request(l, reg)
	prof, err := r.o.Core.Profile(l.rec.Workspace)
	if err != nil {
		return nil, err
	}
	account := l.account()
	res, warns, err := r.o.Core.Budget.Reserve(prof.Limits, account, l.rec.Workspace, r.o.Provider.EstimateCost(req))
	if err != nil {
		return nil, fmt.Errorf("model call refused: %w", err)
	}
	r.budgetWarnings(l, warns)
	sid := l.topID()
	var resp llm.Response
	var streamErr error
	charged := false
	model := r.o.Provider.Model()
	start := time.Now()
	r.emit(events.LLMRequestStarted, sid, events.LLM{Turn: turn, Model: model})
	streaming := false
	for ev, err := range r.o.Provider.Stream(ctx, req) {
		if err != nil {
			streamErr = err
			break
		}
		if !streaming {
			streaming = true
			r.emit(events.LLMStreamStarted, sid, events.LLM{Turn: turn, Model: model})
		}
		switch ev.Kind {
		case llm.EventText:
			resp.Text += ev.Text
			r.publish(sid, api.EventTextDelta, api.TextDelta{Turn: turn, Text: ev.Text})
		case llm.EventReasoning:
			r.publish(sid, api.EventReasoningDelta, api.TextDelta{Turn: turn, Text: ev.Text})
			resp.Reasoning = appendReasoning(resp.Reasoning, ev.Text)
		case llm.EventReasoningEnd:
			if n := len(resp.Reasoning); n > 0 {
				resp.Reasoning[n-1].Signature, resp.Reasoning[n-1].Redacted = ev.Signature, ev.Redacted
			}
			resp.Reasoning = append(resp.Reasoning, llm.Part{}) // next block starts fresh
		case llm.EventToolCallEnd:
			resp.ToolCalls = append(resp.ToolCalls, ev.ToolCall)
		case llm.EventUsage:
			resp.Usage = ev.Usage
			r.budgetWarnings(l, res.Commit(ev.Usage.Cost))
			charged = true
			r.emit(events.LLMUsage, sid, events.LLM{Turn: turn, Model: model, InputTokens: int64(ev.Usage.InputTokens), OutputTokens: int64(ev.Usage.OutputTokens), CostUSD: ev.Usage.Cost.USD()})
			r.publish(sid, api.EventUsage, api.Usage{Turn: turn, InputTokens: ev.Usage.InputTokens, OutputTokens: ev.Usage.OutputTokens,
				CacheReadTokens: ev.Usage.CacheReadTokens, CacheWriteTokens: ev.Usage.CacheWriteTokens, CostUSD: ev.Usage.Cost.USD(),
				ContextTokens: llm.EstimateTokens(req), ContextWindow: r.o.Config.Model.ContextWindow})
		case llm.EventStop:
			resp.StopReason = ev.StopReason
		}
	}
	if !charged {
		// NOTE: a failed call reports no usage; charge what was reserved.
		r.budgetWarnings(l, res.Commit(-1))
	}
	resp.Reasoning = trimReasoning(resp.Reasoning)
	if streaming {
		r.emit(events.LLMStreamCompleted, sid, events.LLM{Turn: turn, Model: model, StopReason: string(resp.StopReason)})
	}
	if streamErr == nil && resp.StopReason == "" {
		streamErr = errors.New("the model stream ended without a stop")
	}
	done := events.LLM{Turn: turn, Model: model, InputTokens: int64(resp.Usage.InputTokens), OutputTokens: int64(resp.Usage.OutputTokens),
		CostUSD: resp.Usage.Cost.USD(), StopReason: string(resp.StopReason), Duration: time.Since(start)}
	if streamErr != nil {
		done.Error = streamErr.Error()
	}
	r.emit(events.LLMRequestCompleted, sid, done)
	if streamErr != nil {
		return nil, streamErr
	}
	return &resp, nil
}

func appendReasoning(parts []llm.Part, text string) []llm.Part {
	if len(parts) == 0 {
		parts = append(parts, llm.Part{})
	}
	p := &parts[len(parts)-1]
	p.Kind = llm.PartReasoning
	p.Text += text
	return parts
}

func trimReasoning(parts []llm.Part) []llm.Part {
	out := parts[:0]
	for _, p := range parts {
		if p.Kind == llm.PartReasoning {
			out = append(out, p)
		}
	}
	return out
}

func (r *Runtime) budgetWarnings(l *live, warns []budget.Warning) {
	for _, w := range warns {
		r.publish(l.topID(), api.EventBudgetWarning, api.BudgetWarning{Account: w.Account, Key: w.Key, UsedUSD: w.Used.USD(), LimitUSD: w.Max.USD()})
		r.emit(events.BudgetWarning, l.topID(), events.Budget{Account: w.Account, Key: w.Key, UsedUSD: w.Used.USD(), LimitUSD: w.Max.USD()})
		r.notify(context.Background(), l.workspace(), l.topID(), "warn", fmt.Sprintf("budget %s: $%.2f of $%.2f used", w.Key, w.Used.USD(), w.Max.USD()))
	}
}

// runTools runs the tool calls of one response: consecutive read-only calls
// in parallel, everything else in order. Every call gets a result, also
// when the turn is cancelled, so the conversation stays well-formed.
func (r *Runtime) runTools(ctx context.Context, l *live, turn string, calls []llm.ToolCall) []llm.Part {
	reg, err := r.registry(l.rec.Workspace)
	results := make([]llm.Part, len(calls))
	if err != nil {
		for i, c := range calls {
			results[i] = toolResult(c, "tools unavailable: "+err.Error(), true)
		}
		return results
	}
	readOnly := map[string]bool{}
	for _, s := range reg.Specs() {
		readOnly[s.Name] = s.ReadOnly
	}
	for i := 0; i < len(calls); {
		j := i + 1
		if readOnly[calls[i].Name] {
			for j < len(calls) && readOnly[calls[j].Name] {
				j++
			}
		}
		var wg sync.WaitGroup
		for k := i; k < j; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[k] = r.runTool(ctx, l, reg, turn, calls[k])
			}()
		}
		wg.Wait()
		i = j
	}
	return results
}

// beforeToolCall runs the PreToolCall hooks of tool call pre, then (unless
// a hook blocked it) the capsules' BeforeToolCall interceptors on the
// arguments as they would run, and returns the verdict.
func (r *Runtime) beforeToolCall(ctx context.Context, sess security.Session, pre hooks.Payload) hooks.Result {
	hr := r.FireHook(ctx, pre.Workspace, pre)
	if hr.Blocked() {
		return hr
	}
	run := pre.Arguments
	if hr.Arguments != nil {
		run = hr.Arguments
	}
	if blocked, reason := r.capsuleBefore(ctx, sess, pre.Tool, run); blocked {
		hr = hooks.Result{Decision: hooks.Block, Hook: "capsule interceptor", Reason: reason}
		r.emit(events.HookBlocked, pre.SessionID, events.Hook{Event: "BeforeToolCall", Hook: hr.Hook, Reason: reason})
	}
	return hr
}

func (r *Runtime) runTool(ctx context.Context, l *live, reg *tools.Registry, turn string, c llm.ToolCall) llm.Part {
	sid := l.topID()
	r.publish(sid, api.EventToolCallStart, api.ToolCallStart{Turn: turn, Call: c.ID, Tool: c.Name, Arguments: json.RawMessage(c.Arguments)})
	if ctx.Err() != nil {
		r.publish(sid, api.EventToolCallResult, api.ToolCallResult{Turn: turn, Call: c.ID, Tool: c.Name, Status: "cancelled"})
		return toolResult(c, "cancelled before it ran", true)
	}
	r.emit(events.ToolCallStarted, sid, events.Tool{Turn: turn, Call: c.ID, Tool: c.Name})
	ws := l.workspace()
	args := json.RawMessage(c.Arguments)
	sess := l.securitySession(r)
	pre := hooks.Payload{Event: hooks.PreToolCall, SessionID: sid, Workspace: ws, Turn: turn, CallID: c.ID, Tool: c.Name, Server: serverOf(c.Name), Arguments: args}
	hr := r.beforeToolCall(ctx, sess, pre)
	if hr.Arguments != nil {
		// NOTE: the interceptor judges the rewritten call (the tool's
		// Prepare builds the action from these arguments), so a hook
		// cannot rewrite its way past policy; the decision entry
		// records the original arguments' digest.
		sess.HookNote = hookNote(hr.Modifiers, args)
		args = hr.Arguments
	}
	var res tools.Result
	var err error
	switch {
	case hr.Blocked():
		// NOTE: the interceptor refuses a blocked call before any other
		// step and audits the refusal (StepHook); nothing runs.
		sess.HookBlock = hr.Why()
		if _, rerr := reg.Run(withLive(ctx, l), r.o.Core.Interceptor, sess, c.Name, args); rerr != nil {
			r.log.Debug("auditing a hook's block", "tool", c.Name, "err", rerr)
		}
		res = tools.Result{IsError: true, Text: c.Name + " was not run: blocked by " + hr.Why()}
	default:
		if hr.Decision == hooks.Ask {
			sess.HookAsk = hr.Why()
		}
		res, err = reg.Run(withLive(ctx, l), r.o.Core.Interceptor, sess, c.Name, args)
	}
	status := "ok"
	switch {
	case hr.Blocked():
		status = "denied"
	case err != nil:
		res = tools.Result{Text: "cancelled: " + err.Error(), IsError: true}
		status = "cancelled"
	case res.IsError && (strings.Contains(res.Text, "denied by") || strings.Contains(res.Text, "pending human approval")):
		status = "denied"
	case res.IsError:
		status = "error"
	}
	if !hr.Blocked() && err == nil {
		if note := r.capsuleAfter(context.WithoutCancel(ctx), sess, c.Name, args, res.Text); note != "" {
			res.Text += "\n" + note
		}
	}
	if hr.Arguments != nil {
		res.Text = fmt.Sprintf("[the arguments of this call were rewritten by hook %s to %s]\n%s", strings.Join(hr.Modifiers, ", "), args, res.Text)
	}
	out, cut := res.Text, false
	if len(out) > maxEventOutput {
		out, cut = out[:maxEventOutput], true
	}
	r.publish(sid, api.EventToolCallResult, api.ToolCallResult{Turn: turn, Call: c.ID, Tool: c.Name, Status: status, Output: out, Truncated: cut})
	if status == "ok" {
		r.emit(events.ToolCallCompleted, sid, events.Tool{Turn: turn, Call: c.ID, Tool: c.Name, Status: status})
	} else {
		r.emit(events.ToolCallFailed, sid, events.Tool{Turn: turn, Call: c.ID, Tool: c.Name, Status: status, Error: out})
	}
	post := pre
	post.Arguments = args
	if status == "ok" {
		post.Event, post.Output = hooks.PostToolCall, out
	} else {
		post.Event, post.Error, post.Reason = hooks.ToolError, out, status
	}
	r.FireHook(context.WithoutCancel(ctx), ws, post)
	// NOTE: tool output is data, never instructions: it reaches the model
	// inside a fence it cannot close.
	return toolResult(c, security.UntrustedData(c.Name, res.Text).ForModel(), res.IsError)
}

func toolResult(c llm.ToolCall, text string, isErr bool) llm.Part {
	return llm.Part{Kind: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: c.ID, Content: text, IsError: isErr}}
}

// securitySession is the session as the interceptor sees it. A sub-agent
// acts under its top-level session's id (same tokens, allowances, budget
// and audit trail: never wider), with its human as the approver.
func (l *live) securitySession(r *Runtime) security.Session {
	top := l
	for top.parent != nil {
		top = top.parent
	}
	l.mu.Lock()
	mode := security.Mode(l.rec.Mode)
	l.mu.Unlock()
	top.mu.Lock()
	defer top.mu.Unlock()
	frontend := top.rec.Frontend
	if l.parent != nil {
		frontend = "subagent"
	}
	return security.Session{ID: top.rec.ID, Principal: top.rec.Principal, Frontend: frontend, Workspace: top.rec.Workspace,
		Mode: mode, Asker: r.asker(top), PreApproval: r.preApproval(top)}
}

// topID is the id of the user's session this live session belongs to.
func (l *live) topID() string {
	for l.parent != nil {
		l = l.parent
	}
	return l.rec.ID
}

// account is the budget account: the top-level session's.
func (l *live) account() string { return l.topID() }

type liveKey struct{}

// withLive lets tools that start sub-agents (task) find their session.
func withLive(ctx context.Context, l *live) context.Context {
	return context.WithValue(ctx, liveKey{}, l)
}

func liveFrom(ctx context.Context) *live {
	l, _ := ctx.Value(liveKey{}).(*live)
	return l
}
