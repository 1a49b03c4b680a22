package llm

import (
	"log/slog"
	"net/http"
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
