package capsule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/sdk"
)

// Bounds of http_request.
const (
	MaxHTTPRequestBody  = 1 << 20
	MaxHTTPResponseBody = 4 << 20
	HTTPTimeout         = 20 * time.Second
	maxHTTPHeaders      = 64
)

// httpRequest performs a request to a declared host. The host must be in
// capabilities.net (and http granted), or the call is refused without
// asking and audited. The host's addresses are resolved once and the
// network action names all of them, so policy judges every address
// (loopback, private and metadata ranges are denied there); the
// connection is made only to those addresses, so a second DNS answer
// cannot redirect it. Redirects are not followed.
func (m *Manager) httpRequest(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	var req sdk.HTTPRequest
	if err := json.Unmarshal(a, &req); err != nil {
		return nil, hostErrf(sdk.StatusInvalid, "http request: %v", err)
	}
	if len(req.Body) > MaxHTTPRequestBody || len(req.Headers) > maxHTTPHeaders {
		return nil, hostErrf(sdk.StatusLimit, "http request: body over %d bytes or more than %d headers", MaxHTTPRequestBody, maxHTTPHeaders)
	}
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, hostErrf(sdk.StatusInvalid, "http request: want an http or https URL without credentials")
	}
	host := strings.ToLower(u.Hostname())
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, hostErrf(sdk.StatusInvalid, "http request: bad port %q", p)
		}
	}
	args, _ := json.Marshal(map[string]any{"method": req.Method, "url": req.URL, "bytes": len(req.Body)})
	resource, err := security.NetURI(host, port)
	if err != nil {
		return nil, hostErrf(sdk.StatusInvalid, "http request: %v", err)
	}
	if !cs.c.caps.HTTP || !hostDeclared(cs.c.caps.Net, host, port) {
		return nil, cs.refuse(ctx, security.Network, resource, args, RuleGrant, fmt.Sprintf("http to %s:%d: the host is not declared in capabilities.net (or http is not granted)", host, port))
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip.Unmap()}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err = net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil || len(addrs) == 0 {
			return nil, hostErrf(sdk.StatusFailed, "http request: cannot resolve %s", host)
		}
	}
	act := security.Action{Kind: security.Network, Resource: resource, Args: args, Session: cs.sess,
		Host: host, Port: port, Addrs: addrs, Summary: fmt.Sprintf("Capsule %s: %s %s", cs.c.id, req.Method, clipString(req.URL, 200))}
	return cs.run(ctx, act, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return doHTTP(ctx, req, u, a.Addrs, a.Port)
	}))
}

// hostDeclared reports whether host:port is in a capabilities.net list: an
// entry "host" allows ports 80 and 443, "host:port" that port.
func hostDeclared(net []string, host string, port int) bool {
	for _, e := range net {
		h, p, err := capsulepkg.SplitHost(e)
		if err != nil || h != host {
			continue
		}
		if p == port || p == 0 && (port == 80 || port == 443) {
			return true
		}
	}
	return false
}

func doHTTP(ctx context.Context, req sdk.HTTPRequest, u *url.URL, addrs []netip.Addr, port int) ([]byte, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		// NOTE: only the addresses the interceptor judged are dialled.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var last error
			for _, a := range addrs {
				c, err := dialer.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: HTTPTimeout,
		DisableKeepAlives:     true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: HTTPTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, u.String(), strings.NewReader(string(req.Body)))
	if err != nil {
		return nil, hostErrf(sdk.StatusInvalid, "http request: %v", err)
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, hostErrf(sdk.StatusFailed, "http request: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxHTTPResponseBody+1))
	if err != nil {
		return nil, hostErrf(sdk.StatusFailed, "http response: %v", err)
	}
	if len(body) > MaxHTTPResponseBody {
		return nil, hostErrf(sdk.StatusLimit, "http response larger than %d bytes", MaxHTTPResponseBody)
	}
	out := sdk.HTTPResponse{Status: resp.StatusCode, Body: body, Headers: map[string]string{}}
	for k := range resp.Header {
		if len(out.Headers) < maxHTTPHeaders {
			out.Headers[k] = resp.Header.Get(k)
		}
	}
	return json.Marshal(out)
}
