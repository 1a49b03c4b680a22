package capsule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/sdk"
)

// ProviderPrefix starts a model.provider value that names a capsule's
// [[llm_provider]]: "capsule:<capsule id>/<provider name>".
const ProviderPrefix = "capsule:"

// maxToolCalls bounds the tool calls of one capsule model turn.
const maxToolCalls = 64

// Provider is an [[llm_provider]] of a capsule as an llm.Provider. It
// finds the capsule at each request, so it can be configured before the
// capsule loads (and keeps working across reloads); until the Manager is
// attached, or while the capsule is not loaded, requests fail.
//
// The capsule proposes like any model: its text and tool calls go back to
// the runtime, and every tool call is judged by the interceptor in the
// session that asked. The completion call itself is the capsule action
// capsule://<id>/llm.<name> (covered by the install token, audited) in
// ModelSession(id): host calls the capsule makes while it thinks act
// there, with no workspace and nobody to ask.
type Provider struct {
	id, name, model string
	m               atomic.Pointer[Manager]
}

var _ llm.Provider = (*Provider)(nil)

// ParseProvider parses a "capsule:<id>/<name>" model.provider value; model
// is model.model, passed to the capsule.
func ParseProvider(spec, model string) (*Provider, error) {
	rest, ok := strings.CutPrefix(spec, ProviderPrefix)
	id, name, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || id == "" || name == "" || strings.ContainsAny(name, "/") {
		return nil, fmt.Errorf("model.provider %q: want %s<capsule id>/<llm_provider name>", spec, ProviderPrefix)
	}
	if _, err := security.CapsuleURI(id, "llm."+name); err != nil {
		return nil, fmt.Errorf("model.provider %q: %v", spec, err)
	}
	return &Provider{id: id, name: name, model: model}, nil
}

// Attach sets the Manager whose capsules serve requests.
func (p *Provider) Attach(m *Manager) { p.m.Store(m) }

// Name implements llm.Provider.
func (p *Provider) Name() string { return ProviderPrefix + p.id + "/" + p.name }

// Model implements llm.Provider.
func (p *Provider) Model() string { return p.model }

// EstimateCost implements llm.Provider: a capsule model costs nothing.
func (p *Provider) EstimateCost(*llm.Request) budget.Micros { return 0 }

// ModelSession is the session a capsule's model calls act in: no
// workspace, safe mode, nobody to ask.
func ModelSession(id string) security.Session {
	return security.Session{ID: "capsule:" + id + ":model", Principal: "capsule:" + id, Frontend: "model", Mode: security.Safe}
}

