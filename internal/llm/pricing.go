package llm

import (
	"math"
	"strings"

	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/config"
)

// Pricing is a model's price in US dollars per million tokens.
type Pricing struct {
	InputPerMTok      float64
	OutputPerMTok     float64
	CacheReadPerMTok  float64
	CacheWritePerMTok float64
	// Source says where the price came from: "config", "builtin", "local"
	// (a server on this machine, free) or "fallback" (an unknown remote
	// model, priced high on purpose so the budget overestimates).
	Source string
}

// FallbackPricing prices a remote model that neither the configuration nor
// the built-in table knows: the most expensive current model, so that an
// unknown model can never slip under a budget.
var FallbackPricing = Pricing{InputPerMTok: 15, OutputPerMTok: 75, CacheReadPerMTok: 15, CacheWritePerMTok: 18.75, Source: "fallback"}

// builtinPricing holds list prices (USD per MTok) for current models.
// Anthropic: cache read 0.1× input, cache write (5 minutes) 1.25× input.
// OpenAI and Z.AI bill no cache writes; cached input at their listed rate.
var builtinPricing = map[string]Pricing{
	"claude-opus-4-5":   {5, 25, 0.5, 6.25, ""},
	"claude-opus-4-1":   {15, 75, 1.5, 18.75, ""},
	"claude-opus-4":     {15, 75, 1.5, 18.75, ""},
	"claude-sonnet-4-5": {3, 15, 0.3, 3.75, ""},
	"claude-sonnet-4":   {3, 15, 0.3, 3.75, ""},
	"claude-3-7-sonnet": {3, 15, 0.3, 3.75, ""},
	"claude-haiku-4-5":  {1, 5, 0.1, 1.25, ""},
	"claude-3-5-haiku":  {0.8, 4, 0.08, 1, ""},
	"gpt-4.1":           {2, 8, 0.5, 0, ""},
	"gpt-4.1-mini":      {0.4, 1.6, 0.1, 0, ""},
	"gpt-4.1-nano":      {0.1, 0.4, 0.025, 0, ""},
	"gpt-4o":            {2.5, 10, 1.25, 0, ""},
	"gpt-4o-mini":       {0.15, 0.6, 0.075, 0, ""},
	"gpt-5":             {1.25, 10, 0.125, 0, ""},
	"gpt-5-mini":        {0.25, 2, 0.025, 0, ""},
	"gpt-5-nano":        {0.05, 0.4, 0.005, 0, ""},
	"o3":                {2, 8, 0.5, 0, ""},
	"o4-mini":           {1.1, 4.4, 0.275, 0, ""},
	"glm-4.6":           {0.6, 2.2, 0.11, 0, ""},
	"glm-4.5":           {0.6, 2.2, 0.11, 0, ""},
	"glm-4.5-air":       {0.2, 1.1, 0.03, 0, ""},
}

// LookupPricing finds the price of model:
//
//  1. configured, an entry of [model.pricing] named exactly model. Cache
//     prices left at 0 while the input price is not are filled in
//     conservatively: cache reads at the full input price, cache writes at
//     1.25× input;
//  2. built-in, the table above, by exact name or else by the longest name
//     that model starts with followed by "-" (so dated snapshots such as
//     claude-sonnet-4-5-20250929 find claude-sonnet-4-5);
//  3. local: when the server is on this machine, the model is free;
//  4. otherwise FallbackPricing.
func LookupPricing(configured map[string]config.Pricing, model string, local bool) Pricing {
	if c, ok := configured[model]; ok {
		p := Pricing{InputPerMTok: c.InputPerMTok, OutputPerMTok: c.OutputPerMTok,
			CacheReadPerMTok: c.CacheReadPerMTok, CacheWritePerMTok: c.CacheWritePerMTok, Source: "config"}
		if p.CacheReadPerMTok == 0 {
			p.CacheReadPerMTok = p.InputPerMTok
		}
		if p.CacheWritePerMTok == 0 {
			p.CacheWritePerMTok = p.InputPerMTok * 1.25
		}
		return p
	}
	if p, ok := builtinPricing[model]; ok {
		p.Source = "builtin"
		return p
	}
	best := ""
	for name := range builtinPricing {
		if len(name) > len(best) && strings.HasPrefix(model, name+"-") {
			best = name
		}
	}
	if best != "" {
		p := builtinPricing[best]
		p.Source = "builtin"
		return p
	}
	if local {
		return Pricing{Source: "local"}
	}
	return FallbackPricing
}

// Cost prices u. One token at $1 per MTok is one micro-dollar, so the cost
// in micros is the sum of tokens times dollars per MTok, rounded up.
func (p Pricing) Cost(u Usage) budget.Micros {
	c := float64(u.InputTokens)*p.InputPerMTok +
		float64(u.OutputTokens)*p.OutputPerMTok +
		float64(u.CacheReadTokens)*p.CacheReadPerMTok +
		float64(u.CacheWriteTokens)*p.CacheWritePerMTok
	return budget.Micros(math.Ceil(c))
}

// imageTokens is the estimate for one image: Anthropic bills about
// width×height/750 tokens and scales large images down to about 1.15
// megapixels, so about 1,600 tokens at most.
const imageTokens = 1600

// EstimateTokens estimates the input tokens of req: its characters divided
// by four (bytes of UTF-8, rounded up; close for English and code, low for
// scripts with many bytes per token), plus 1,600 per image. Tool
// definitions and tool call arguments count as their JSON text.
func EstimateTokens(req *Request) int64 {
	n := len(req.System) + len(req.Summary)
	for _, t := range req.Tools {
		n += len(t.Name) + len(t.Description) + len(t.InputSchema)
	}
	images := 0
	for _, m := range req.Messages {
		for _, p := range m.Parts {
			n += len(p.Text) + len(p.Signature) + len(p.Redacted)
			if p.ToolCall != nil {
				n += len(p.ToolCall.ID) + len(p.ToolCall.Name) + len(p.ToolCall.Arguments)
			}
			if p.ToolResult != nil {
				n += len(p.ToolResult.CallID) + len(p.ToolResult.Content)
			}
			if p.Image != nil {
				images++
			}
		}
	}
	return int64((n+3)/4) + int64(images)*imageTokens
}

// textTokens estimates the tokens of generated text the same way.
func textTokens(s string) int64 {
	return int64((len(s) + 3) / 4)
}

// EstimateCost is the budget reservation for req: the estimated input
// tokens (EstimateTokens) at the higher of the input and cache-write price
// (the prompt may be written to the cache), plus maxTokens of output (the
// request's MaxTokens, or defaultMaxTokens when it is zero) at the output
// price. The real cost, reported in EventUsage, is never more unless the
// estimate of the input is low.
func EstimateCost(req *Request, p Pricing, defaultMaxTokens int64) budget.Micros {
	out := req.MaxTokens
	if out <= 0 {
		out = defaultMaxTokens
	}
	in := EstimateTokens(req)
	c := float64(in)*max(p.InputPerMTok, p.CacheWritePerMTok) + float64(out)*p.OutputPerMTok
	return budget.Micros(math.Ceil(c))
}

// EstimateUsage fills in a Usage for a response whose server reported none:
// the request's estimated input and the generated text's estimated output,
// marked Estimated.
func EstimateUsage(req *Request, generated string, p Pricing) Usage {
	u := Usage{InputTokens: EstimateTokens(req), OutputTokens: textTokens(generated), Estimated: true}
	u.Cost = p.Cost(u)
	return u
}
