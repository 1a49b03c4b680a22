package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/mcp"
	"github.com/astrid-runtime/astrid/internal/security"
)

// The runtime is the MCP servers' host: it answers their sampling,
// elicitation and roots requests (mcp.Sampler, mcp.Elicitor, mcp.Roots).

// maxSampleTokens bounds what a server may ask the model to write.
const maxSampleTokens = 4096

// Sample implements mcp.Sampler: a server asks the model. The request is a
// human decision (it spends the user's money on a server's prompt): it is
// intercepted as an MCP action that always asks, charged to the session's
// budget, and refused when it belongs to no session.
func (r *Runtime) Sample(ctx context.Context, req mcp.SampleRequest) (mcp.SampleResult, error) {
	if req.Session == "" {
		return mcp.SampleResult{}, errors.New("sampling refused: the request belongs to no session")
	}
	l, err := r.load(ctx, req.Session)
	if err != nil {
		return mcp.SampleResult{}, err
	}
	maxTok := req.MaxTokens
	if maxTok <= 0 || maxTok > maxSampleTokens {
		maxTok = maxSampleTokens
	}
	lreq := &llm.Request{System: req.SystemPrompt, MaxTokens: int64(maxTok), Temperature: req.Temperature}
	var prompt strings.Builder
	for _, m := range req.Messages {
		role := llm.RoleUser
		if m.Role == "assistant" {
			role = llm.RoleAssistant
		}
		lreq.Messages = append(lreq.Messages, llm.Message{Role: role, Parts: []llm.Part{{Kind: llm.PartText, Text: m.Text}}})
		prompt.WriteString(m.Text)
	}
	if len(lreq.Messages) == 0 {
		return mcp.SampleResult{}, errors.New("sampling request without messages")
	}
	// "sampling:create", not "sampling": a tool name never holds ":", so the
	// request cannot be mistaken for a call of a tool named sampling.
	uri, err := security.MCPURI(req.Server, "sampling:create")
	if err != nil {
		return mcp.SampleResult{}, err
	}
	args, _ := json.Marshal(map[string]any{"server": req.Server, "max_tokens": maxTok, "prompt": clipLine(prompt.String(), 500)})
	act := security.Action{Kind: security.MCPTool, Resource: uri, Args: args, Session: l.securitySession(r), AlwaysAsk: true,
		Cost:    r.o.Provider.EstimateCost(lreq),
		Summary: fmt.Sprintf("MCP server %s asks the model (up to %d tokens): %s", req.Server, maxTok, clipLine(prompt.String(), 200))}
	var res mcp.SampleResult
	_, err = r.o.Core.Interceptor.Run(ctx, act, security.ExecutorFunc(func(ctx context.Context, _ security.Action) ([]byte, error) {
		resp, err := llm.Collect(r.o.Provider.Stream(ctx, lreq))
		if err != nil {
			return nil, err
		}
		res = mcp.SampleResult{Text: resp.Text, Model: r.o.Provider.Model(), StopReason: string(resp.StopReason)}
		return []byte(resp.Text), nil
	}))
	return res, err
}

// pendingElicitation waits for a frontend's elicitationResponse.
type pendingElicitation struct {
	session string
	answer  chan mcp.ElicitResult
}

// Elicit implements mcp.Elicitor: the request is shown to the frontends of
// its session (elicitation_needed) and the first answer is returned.
// Without a session, or without an answer within the approval timeout, it
// is declined.
func (r *Runtime) Elicit(ctx context.Context, req mcp.ElicitRequest) (mcp.ElicitResult, error) {
	if req.Session == "" {
		return mcp.ElicitResult{Action: "decline"}, nil
	}
	p := &pendingElicitation{session: req.Session, answer: make(chan mcp.ElicitResult, 1)}
	r.mu.Lock()
	r.elicits[req.ID] = p
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.elicits, req.ID)
		r.mu.Unlock()
	}()
	// NOTE: in URL mode the URL goes to the human only; the model never
	// sees it.
	r.publish(req.Session, api.EventElicitationNeeded, api.ElicitationNeeded{Request: req.ID, Server: req.Server, Mode: req.Mode,
		Message: req.Message, Schema: req.Schema, URL: req.URL, Domain: req.Domain, ElicitationID: req.ElicitationID})
	timeout := 300 * time.Second
	if l, err := r.load(ctx, req.Session); err == nil {
		if prof, err := r.o.Core.Profile(l.rec.Workspace); err == nil && prof.ApprovalTimeout > 0 {
			timeout = prof.ApprovalTimeout
		}
	}
	select {
	case a := <-p.answer:
		return a, nil
	case <-time.After(timeout):
		return mcp.ElicitResult{Action: "decline"}, nil
	case <-ctx.Done():
		return mcp.ElicitResult{Action: "cancel"}, ctx.Err()
	}
}

// AnswerElicitation delivers a frontend's answer; the first one wins.
func (r *Runtime) AnswerElicitation(session, request, action string, content json.RawMessage) error {
	switch action {
	case "accept", "decline", "cancel":
	default:
		return fmt.Errorf("%w: action %q", api.ErrInvalidParams, action)
	}
	var fields map[string]any
	if action == "accept" && len(content) > 0 {
		if err := json.Unmarshal(content, &fields); err != nil {
			return fmt.Errorf("%w: content must be a JSON object", api.ErrInvalidParams)
		}
	}
	r.mu.Lock()
	p, ok := r.elicits[request]
	if ok && p.session == session {
		delete(r.elicits, request)
	}
	r.mu.Unlock()
	if !ok || p.session != session {
		return fmt.Errorf("%w: no elicitation %s is waiting in session %s", api.ErrNotFound, request, session)
	}
	p.answer <- mcp.ElicitResult{Action: action, Content: fields}
	return nil
}

// Roots implements mcp.Roots: the workspaces of the loaded sessions.
func (r *Runtime) Roots(string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, l := range r.sessions {
		if ws := l.rec.Workspace; !seen[ws] {
			seen[ws] = true
			out = append(out, ws)
		}
	}
	return out
}
