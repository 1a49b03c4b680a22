package llm

import (
	"context"
	"errors"
	"iter"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/config"
)

// RetryPolicy bounds the retries of a failed model call. The zero value
// makes one attempt.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt; values below 1 mean 1.
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt; each later wait
	// doubles, up to MaxBackoff.
	InitialBackoff time.Duration
	// MaxBackoff caps every wait, including one the server asks for with
	// retry-after: a server that asks for longer is not retried (its error,
	// with RetryAfter set, goes to the caller).
	MaxBackoff time.Duration
	// Sleep waits d or until ctx is done; nil means a timer. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewRetryPolicy converts the [retry] configuration.
func NewRetryPolicy(c config.Retry) RetryPolicy {
	return RetryPolicy{
		MaxAttempts:    int(max(c.MaxAttempts, 1)),
		InitialBackoff: time.Duration(c.InitialBackoffMS) * time.Millisecond,
		MaxBackoff:     time.Duration(c.MaxBackoffMS) * time.Millisecond,
	}
}

// Backoff is the wait before attempt number attempt+1 (attempt counts from
// 1), given the server's retry-after (0 if none): exponential with "equal
// jitter" (half fixed, half random), or retry-after when the server named
// one, capped at MaxBackoff. ok is false when the server asked for more
// than MaxBackoff.
func (p RetryPolicy) Backoff(attempt int, retryAfter time.Duration) (d time.Duration, ok bool) {
	if retryAfter > 0 {
		if p.MaxBackoff > 0 && retryAfter > p.MaxBackoff {
			return 0, false
		}
		return retryAfter, true
	}
	d = p.InitialBackoff
	for i := 1; i < attempt && (p.MaxBackoff <= 0 || d < p.MaxBackoff); i++ {
		d *= 2
	}
	if p.MaxBackoff > 0 && d > p.MaxBackoff {
		d = p.MaxBackoff
	}
	if d <= 0 {
		return 0, true
	}
	return d/2 + rand.N(d/2+1), true
}

func (p RetryPolicy) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stream runs attempt, and runs it again after a retryable *Error, as long
// as no event has reached the caller yet and the policy allows another
// attempt. Once an event was yielded, an error goes to the caller as it is.
// attempt must return *Error values (see ErrorFromGo).
func (p RetryPolicy) Stream(ctx context.Context, provider string, attempt func(ctx context.Context) iter.Seq2[Event, error]) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		maxAttempts := max(p.MaxAttempts, 1)
		for n := 1; ; n++ {
			delivered := false
			var failed *Error
			for ev, err := range attempt(ctx) {
				if err != nil {
					failed = ErrorFromGo(ctx, provider, err)
					break
				}
				delivered = true
				if !yield(ev, nil) {
					return
				}
			}
			if failed == nil {
				return
			}
			if delivered || !failed.Retryable || n >= maxAttempts {
				yield(Event{}, failed)
				return
			}
			d, ok := p.Backoff(n, failed.RetryAfter)
			if !ok {
				yield(Event{}, failed)
				return
			}
			if err := p.sleep(ctx, d); err != nil {
				yield(Event{}, ErrorFromGo(ctx, provider, err))
				return
			}
		}
	}
}

// ParseRetryAfter reads the wait a server asks for: retry-after-ms
// (milliseconds, sent by OpenAI), else retry-after in seconds or as an
// HTTP-date (RFC 9110 section 10.2.3). A date in the past means no wait.
func ParseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if h == nil {
		return 0, false
	}
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && ms < 1e10 {
			return time.Duration(ms * float64(time.Millisecond)), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || secs > 1e7 {
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// IsRetryable reports whether err is an *Error worth retrying later.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}
