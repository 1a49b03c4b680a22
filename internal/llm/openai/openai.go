// Package openai is the llm.Provider for OpenAI-compatible chat completion
// servers, built on openai-go: OpenAI itself, and local servers such as
// Ollama (http://127.0.0.1:11434/v1), vLLM, LM Studio and llama.cpp's
// server. The "zai" flavour talks to Z.AI's GLM models through their
// OpenAI-compatible endpoint and streams their reasoning_content.
//
// Requests stream (POST {base}/chat/completions with "stream": true and
// stream_options.include_usage, so the last chunk carries the token counts;
// Z.AI sends them unasked).
// The system prompt and the summary of earlier turns are the first two
// system messages. Tool results become "tool" messages, placed right after
// the assistant message that called them; a failed tool's result is
// prefixed with "Error: ", since the format has no error flag. Reasoning
// parts of earlier assistant turns are not sent back.
//
// No API key is needed when the base URL is on this machine (Ollama and
// friends); none is sent then unless one is configured. Servers on this
// machine cost nothing unless [model.pricing] says otherwise.
//
// The SDK builds and sends the request (Chat.Completions.NewStreaming); the
// response body, handed over through option.WithResponseInto before the SDK
// reads any of it, is read here with llm.SSEReader and decoded into small
// structs, which is several times cheaper per delta than the SDK's chunk
// type and sees the reasoning fields and the final "[DONE]" directly. The
// SDK's own retries are off and it reads nothing from the environment.
package openai

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"iter"
	"log/slog"
	"net/url"
	"strings"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/llm"
)

// The default endpoints of the two flavours.
const (
	DefaultBaseURL    = "https://api.openai.com/v1"
	DefaultZAIBaseURL = "https://api.z.ai/api/paas/v4"
)

// Provider streams chat completions. It is safe for concurrent use.
type Provider struct {
	cfg  llm.Config
	zai  bool
	real bool // the base URL is OpenAI's own API
	chat sdk.ChatCompletionService
	log  *slog.Logger
}

var _ llm.Provider = (*Provider)(nil)