func (p *Provider) fail(kind llm.ErrorKind, format string, args ...any) error {
	return &llm.Error{Provider: p.Name(), Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Stream implements llm.Provider. The capsule answers in one piece; the
// stream replays it as events.
func (p *Provider) Stream(ctx context.Context, req *llm.Request) iter.Seq2[llm.Event, error] {
	return func(yield func(llm.Event, error) bool) {
		resp, err := p.complete(ctx, req)
		if err != nil {
			yield(llm.Event{}, err)
			return
		}
		if resp.Text != "" && !yield(llm.Event{Kind: llm.EventText, Text: resp.Text}, nil) {
			return
		}
		for i, tc := range resp.ToolCalls {
			call := llm.ToolCall{ID: tc.ID, Name: tc.Name}
			if !yield(llm.Event{Kind: llm.EventToolCallStart, Index: i, ToolCall: call}, nil) {
				return
			}
			call.Arguments = tc.Arguments
			if !yield(llm.Event{Kind: llm.EventToolCallEnd, Index: i, ToolCall: call}, nil) {
				return
			}
		}
		if !yield(llm.Event{Kind: llm.EventUsage, Usage: llm.Usage{InputTokens: resp.InputTokens, OutputTokens: resp.OutputTokens}}, nil) {
			return
		}
		yield(llm.Event{Kind: llm.EventStop, StopReason: llm.StopReason(resp.StopReason)}, nil)
	}
}

// complete calls the capsule and checks its answer: a bad answer is an
// error, never a partial turn.
func (p *Provider) complete(ctx context.Context, req *llm.Request) (sdk.CompletionResponse, error) {
	var resp sdk.CompletionResponse
	m := p.m.Load()
	if m == nil {
		return resp, p.fail(llm.KindNotFound, "the capsule runtime is not running")
	}
	c, ok := m.Capsule(p.id)
	if !ok {
		return resp, p.fail(llm.KindNotFound, "capsule %s is not loaded", p.id)
	}
	if !c.servesProvider(p.name) {
		return resp, p.fail(llm.KindBadRequest, "capsule %s declares no [[llm_provider]] %q", p.id, p.name)
	}
	input, err := json.Marshal(completionRequest(req, p.model))
	if err != nil {
		return resp, p.fail(llm.KindBadRequest, "%v", err)
	}
	a, err := capsuleAction(p.id, ModelSession(p.id), "llm."+p.name, map[string]int{"messages": len(req.Messages), "bytes": len(input)}, "model "+p.name)
	if err != nil {
		return resp, p.fail(llm.KindBadRequest, "%v", err)
	}
	out, err := m.ic.Run(ctx, a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return c.call(ctx, a.Session, sdk.KindComplete, p.name, input)
	}))
	if err != nil {
		var ge *GuestError
		if errors.As(err, &ge) {
			return resp, p.fail(llm.KindServer, "capsule %s: %s", p.id, clipString(ge.Msg, 512))
		}
		return resp, p.fail(llm.KindServer, "%v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil {
		return resp, p.fail(llm.KindProtocol, "capsule %s answered with a malformed completion: %v", p.id, err)
	}
	return resp, p.check(&resp)
}

// check validates a completion and fills in what may be left out.
func (p *Provider) check(r *sdk.CompletionResponse) error {
	if len(r.ToolCalls) > maxToolCalls {
		return p.fail(llm.KindServer, "capsule %s proposed %d tool calls, more than %d", p.id, len(r.ToolCalls), maxToolCalls)
	}
	seen := map[string]bool{}
	for i := range r.ToolCalls {
		tc := &r.ToolCalls[i]
		var obj map[string]json.RawMessage
		if tc.Name == "" || json.Unmarshal(tc.Arguments, &obj) != nil || obj == nil {
			return p.fail(llm.KindProtocol, "capsule %s: tool call %d: want a name and a JSON object of arguments", p.id, i+1)
		}
		if tc.ID == "" {
			tc.ID = "call_" + strconv.Itoa(i+1)
		}
		if seen[tc.ID] {
			return p.fail(llm.KindServer, "capsule %s: tool call id %q used twice", p.id, tc.ID)
		}
		seen[tc.ID] = true
	}
	if r.InputTokens < 0 || r.OutputTokens < 0 {
		return p.fail(llm.KindServer, "capsule %s: negative token counts", p.id)
	}
	switch r.StopReason {
	case "":
		r.StopReason = string(llm.StopEndTurn)
		if len(r.ToolCalls) > 0 {
			r.StopReason = string(llm.StopToolUse)
		}
	case string(llm.StopEndTurn), string(llm.StopToolUse), string(llm.StopMaxTokens):
	default:
		return p.fail(llm.KindServer, "capsule %s: stop reason %q: want end_turn, tool_use or max_tokens", p.id, clipString(r.StopReason, 32))
	}
	return nil
}

// completionRequest converts a request to the SDK's form. Images and
// reasoning are not passed on.
func completionRequest(req *llm.Request, model string) sdk.CompletionRequest {
	out := sdk.CompletionRequest{Model: model, System: req.System, MaxTokens: req.MaxTokens, Messages: []sdk.CompletionMessage{}}
	if req.Summary != "" {
		out.System = strings.TrimSpace(out.System + "\n\n" + req.Summary)
	}
	for _, t := range req.Tools {
		out.Tools = append(out.Tools, sdk.CompletionTool{Name: t.Name, Description: t.Description, InputSchema: t.InputSchema})
	}
	for _, msg := range req.Messages {
		cm := sdk.CompletionMessage{Role: string(msg.Role)}
		var text []string
		for _, part := range msg.Parts {
			switch part.Kind {
			case llm.PartText:
				text = append(text, part.Text)
			case llm.PartToolCall:
				cm.ToolCalls = append(cm.ToolCalls, sdk.CompletionToolCall{ID: part.ToolCall.ID, Name: part.ToolCall.Name, Arguments: part.ToolCall.Arguments})
			case llm.PartToolResult:
				r := part.ToolResult
				cm.ToolResults = append(cm.ToolResults, sdk.CompletionToolResult{CallID: r.CallID, Content: r.Content, IsError: r.IsError})
			}
		}
		cm.Text = strings.Join(text, "\n")
		out.Messages = append(out.Messages, cm)
	}
	return out
}

// servesProvider reports whether the capsule declares the provider.
func (c *Capsule) servesProvider(name string) bool {
	for _, d := range c.man.LLMProviders {
		if d.Name == name {
			return true
		}
	}
	return false
}
