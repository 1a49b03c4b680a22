package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/session"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// subagents bounds delegation: depth, concurrency (excess tasks queue) and
// time.
type subagents struct {
	maxDepth int
	slots    chan struct{}
	timeout  time.Duration
}

func newSubagents(c config.Subagents) *subagents {
	s := &subagents{maxDepth: int(c.MaxDepth), timeout: time.Duration(c.TimeoutSecs) * time.Second}
	if s.maxDepth <= 0 {
		s.maxDepth = 3
	}
	n := int(c.MaxConcurrent)
	if n <= 0 {
		n = 4
	}
	s.slots = make(chan struct{}, n)
	if s.timeout <= 0 {
		s.timeout = 10 * time.Minute
	}
	return s
}

// taskTool is task{description, prompt}: it runs a sub-agent with its own
// context on one task and returns its final answer.
//
// NOTE: a sub-agent acts under its parent's session (the same tokens,
// allowances, budget account and audit trail) and in the parent's mode, so
// it can never hold more authority than its parent; its approvals go to
// the parent's human, never to itself.
type taskTool struct{ r *Runtime }

type taskArgs struct {
	Description string `json:"description"`
	Prompt      string `json:"prompt"`
}

func (t *taskTool) Spec() tools.Spec {
	return tools.Spec{
		Name: "task",
		Description: `Delegate a self-contained task to a sub-agent with a fresh context. It has the same tools and no more authority than you; its approvals go to the same user. It returns the sub-agent's final answer.
description is a short title (a few words); prompt is the complete instruction, since the sub-agent does not see this conversation.`,
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "description": {"type": "string", "description": "A short title for the task."},
    "prompt": {"type": "string", "description": "The full instruction for the sub-agent."}
  },
  "required": ["description", "prompt"],
  "additionalProperties": false
}`),
	}
}

func (t *taskTool) Prepare(s security.Session, raw json.RawMessage) (security.Action, security.Executor, error) {
	var a taskArgs
	if err := strictJSON(raw, &a); err != nil {
		return security.Action{}, nil, fmt.Errorf("task: %w", err)
	}
	if strings.TrimSpace(a.Prompt) == "" || strings.TrimSpace(a.Description) == "" {
		return security.Action{}, nil, errors.New("task: description and prompt must not be empty")
	}
	uri, err := security.CapsuleURI("astrid", "task")
	if err != nil {
		return security.Action{}, nil, err
	}
	act := security.Action{Kind: security.SubAgent, Resource: uri, Args: raw, Session: s, Summary: "Start a sub-agent: " + clipLine(a.Description, 120)}
	return act, security.ExecutorFunc(func(ctx context.Context, _ security.Action) ([]byte, error) {
		return t.r.runTask(ctx, a)
	}), nil
}

func (r *Runtime) runTask(ctx context.Context, a taskArgs) ([]byte, error) {
	parent := liveFrom(ctx)
	if parent == nil {
		return nil, errors.New("task: no calling session")
	}
	if parent.depth+1 > r.sub.maxDepth {
		return nil, fmt.Errorf("task: sub-agents may nest at most %d deep", r.sub.maxDepth)
	}
	// Queue for a slot rather than failing when all are busy. Nested tasks
	// run inside their ancestor's slot, so a chain of tasks cannot wait on
	// itself.
	if parent.depth == 0 {
		select {
		case r.sub.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-r.sub.slots }()
	}
	ctx, cancel := context.WithTimeout(ctx, r.sub.timeout)
	defer cancel()
	parent.mu.Lock()
	rec := &session.Record{ID: newID("sub-"), Workspace: parent.rec.Workspace, Principal: parent.rec.Principal, Frontend: "subagent",
		Title: a.Description, Mode: parent.rec.Mode, Model: parent.rec.Model, CreatedAt: r.o.Now().UTC()}
	parent.mu.Unlock()
	child := &live{rec: rec, depth: parent.depth + 1, parent: parent}
	start := hooks.Payload{Event: hooks.SubagentStart, SessionID: rec.ID, ParentSessionID: parent.topID(), Workspace: rec.Workspace,
		Description: a.Description, Prompt: a.Prompt, Depth: child.depth}
	if res := r.FireHook(ctx, rec.Workspace, start); res.Blocked() {
		return nil, fmt.Errorf("task %q was refused by %s", a.Description, res.Why())
	}
	sa := events.Subagent{Parent: parent.topID(), Description: a.Description, Depth: child.depth}
	r.emit(events.SubagentSpawned, rec.ID, sa)
	stop := r.runTurn(ctx, child, newID("t-"), a.Prompt)
	sa.StopReason = stop
	switch {
	case stop == StopCancelled:
		r.emit(events.SubagentCancelled, rec.ID, sa)
	case stop == StopError || lastText(child.rec.Messages) == "":
		sa.Error = "the sub-agent ended (" + stop + ") without an answer"
		r.emit(events.SubagentFailed, rec.ID, sa)
	default:
		r.emit(events.SubagentCompleted, rec.ID, sa)
	}
	end := start
	end.Event, end.Prompt, end.StopReason = hooks.SubagentStop, "", stop
	r.FireHook(context.WithoutCancel(ctx), rec.Workspace, end)
	answer := lastText(child.rec.Messages)
	switch {
	case stop == StopCancelled && ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("task %q timed out after %s", a.Description, r.sub.timeout)
	case stop == StopCancelled:
		return nil, fmt.Errorf("task %q was cancelled", a.Description)
	case stop == StopError:
		return nil, fmt.Errorf("task %q failed (see the session's error events)", a.Description)
	case answer == "":
		return nil, fmt.Errorf("task %q ended (%s) without an answer", a.Description, stop)
	}
	return []byte(answer), nil
}

func lastText(msgs []llm.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role != llm.RoleAssistant {
			continue
		}
		var b strings.Builder
		for _, p := range msgs[i].Parts {
			if p.Kind == llm.PartText {
				b.WriteString(p.Text)
			}
		}
		if b.Len() > 0 {
			return b.String()
		}
	}
	return ""
}

// clipLine is s on one line (runs of white space become one space), cut on
// a rune boundary to at most n bytes.
func clipLine(s string, n int) string {
	return audit.Clip(strings.Join(strings.Fields(s), " "), n)
}

// strictJSON decodes one JSON object, refusing unknown fields and trailing
// data.
func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid arguments: %v", err)
	}
	if dec.More() {
		return errors.New("invalid arguments: data after the object")
	}
	return nil
}
