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
	"github.com/astrid-runtime/astrid/internal/approval"
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
// budget, and refused when it belongs to no session. The human is asked
// through a form in which the prompt and the token limit can be edited
// (samplingAsker); what runs is what the human accepted.
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
	sess := l.securitySession(r)
	ask := &samplingAsker{r: r, server: req.Server, session: req.Session, by: sess.Principal, req: lreq, maxTokens: maxTok}
	sess.Asker = ask
	act := security.Action{Kind: security.MCPTool, Resource: uri, Args: args, Session: sess, AlwaysAsk: true,
		Cost:    r.o.Provider.EstimateCost(lreq),
		Summary: fmt.Sprintf("MCP server %s asks the model (up to %d tokens): %s", req.Server, maxTok, clipLine(prompt.String(), 200))}
	var res mcp.SampleResult
	_, err = r.o.Core.Interceptor.Run(ctx, act, security.ExecutorFunc(func(ctx context.Context, _ security.Action) ([]byte, error) {
		resp, err := llm.Collect(r.o.Provider.Stream(ctx, ask.accepted()))
		if err != nil {
			return nil, err
		}
		res = mcp.SampleResult{Text: resp.Text, Model: r.o.Provider.Model(), StopReason: string(resp.StopReason)}
		return []byte(resp.Text), nil
	}))
	return res, err
}

// maxPromptGrowth is how much longer than the server's an edited prompt
// may be: the budget was reserved for the request as asked.
const maxPromptGrowth = 2048

// samplingAsker is the approval.Asker of one sampling request: it shows the
// session's frontends a form (elicitation_needed, from the server) with
// the last user message of the request and the token limit, both
// editable. Accept allows this one request, as edited; decline or cancel
// denies it; no answer within the approval timeout is an error, so the
// interceptor defers it (never allowed). An edit that is not valid (an
// empty or much longer prompt, a token limit above the server's) is a
// denial.
type samplingAsker struct {
	r               *Runtime
	server, session string
	by              string
	req             *llm.Request
	maxTokens       int

	mu     sync.Mutex
	edited *llm.Request // guarded by mu; the request as the human accepted it
}

// lastUser is the index of the last user message.
func lastUser(req *llm.Request) int {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == llm.RoleUser {
			return i
		}
	}
	return -1
}

func (a *samplingAsker) Ask(ctx context.Context, q approval.Request) (approval.Answer, error) {
	i := lastUser(a.req)
	if i < 0 {
		return approval.Answer{Decision: approval.Deny, Reason: "the request has no user message to answer", By: "astrid"}, nil
	}
	prompt := a.req.Messages[i].Parts[0].Text
	// The prompt first: a form shows the properties in their order.
	promptProp, _ := json.Marshal(map[string]any{"type": "string", "title": "Prompt for the model (you may edit it)", "default": prompt})
	tokensProp, _ := json.Marshal(map[string]any{"type": "integer", "title": "At most this many tokens", "minimum": 1, "maximum": a.maxTokens, "default": a.maxTokens})
	schema := fmt.Appendf(nil, `{"type":"object","properties":{"prompt":%s,"max_tokens":%s},"required":["prompt","max_tokens"]}`, promptProp, tokensProp)
	msg := fmt.Sprintf("MCP server %s asks the model to answer a prompt, up to %d tokens, charged to this session's budget. Accept to send it as shown or as you edit it; decline to refuse.", a.server, a.maxTokens)
	if i > 0 {
		msg += fmt.Sprintf(" (%d earlier messages of the server's conversation go with it.)", i)
	}
	res, err := a.r.askFrontend(ctx, mcp.ElicitRequest{ID: q.ID, Server: a.server, Session: a.session, Mode: "form", Message: msg, Schema: schema, Sampling: true})
	if err != nil {
		return approval.Answer{}, err // no answer: deferred, never allowed
	}
	ans := approval.Answer{Decision: approval.Deny, By: a.by, Frontend: "elicitation"}
	if res.Action != "accept" {
		ans.Reason = "the human chose " + res.Action
		return ans, nil
	}
	p, _ := res.Content["prompt"].(string)
	n, ok := res.Content["max_tokens"].(float64)
	switch {
	case strings.TrimSpace(p) == "":
		ans.Reason = "the edited prompt is empty"
	case len(p) > len(prompt)+maxPromptGrowth:
		ans.Reason = fmt.Sprintf("the edited prompt is more than %d bytes longer than the server's", maxPromptGrowth)
	case !ok || n != float64(int(n)) || n < 1 || int(n) > a.maxTokens:
		ans.Reason = fmt.Sprintf("max_tokens must be a whole number from 1 to %d", a.maxTokens)
	default:
		edited := *a.req
		edited.Messages = append([]llm.Message(nil), a.req.Messages...)
		edited.Messages[i] = llm.Message{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: p}}}
		edited.MaxTokens = int64(n)
		a.mu.Lock()
		a.edited = &edited
		a.mu.Unlock()
		ans.Decision = approval.AllowOnce
		if p != prompt || int(n) != a.maxTokens {
			ans.Reason = "accepted as edited by the human"
		}
	}
	return ans, nil
}

// PresentsRequests implements approval.Presenter: the request reaches the
// frontends as the form, not as an approval prompt.
func (a *samplingAsker) PresentsRequests() {}

// accepted is the request to send: as the human accepted it.
func (a *samplingAsker) accepted() *llm.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.edited != nil {
		return a.edited
	}
	return a.req
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
	timeout := 300 * time.Second
	if l, err := r.load(ctx, req.Session); err == nil {
		if prof, err := r.o.Core.Profile(l.rec.Workspace); err == nil && prof.ApprovalTimeout > 0 {
			timeout = prof.ApprovalTimeout
		}
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := r.askFrontend(tctx, req)
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil:
		return mcp.ElicitResult{Action: "cancel"}, ctx.Err()
	default:
		return mcp.ElicitResult{Action: "decline"}, nil
	}
}

// errNoAnswer is askFrontend's error when ctx ended before an answer.
var errNoAnswer = errors.New("no answer from the session's frontends")

// askFrontend shows an elicitation to the frontends of its session and
// waits for the first answer, until ctx ends.
func (r *Runtime) askFrontend(ctx context.Context, req mcp.ElicitRequest) (mcp.ElicitResult, error) {
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
		Message: req.Message, Schema: req.Schema, URL: req.URL, Domain: req.Domain, ElicitationID: req.ElicitationID, Sampling: req.Sampling})
	select {
	case a := <-p.answer:
		return a, nil
	case <-ctx.Done():
		return mcp.ElicitResult{}, fmt.Errorf("%w: %v", errNoAnswer, ctx.Err())
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
