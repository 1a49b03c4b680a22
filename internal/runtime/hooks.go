package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/mcp"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/workspace"
	"github.com/astrid-runtime/astrid/sdk"
)

// hookSet returns the hooks of a workspace ("" for the user's hooks
// only), loading them on first use and again whenever their files or the
// trust file changed. A hooks configuration that cannot be
// loaded is remembered by the Set, which then blocks every blocking event.
func (r *Runtime) hookSet(ws string) *hooks.Set {
	r.mu.Lock()
	prev, ok := r.hooks[ws]
	r.mu.Unlock()
	if ok && !prev.Stale() {
		return prev
	}
	c := r.hooksCfg.Load()
	s := hooks.Load(hooks.Options{
		Home: r.o.Core.Home.Path(), Workspace: ws, Enabled: c.Enabled, AllowWorkspace: c.AllowWorkspaceHooks,
		Timeout: time.Duration(c.TimeoutSecs) * time.Second, AllowedHosts: c.AllowedHosts, Trust: r.trust,
		Sandbox: r.o.Core.Sandbox, StageRoot: r.o.HookStageRoot, Logger: r.log, Now: r.o.Now,
	})
	if err := s.Err(); err != nil {
		r.log.Error("hooks configuration invalid: blocking events are refused until it is fixed", "workspace", ws, "err", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.hooks[ws]; ok && cur != prev {
		// Another caller replaced them meanwhile: theirs are as fresh.
		go s.Close()
		return cur
	}
	if prev != nil {
		go prev.Close() // waits for the hooks still running from it
	}
	r.hooks[ws] = s
	return s
}

// HookTrust is the store of trusted workspaces whose hooks may run.
func (r *Runtime) HookTrust() *hooks.Trust { return r.trust }

// Hooks returns the hooks of a workspace ("" for the user's only).
func (r *Runtime) Hooks(ws string) *hooks.Set { return r.hookSet(ws) }

// ReloadHooks forgets the loaded hooks (after a change of the files or of
// a workspace's trust); they are read again on next use.
func (r *Runtime) ReloadHooks() {
	r.mu.Lock()
	old := r.hooks
	r.hooks = map[string]*hooks.Set{}
	r.mu.Unlock()
	for _, s := range old {
		go s.Close()
	}
}

// closeHooks waits for async hooks and removes the staged directories.
func (r *Runtime) closeHooks() {
	r.mu.Lock()
	old := r.hooks
	r.hooks = map[string]*hooks.Set{}
	r.mu.Unlock()
	for _, s := range old {
		s.Close()
	}
}

// FireHook runs the hooks of p.Event of workspace ws and returns what
// they decided.
func (r *Runtime) FireHook(ctx context.Context, ws string, p hooks.Payload) hooks.Result {
	if p.Time.IsZero() {
		p.Time = r.o.Now().UTC()
	}
	if p.Workspace == "" {
		p.Workspace = ws
	}
	var res hooks.Result
	for i := 0; ; i++ {
		var ok bool
		if res, ok = r.hookSet(ws).TryFire(ctx, p); ok {
			break
		}
		if i == 2 {
			// The hooks were reloaded under us three times: fail closed.
			res = r.hookSet(ws).Fire(ctx, p)
			break
		}
	}
	if res.Decision == hooks.Block {
		r.emit(events.HookBlocked, p.SessionID, events.Hook{Event: string(p.Event), Hook: res.Hook, Reason: res.Reason})
		r.log.Info("hook blocked", "event", p.Event, "hook", res.Hook, "reason", res.Reason, "session", p.SessionID)
	}
	return res
}

// workspaceOf is the workspace of a live session.
func (l *live) workspace() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.Workspace
}

// serverOf names the MCP server of an MCP tool ("" for others).
func serverOf(tool string) string {
	rest, ok := strings.CutPrefix(tool, mcp.ToolPrefix)
	if !ok {
		return ""
	}
	server, _, _ := strings.Cut(rest, "__")
	return server
}

// hookNote is the audit text of a rewrite: the hooks and the digest of
// the arguments the model proposed.
func hookNote(modifiers []string, original []byte) string {
	return fmt.Sprintf("arguments rewritten by hook %s; original arguments sha256:%x", strings.Join(modifiers, ", "), sha256.Sum256(original))
}

// preApproval runs the PreApproval hooks of a session's workspace before a
// request is announced (security.Session.PreApproval): a block is the
// answer, and nobody is asked.
func (r *Runtime) preApproval(top *live) func(context.Context, approval.Request) (approval.Answer, bool) {
	return func(ctx context.Context, req approval.Request) (approval.Answer, bool) {
		reqJSON, _ := json.Marshal(req)
		res := r.FireHook(ctx, top.workspace(), hooks.Payload{Event: hooks.PreApproval, SessionID: req.SessionID, Request: reqJSON})
		if !res.Blocked() {
			return approval.Answer{}, false
		}
		return approval.Answer{Decision: approval.Deny, Reason: "blocked by hook " + res.Hook + ": " + res.Reason, By: "hook:" + res.Hook}, true
	}
}

// hookAsker wraps an Asker with the Notification hook ("approval needed")
// and the PostApproval hooks.
func (r *Runtime) hookAsker(top *live, next approval.Asker) approval.Asker {
	return approval.AskerFunc(func(ctx context.Context, req approval.Request) (approval.Answer, error) {
		ws := top.workspace()
		reqJSON, _ := json.Marshal(req)
		r.notify(ctx, ws, req.SessionID, "info", "approval needed: "+req.Summary+" ("+req.Resource+")")
		ans, err := next.Ask(ctx, req)
		if err == nil {
			ansJSON, _ := json.Marshal(ans)
			r.FireHook(ctx, ws, hooks.Payload{Event: hooks.PostApproval, SessionID: req.SessionID, Request: reqJSON, Answer: ansJSON})
		}
		return ans, err
	})
}

// notify fires the Notification hooks: something the user should know
// (an approval waits, a turn failed, a budget warning).
func (r *Runtime) notify(ctx context.Context, ws, session, level, msg string) {
	r.FireHook(ctx, ws, hooks.Payload{Event: hooks.Notification, SessionID: session, Level: level, Message: msg})
}

// defaultHookStageRoot is where hooks directories are staged: a private
// per-user directory outside $ASTRID_HOME.
func defaultHookStageRoot() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("astrid-hooks-%d", os.Getuid()))
}

