package llm

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config is what every provider constructor takes; package providers fills
// it from the [model] and [retry] configuration.
type Config struct {
	// Name is the provider name reported in errors ("anthropic", "openai",
	// "zai"); empty means the package's own name.
	Name string
	// Model is the model every request goes to.
	Model string
	// APIKey is sent as the provider's credential header when not empty.
	APIKey string
	// BaseURL overrides the provider's default endpoint. OpenAI-compatible
	// URLs include /v1; Anthropic URLs do not.
	BaseURL string
	// MaxTokens is the reply cap when a Request sets none.
	MaxTokens int64
	// Temperature is used when a Request sets none.
	Temperature float64
	// Pricing prices the usage of every response (see LookupPricing).
	Pricing Pricing
	// Retry bounds the retries of a failed request.
	Retry RetryPolicy
	// StallTimeout gives up a stream that sends nothing for this long (a
	// retryable KindNetwork error); zero means DefaultStallTimeout.
	StallTimeout time.Duration
	// HTTPClient sends the requests; nil means NewHTTPClient().
	HTTPClient *http.Client
	// Logger receives warnings (fallback pricing, dropped content); nil
	// means slog.Default().
	Logger *slog.Logger
}

// Setup completes c for a provider's constructor and checks what every
// provider needs. name is the provider's own name (used when c.Name is
// empty), baseURL its endpoint (when c.BaseURL is empty), keyHint where
// the user sets its key ("ANTHROPIC_API_KEY or model.api_key"). The base
// URL loses its trailing slashes and must be http or https with a host; a
// model is required, and so is an API key unless the base URL is on
// loopback. HTTPClient and Logger get their defaults, and a model without
// a known price is warned about.
func (c Config) Setup(name, baseURL, keyHint string) (Config, error) {
	if c.Name == "" {
		c.Name = name
	}
	if c.Model == "" {
		return c, &Error{Provider: c.Name, Kind: KindBadRequest, Message: "no model configured (model.model or ASTRID_MODEL)"}
	}
	if c.BaseURL == "" {
		c.BaseURL = baseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, &Error{Provider: c.Name, Kind: KindBadRequest, Message: "invalid base URL " + c.BaseURL}
	}
	if c.APIKey == "" && !IsLoopbackURL(c.BaseURL) {
		return c, &Error{Provider: c.Name, Kind: KindAuth, Message: "no API key: set " + keyHint + " (only servers on 127.0.0.1 need none)", Err: ErrNoAPIKey}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = NewHTTPClient()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Pricing.Source == "fallback" {
		c.Logger.Warn("llm: no price known for model; budgeting at the fallback price", "provider", c.Name, "model", c.Model)
	}
	return c, nil
}

// DefaultMaxTokens is the reply cap when neither the request nor the
// configuration sets one.
const DefaultMaxTokens = 8192

// MaxTokensFor is the reply cap for req under c.
func (c *Config) MaxTokensFor(req *Request) int64 {
	switch {
	case req.MaxTokens > 0:
		return req.MaxTokens
	case c.MaxTokens > 0:
		return c.MaxTokens
	}
	return DefaultMaxTokens
}

// TemperatureFor is the temperature for req under c.
func (c *Config) TemperatureFor(req *Request) float64 {
	if req.Temperature != nil {
		return *req.Temperature
	}
	return c.Temperature
}

// StallTimeoutOrDefault is c.StallTimeout, or DefaultStallTimeout when unset.
func (c *Config) StallTimeoutOrDefault() time.Duration {
	if c.StallTimeout > 0 {
		return c.StallTimeout
	}
	return DefaultStallTimeout
}
