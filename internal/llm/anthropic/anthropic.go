// Package anthropic is the llm.Provider for Anthropic's Messages API
// (provider "anthropic", alias "claude"), built on anthropic-sdk-go.
//
// Requests stream (POST /v1/messages with "stream": true). The system prompt
// and the summary of earlier turns travel in the system field, never as
// messages. The prompt cache is used: the last tool definition and the last
// system block carry cache_control {"type":"ephemeral"}, so that tools and
// system prompt are billed at the cache-read price on later turns. Extended
// thinking (Request.ThinkingBudget) streams as reasoning events, and the
// signed thinking blocks go back to the API in later turns.
//
// The SDK builds and sends the request (Messages.NewStreaming). The
// response body, which the SDK hands over through option.WithResponseInto
// before reading any of it, is read here with llm.SSEReader and decoded
// into small structs: the SDK's event union types cost about three times as
// much per delta (see BenchmarkStreamPerDelta). The SDK's own retries are
// off (llm.RetryPolicy retries, and never after the first event reached
// the caller), and it reads nothing from the environment: the key and base
// URL come from llm.Config only.
package anthropic

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"iter"
	"log/slog"
	"strings"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/llm"
)

// DefaultBaseURL is the API endpoint when llm.Config.BaseURL is empty.
const DefaultBaseURL = "https://api.anthropic.com"

// Provider streams from the Messages API. It is safe for concurrent use.
type Provider struct {
	cfg  llm.Config
	msgs sdk.MessageService
	log  *slog.Logger
}

var _ llm.Provider = (*Provider)(nil)

// New returns a Provider for cfg. A base URL ending in /v1 is accepted and
// trimmed (the SDK adds /v1 itself). An API key is required unless the base
// URL is on this machine (a local proxy).
func New(cfg llm.Config) (*Provider, error) {
	cfg, err := cfg.Setup("anthropic", DefaultBaseURL, "ANTHROPIC_API_KEY or model.api_key")
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/v1")
	p := &Provider{cfg: cfg, log: cfg.Logger}
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithHTTPClient(cfg.HTTPClient),
		option.WithMaxRetries(0),
		option.WithMiddleware(llm.ResponseCheck(cfg.Name)),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	p.msgs = sdk.NewMessageService(opts...)
	return p, nil
}

// Name implements llm.Provider.
func (p *Provider) Name() string { return p.cfg.Name }

// Model implements llm.Provider.
func (p *Provider) Model() string { return p.cfg.Model }

// EstimateCost implements llm.Provider (see llm.EstimateCost).
func (p *Provider) EstimateCost(req *llm.Request) budget.Micros {
	return llm.EstimateCost(req, p.cfg.Pricing, p.cfg.MaxTokensFor(req))
}

// Stream implements llm.Provider.
func (p *Provider) Stream(ctx context.Context, req *llm.Request) iter.Seq2[llm.Event, error] {
	return func(yield func(llm.Event, error) bool) {
		params, err := p.params(req)
		if err != nil {
			yield(llm.Event{}, err)
			return
		}
		for ev, err := range p.cfg.Retry.Stream(ctx, p.cfg.Name, func(ctx context.Context) iter.Seq2[llm.Event, error] {
			return p.attempt(ctx, &params)
		}) {
			if !yield(ev, err) {
				return
			}
		}
	}
}

func (p *Provider) badRequest(format string, args ...any) error {
	e := llm.ProtocolError(p.cfg.Name, format, args...)
	e.Kind = llm.KindBadRequest
	return e
}