// New returns a Provider for cfg. cfg.Name selects the flavour: "zai" for
// Z.AI, anything else (default "openai") for a generic OpenAI-compatible
// server. An API key is required unless the base URL is on this machine.
func New(cfg llm.Config) (*Provider, error) {
	zai := cfg.Name == "zai"
	base, keyHint := DefaultBaseURL, "OPENAI_API_KEY or model.api_key"
	if zai {
		base, keyHint = DefaultZAIBaseURL, "ZAI_API_KEY or model.api_key"
	}
	cfg, err := cfg.Setup("openai", base, keyHint)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.BaseURL) // checked by Setup
	p := &Provider{cfg: cfg, zai: zai, real: u.Host == "api.openai.com", log: cfg.Logger}
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithHTTPClient(cfg.HTTPClient),
		option.WithMaxRetries(0),
		option.WithMiddleware(llm.ResponseCheck(cfg.Name)),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	// The service alone, not sdk.NewClient: the client would read
	// OPENAI_API_KEY and friends from the environment and could send an
	// OpenAI key to another server.
	p.chat = sdk.NewChatCompletionService(opts...)
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
		params, opts, err := p.params(req)
		if err != nil {
			yield(llm.Event{}, err)
			return
		}
		for ev, err := range p.cfg.Retry.Stream(ctx, p.cfg.Name, func(ctx context.Context) iter.Seq2[llm.Event, error] {
			return p.attempt(ctx, req, &params, opts)
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

// reasoningModel reports OpenAI models that refuse a temperature.
func (p *Provider) reasoningModel() bool {
	m := p.cfg.Model
	return p.real && (strings.HasPrefix(m, "o1") || strings.HasPrefix(m, "o3") || strings.HasPrefix(m, "o4") || strings.HasPrefix(m, "gpt-5"))
}

// params maps an llm.Request to the SDK's request.
func (p *Provider) params(req *llm.Request) (sdk.ChatCompletionNewParams, []option.RequestOption, error) {
	params := sdk.ChatCompletionNewParams{Model: p.cfg.Model}
	if !p.zai {
		// Z.AI puts the usage on the finishing chunk without being asked.
		params.StreamOptions = sdk.ChatCompletionStreamOptionsParam{IncludeUsage: sdk.Bool(true)}
	}
	var opts []option.RequestOption
	if p.real {
		params.MaxCompletionTokens = sdk.Int(p.cfg.MaxTokensFor(req))
	} else {
		params.MaxTokens = sdk.Int(p.cfg.MaxTokensFor(req))
	}
	if !p.reasoningModel() {
		params.Temperature = sdk.Float(p.cfg.TemperatureFor(req))
	}
	if p.zai && req.ThinkingBudget > 0 {
		opts = append(opts, option.WithJSONSet("thinking", map[string]string{"type": "enabled"}))
	}
	for _, s := range []string{req.System, req.Summary} {
		if s != "" {
			params.Messages = append(params.Messages, sdk.SystemMessage(s))
		}
	}
	for _, t := range req.Tools {
		fn := sdk.FunctionDefinitionParam{Name: t.Name, Parameters: sdk.FunctionParameters{"type": "object", "properties": map[string]any{}}}
		if t.Description != "" {
			fn.Description = sdk.String(t.Description)
		}
		if len(t.InputSchema) > 0 {
			var schema map[string]any
			if err := json.Unmarshal(t.InputSchema, &schema); err != nil {
				return params, nil, p.badRequest("tool %q: input schema: %v", t.Name, err)
			}
			fn.Parameters = schema
		}
		params.Tools = append(params.Tools, sdk.ChatCompletionFunctionTool(fn))
	}
	for i, m := range req.Messages {
		msgs, err := p.messages(m)
		if err != nil {
			return params, nil, p.badRequest("message %d: %v", i, err)
		}
		params.Messages = append(params.Messages, msgs...)
	}
	return params, opts, nil
}

// messages maps one message; a user message with tool results becomes
// "tool" messages first, then the rest of its content.
func (p *Provider) messages(m llm.Message) ([]sdk.ChatCompletionMessageParamUnion, error) {
	switch m.Role {
	case llm.RoleUser:
		var out []sdk.ChatCompletionMessageParamUnion
		var parts []sdk.ChatCompletionContentPartUnionParam
		var texts []string
		hasImage := false
		for _, part := range m.Parts {
			switch {
			case part.Kind == llm.PartToolResult && part.ToolResult != nil:
				content := part.ToolResult.Content
				if part.ToolResult.IsError {
					content = "Error: " + content
				}
				out = append(out, sdk.ToolMessage(content, part.ToolResult.CallID))
			case part.Kind == llm.PartText:
				if part.Text != "" {
					parts = append(parts, sdk.TextContentPart(part.Text))
					texts = append(texts, part.Text)
				}
			case part.Kind == llm.PartImage && part.Image != nil:
				hasImage = true
				parts = append(parts, sdk.ImageContentPart(sdk.ChatCompletionContentPartImageImageURLParam{
					URL: "data:" + part.Image.MediaType + ";base64," + base64.StdEncoding.EncodeToString(part.Image.Data),
				}))
			default:
				return nil, errors.New("a user message holds only text, images and tool results")
			}
		}
		switch {
		case len(parts) == 1 && !hasImage:
			out = append(out, sdk.UserMessage(texts[0]))
		case len(parts) > 0:
			out = append(out, sdk.UserMessage(parts))
		}
		if len(out) == 0 {
			return nil, errors.New("user message has no content")
		}
		return out, nil
	case llm.RoleAssistant:
		a := &sdk.ChatCompletionAssistantMessageParam{}
		var text strings.Builder
		for _, part := range m.Parts {
			switch {
			case part.Kind == llm.PartText:
				text.WriteString(part.Text)
			case part.Kind == llm.PartReasoning:
				// Not sent back: the chat completions format has no place for it.
			case part.Kind == llm.PartToolCall && part.ToolCall != nil:
				args := string(part.ToolCall.Arguments)
				if args == "" {
					args = "{}"
				}
				a.ToolCalls = append(a.ToolCalls, sdk.ChatCompletionMessageToolCallUnionParam{
					OfFunction: &sdk.ChatCompletionMessageFunctionToolCallParam{
						ID:       part.ToolCall.ID,
						Function: sdk.ChatCompletionMessageFunctionToolCallFunctionParam{Name: part.ToolCall.Name, Arguments: args},
					},
				})
			default:
				return nil, errors.New("an assistant message holds only text, reasoning and tool calls")
			}
		}
		if text.Len() > 0 {
			a.Content.OfString = sdk.String(text.String())
		}
		if text.Len() == 0 && len(a.ToolCalls) == 0 {
			return nil, errors.New("assistant message has no content")
		}
		return []sdk.ChatCompletionMessageParamUnion{{OfAssistant: a}}, nil
	}
	return nil, errors.New("unknown role " + string(m.Role))
}

// mapError maps an error of the request or of reading the body.
func (p *Provider) mapError(ctx context.Context, err error) error {
	e := llm.FromStream(ctx, p.cfg.Name, err)
	if p.zai && e.Status == 400 && strings.Contains(e.Message, "Unknown Model") {
		e.Kind = llm.KindNotFound // Z.AI answers an unknown model with 400, code 1211
	}
	return e
}
