package llm

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ResponseCheck returns an HTTP middleware, in the shape both provider SDKs
// accept (option.WithMiddleware), that turns a failed response into an
// *Error before the SDK sees it: an HTTP error status becomes
// ErrorFromResponse (the provider's message, retry-after), and a 200
// response that is not an event stream becomes a KindProtocol error. The
// SDKs return a middleware's error unchanged, so the provider gets the
// *Error whatever the shape of the body.
func ResponseCheck(provider string) func(*http.Request, func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	return func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		resp, err := next(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 300 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			return nil, ErrorFromResponse(provider, resp.StatusCode, resp.Header, body, time.Now())
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "text/event-stream") {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return nil, &Error{Provider: provider, Status: resp.StatusCode, Kind: KindProtocol,
				Message: "expected an event stream, got Content-Type " + quoteOrEmpty(ct) + ": " + shorten(string(body))}
		}
		return resp, nil
	}
}

func quoteOrEmpty(s string) string {
	if s == "" {
		return "(none)"
	}
	return `"` + shorten(s) + `"`
}

// IsLoopbackURL reports whether rawURL names a host on this machine
// (localhost, 127.0.0.0/8, ::1). A local server needs no API key and costs
// nothing.
func IsLoopbackURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewHTTPClient returns the client providers use when none is given: the
// default transport's settings, no overall timeout (a stream lasts as long
// as the model writes; ctx bounds it), and a bound on the wait for
// response headers.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 10 * time.Minute
	return &http.Client{Transport: t}
}