// hookWorkspace resolves a workspace given by a frontend ("" stays "").
func hookWorkspace(ws string) (string, error) {
	if ws == "" {
		return "", nil
	}
	res, err := workspace.Resolve("/", ws)
	if err != nil || !filepath.IsAbs(ws) {
		return "", fmt.Errorf("%w: workspace %q: must be an existing absolute directory", api.ErrInvalidParams, ws)
	}
	return res, nil
}

func hookInfo(h *hooks.Hook) api.HookInfo {
	info := api.HookInfo{Name: h.Name, Event: string(h.Event), Kind: h.Kind(), Command: h.Command, URL: h.URL,
		Tools: h.Tools, Servers: h.Servers, Glob: h.Glob, FailAction: string(h.FailAction), Priority: h.Priority,
		Async: h.Async, TimeoutSecs: int64(h.Timeout / time.Second), File: h.File, Line: h.Line, Workspace: h.Workspace, Trusted: h.Trusted}
	if h.Regex != nil {
		info.Regex = h.Regex.String()
	}
	return info
}

// ListHooks implements daemon.Backend.
func (b *Backend) ListHooks(_ context.Context, _ daemon.Caller, p api.ListHooksParams) (api.ListHooksResult, error) {
	ws, err := hookWorkspace(p.Workspace)
	if err != nil {
		return api.ListHooksResult{}, err
	}
	s := b.R.hookSet(ws)
	out := api.ListHooksResult{Hooks: []api.HookInfo{}}
	for _, h := range s.Hooks() {
		out.Hooks = append(out.Hooks, hookInfo(h))
	}
	if err := s.Err(); err != nil {
		out.Error = err.Error()
	}
	return out, nil
}

