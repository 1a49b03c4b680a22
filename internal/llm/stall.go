package llm

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// DefaultStallTimeout is how long a stream may send nothing before it is
// given up (Config.StallTimeout). It is long because a reasoning model or a
// local server loading a model may be silent for minutes.
const DefaultStallTimeout = 10 * time.Minute

// StallError is the cause (Error.Err) of a stream given up for silence.
type StallError struct{ After time.Duration }

func (e *StallError) Error() string { return fmt.Sprintf("no data from the server for %v", e.After) }

// WatchStall returns body wrapped so that when no Read returns data for d,
// body is closed and the pending Read fails with a *StallError. A timer,
// not a goroutine, does the watching; Close stops it. d <= 0 returns body
// unchanged.
func WatchStall(body io.ReadCloser, d time.Duration) io.ReadCloser {
	if d <= 0 {
		return body
	}
	s := &stallReader{rc: body, d: d}
	s.t = time.AfterFunc(d, func() {
		s.stalled.Store(true)
		s.rc.Close()
	})
	return s
}

type stallReader struct {
	rc      io.ReadCloser
	d       time.Duration
	t       *time.Timer
	stalled atomic.Bool
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if s.stalled.Load() {
		return n, &StallError{After: s.d}
	}
	if n > 0 {
		s.t.Reset(s.d)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.t.Stop()
	return s.rc.Close()
}

// StreamBody is the body of a streaming response an SDK handed over
// (option.WithResponseInto), watched for stalls per c. A missing response
// or body is a protocol error naming the provider.
func (c *Config) StreamBody(resp *http.Response) (io.ReadCloser, error) {
	if resp == nil || resp.Body == nil {
		return nil, ProtocolError(c.Name, "no response body")
	}
	return WatchStall(resp.Body, c.StallTimeoutOrDefault()), nil
}
