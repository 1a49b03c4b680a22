// Package providers builds the llm.Provider that the [model] configuration
// names. It is the only package that imports every provider (and so both
// SDKs); code that only needs the llm types should not import it.
//
//	p, err := providers.New(cfg.Model, cfg.Retry, providers.WithLogger(log))
//	if errors.Is(err, llm.ErrNoAPIKey) {
//		if models, ok := llm.DetectOllama(ctx, ""); ok {
//			// offer providers.Ollama(cfg.Model, models[0])
//		}
//	}
package providers

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/llm/anthropic"
	"github.com/astrid-runtime/astrid/internal/llm/openai"
	"github.com/astrid-runtime/astrid/internal/llm/replay"
)

// Names lists the accepted values of model.provider.
var Names = []string{"anthropic", "claude", "openai", "zai", "replay"}

// Option adjusts New.
type Option func(*llm.Config)

// WithHTTPClient sends the provider's requests through c (tests, proxies).
func WithHTTPClient(c *http.Client) Option { return func(cfg *llm.Config) { cfg.HTTPClient = c } }

// WithLogger sets the logger for the provider's warnings.
func WithLogger(l *slog.Logger) Option { return func(cfg *llm.Config) { cfg.Logger = l } }

// New returns the provider m names:
//
//   - anthropic (alias claude): the Anthropic Messages API;
//   - openai: any OpenAI-compatible server at api_url (OpenAI by default;
//     a server on this machine needs no key and is priced at $0 unless
//     [model.pricing] names the model);
//   - zai: Z.AI's GLM models;
//   - replay: the transcript file that api_url names (a path or a file://
//     URL); never chosen unless configured.
//
// Prices come from m.Pricing, then the built-in table (llm.LookupPricing).
// A missing API key is an *llm.Error wrapping llm.ErrNoAPIKey.
func New(m config.Model, retry config.Retry, opts ...Option) (llm.Provider, error) {
	cfg := llm.Config{
		Model:       m.Model,
		APIKey:      m.APIKey,
		BaseURL:     m.APIURL,
		MaxTokens:   m.MaxTokens,
		Temperature: m.Temperature,
		Retry:       llm.NewRetryPolicy(retry),
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch name := strings.ToLower(strings.TrimSpace(m.Provider)); name {
	case "anthropic", "claude":
		cfg.Name = "anthropic"
		cfg.Pricing = llm.LookupPricing(m.Pricing, m.Model, false)
		return anthropic.New(cfg)
	case "openai", "zai":
		cfg.Name = name
		local := m.APIURL != "" && llm.IsLoopbackURL(m.APIURL)
		cfg.Pricing = llm.LookupPricing(m.Pricing, m.Model, local)
		return openai.New(cfg)
	case "replay":
		path := m.APIURL
		if u, err := url.Parse(path); err == nil && u.Scheme == "file" {
			path = u.Path
		}
		if path == "" {
			return nil, &llm.Error{Provider: "replay", Kind: llm.KindBadRequest, Message: "model.api_url must name the transcript file"}
		}
		script, err := replay.Open(path)
		if err != nil {
			return nil, &llm.Error{Provider: "replay", Kind: llm.KindBadRequest, Message: err.Error(), Err: err}
		}
		cfg.Pricing = llm.LookupPricing(m.Pricing, m.Model, true)
		return replay.New(cfg, script), nil
	case "":
		return nil, &llm.Error{Kind: llm.KindBadRequest, Message: "no model provider configured (model.provider or ASTRID_MODEL_PROVIDER)"}
	default:
		return nil, &llm.Error{Provider: name, Kind: llm.KindBadRequest,
			Message: fmt.Sprintf("unknown model provider %q (want one of %s)", m.Provider, strings.Join(Names, ", "))}
	}
}

// Ollama returns m switched to a local Ollama server's model: provider
// openai at llm.OllamaURL/v1, no key. The first-run setup offers it when
// llm.DetectOllama finds a server.
func Ollama(m config.Model, model string) config.Model {
	m.Provider = "openai"
	m.Model = model
	m.APIURL = llm.OllamaURL + "/v1"
	m.APIKey = ""
	return m
}