// TestHooks implements daemon.Backend: each hook of the event that would
// run (matching the tool on tool events) runs once with the sample
// payload; untrusted hooks are reported as skipped.
func (b *Backend) TestHooks(ctx context.Context, _ daemon.Caller, p api.TestHooksParams) (api.TestHooksResult, error) {
	ev := hooks.Event(p.Event)
	if !ev.Valid() {
		return api.TestHooksResult{}, fmt.Errorf("%w: unknown hook event %q", api.ErrInvalidParams, p.Event)
	}
	ws, err := hookWorkspace(p.Workspace)
	if err != nil {
		return api.TestHooksResult{}, err
	}
	s := b.R.hookSet(ws)
	if err := s.Err(); err != nil {
		return api.TestHooksResult{}, fmt.Errorf("%w: %v", api.ErrInvalidParams, err)
	}
	pl := hooks.Sample(ev, b.R.o.Now())
	if ws != "" {
		pl.Workspace = ws
	}
	if ev.ToolEvent() {
		if p.Tool != "" {
			pl.Tool, pl.Server = p.Tool, serverOf(p.Tool)
		}
		if len(p.Arguments) > 0 {
			pl.Arguments = p.Arguments
		}
	}
	payload, _ := json.Marshal(pl)
	out := api.TestHooksResult{Event: p.Event, Payload: payload, Runs: []api.HookRun{}}
	for _, h := range s.Hooks() {
		if h.Event != ev || (p.Hook != "" && h.Name != p.Hook) || (ev.ToolEvent() && !h.Matches(pl.Tool)) {
			continue
		}
		run := api.HookRun{Hook: h.Name, FailAction: string(h.FailAction)}
		if !h.Trusted {
			run.Skipped = "the workspace's hooks are not trusted (astrid hooks trust)"
			out.Runs = append(out.Runs, run)
			continue
		}
		start := time.Now()
		resp, err := s.Run(ctx, h, pl)
		run.Millis = time.Since(start).Milliseconds()
		if err != nil {
			run.Error = err.Error()
		} else {
			run.Decision, run.Reason, run.Arguments = string(resp.Decision), resp.Reason, resp.Arguments
		}
		out.Runs = append(out.Runs, run)
	}
	return out, nil
}

// TrustHooks implements daemon.Backend.
func (b *Backend) TrustHooks(_ context.Context, _ daemon.Caller, p api.TrustHooksParams) (api.TrustHooksResult, error) {
	ws, err := hookWorkspace(p.Workspace)
	if err != nil {
		return api.TrustHooksResult{}, err
	}
	out := api.TrustHooksResult{Workspace: ws}
	if p.Revoke {
		err = b.R.trust.Revoke(ws)
	} else {
		out.Digest, err = b.R.trust.Trust(ws)
	}
	if err != nil {
		return api.TrustHooksResult{}, err
	}
	b.R.ReloadHooks()
	return out, nil
}

// capsuleBefore asks the capsules' BeforeToolCall interceptors about a
// call (after the hooks.toml hooks, on the arguments as they will run).
// An error blocks: the capsule manager already turns a failing
// interceptor into a block, and a failure to ask at all is a "no" too.
func (r *Runtime) capsuleBefore(ctx context.Context, s security.Session, tool string, args []byte) (blocked bool, reason string) {
	if r.capsuleHook == nil {
		return false, ""
	}
	v, err := r.capsuleHook(ctx, s, sdk.HookEvent{Event: "BeforeToolCall", Session: s.ID, Tool: tool, Args: args})
	if err != nil {
		return true, "the capsule interceptors could not be asked: " + err.Error()
	}
	return v.Block, v.Reason
}

// capsuleAfter calls the AfterToolCall interceptors and returns their
// note for the model ("" for none); a failure is logged.
func (r *Runtime) capsuleAfter(ctx context.Context, s security.Session, tool string, args []byte, result string) string {
	if r.capsuleHook == nil {
		return ""
	}
	v, err := r.capsuleHook(ctx, s, sdk.HookEvent{Event: "AfterToolCall", Session: s.ID, Tool: tool, Args: args, Result: result})
	if err != nil {
		r.log.Warn("capsule AfterToolCall interceptors failed", "tool", tool, "err", err)
		return ""
	}
	return v.Note
}

// capsuleEvent calls the interceptors of a session event (SessionStart,
// SessionEnd, UserPrompt); they observe only, and a failure is logged.
func (r *Runtime) capsuleEvent(ctx context.Context, s security.Session, event, text string) {
	if r.capsuleHook == nil {
		return
	}
	if _, err := r.capsuleHook(ctx, s, sdk.HookEvent{Event: event, Session: s.ID, Result: text}); err != nil {
		r.log.Warn("capsule interceptors failed", "event", event, "err", err)
	}
}