// params maps an llm.Request to the SDK's request.
func (p *Provider) params(req *llm.Request) (sdk.MessageNewParams, error) {
	params := sdk.MessageNewParams{
		Model:     sdk.Model(p.cfg.Model),
		MaxTokens: p.cfg.MaxTokensFor(req),
	}
	cache := sdk.NewCacheControlEphemeralParam()
	for _, s := range []string{req.System, req.Summary} {
		if s != "" {
			params.System = append(params.System, sdk.TextBlockParam{Text: s})
		}
	}
	if n := len(params.System); n > 0 {
		params.System[n-1].CacheControl = cache
	}
	for i, t := range req.Tools {
		schema, err := inputSchema(t.InputSchema)
		if err != nil {
			return params, p.badRequest("tool %q: input schema: %v", t.Name, err)
		}
		tp := &sdk.ToolParam{Name: t.Name, InputSchema: schema}
		if t.Description != "" {
			tp.Description = sdk.String(t.Description)
		}
		if i == len(req.Tools)-1 {
			tp.CacheControl = cache
		}
		params.Tools = append(params.Tools, sdk.ToolUnionParam{OfTool: tp})
	}
	if req.ThinkingBudget > 0 {
		if req.ThinkingBudget >= params.MaxTokens {
			return params, p.badRequest("thinking budget %d must be below max tokens %d", req.ThinkingBudget, params.MaxTokens)
		}
		params.Thinking = sdk.ThinkingConfigParamOfEnabled(req.ThinkingBudget)
	} else {
		params.Temperature = sdk.Float(p.cfg.TemperatureFor(req))
	}
	for i, m := range req.Messages {
		var blocks []sdk.ContentBlockParamUnion
		for _, part := range m.Parts {
			b, ok, err := p.block(m.Role, part)
			if err != nil {
				return params, p.badRequest("message %d: %v", i, err)
			}
			if ok {
				blocks = append(blocks, b)
			}
		}
		if len(blocks) == 0 {
			return params, p.badRequest("message %d (%s) has no content", i, m.Role)
		}
		switch m.Role {
		case llm.RoleUser:
			params.Messages = append(params.Messages, sdk.NewUserMessage(blocks...))
		case llm.RoleAssistant:
			params.Messages = append(params.Messages, sdk.NewAssistantMessage(blocks...))
		default:
			return params, p.badRequest("message %d: unknown role %q", i, m.Role)
		}
	}
	return params, nil
}

var errPart = errors.New("part has no content for its kind")

// block maps one part; ok is false for a part the API does not take back
// (unsigned reasoning, empty text).
func (p *Provider) block(role llm.Role, part llm.Part) (b sdk.ContentBlockParamUnion, ok bool, err error) {
	switch part.Kind {
	case llm.PartText:
		if part.Text == "" {
			return b, false, nil
		}
		return sdk.NewTextBlock(part.Text), true, nil
	case llm.PartImage:
		if part.Image == nil || role != llm.RoleUser {
			return b, false, errPart
		}
		return sdk.NewImageBlockBase64(part.Image.MediaType, base64.StdEncoding.EncodeToString(part.Image.Data)), true, nil
	case llm.PartReasoning:
		switch {
		case part.Redacted != "":
			return sdk.NewRedactedThinkingBlock(part.Redacted), true, nil
		case part.Signature != "":
			return sdk.NewThinkingBlock(part.Signature, part.Text), true, nil
		}
		return b, false, nil // the API refuses unsigned thinking
	case llm.PartToolCall:
		if part.ToolCall == nil || role != llm.RoleAssistant {
			return b, false, errPart
		}
		args := part.ToolCall.Arguments
		if len(args) == 0 {
			args = json.RawMessage("{}")
		}
		return sdk.NewToolUseBlock(part.ToolCall.ID, args, part.ToolCall.Name), true, nil
	case llm.PartToolResult:
		if part.ToolResult == nil || role != llm.RoleUser {
			return b, false, errPart
		}
		r := part.ToolResult
		tb := &sdk.ToolResultBlockParam{ToolUseID: r.CallID}
		if r.Content != "" {
			tb.Content = []sdk.ToolResultBlockParamContentUnion{{OfText: &sdk.TextBlockParam{Text: r.Content}}}
		}
		if r.IsError {
			tb.IsError = sdk.Bool(true)
		}
		return sdk.ContentBlockParamUnion{OfToolResult: tb}, true, nil
	}
	return b, false, errPart
}

// inputSchema splits a JSON Schema object into the SDK's fields.
func inputSchema(raw json.RawMessage) (sdk.ToolInputSchemaParam, error) {
	s := sdk.ToolInputSchemaParam{Properties: map[string]any{}}
	if len(raw) == 0 {
		return s, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return s, err
	}
	if t, ok := m["type"]; ok && t != "object" {
		return s, errors.New(`type must be "object"`)
	}
	delete(m, "type")
	if props, ok := m["properties"]; ok {
		s.Properties = props
		delete(m, "properties")
	}
	if req, ok := m["required"].([]any); ok {
		for _, r := range req {
			if name, ok := r.(string); ok {
				s.Required = append(s.Required, name)
			}
		}
		delete(m, "required")
	}
	if len(m) > 0 {
		s.ExtraFields = m
	}
	return s, nil
}
