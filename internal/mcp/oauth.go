package mcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
)

// OAuthOptions configure OAuth 2.1 authorization of Streamable HTTP
// servers (MCP 2025-11-25, "Authorization").
type OAuthOptions struct {
	// Authorizer shows an authorization URL to the user. Nil means a
	// server that needs a new authorization fails with
	// *AuthorizationRequiredError; stored tokens and refreshes still work.
	Authorizer Authorizer
	// SessionsOnly says the Authorizer asks only through the session whose
	// tool call needs the authorization: one needed with no single session
	// calling (a start, a health check) fails at once with
	// *AuthorizationRequiredError, before any listener or registration.
	SessionsOnly bool
	// Dir holds one token file per server (mode 0600 in a 0700
	// directory), normally $ASTRID_HOME/mcp-oauth. Empty keeps tokens in
	// memory for the life of the Manager.
	Dir string
	// Timeout bounds the wait for the user's browser to come back to the
	// loopback listener; zero means 5 minutes. A request's own deadline
	// bounds it too.
	Timeout time.Duration
}

// Authorizer is the frontend's part of an authorization: the daemon cannot
// open a browser. It shows req.URL to the user (to open in a browser) and
// returns "" once shown, leaving the redirect to Astrid's loopback
// listener at req.RedirectURL, or it returns the URL the browser was
// redirected to (a user who pasted it, or a frontend that followed the
// authorization itself). Either way the redirect is checked the same way.
// It must return when ctx ends. The URL carries the flow's state and PKCE
// challenge: it is for the user, never for the model.
type Authorizer interface {
	Authorize(ctx context.Context, req AuthorizationRequest) (redirected string, err error)
}

// AuthorizationRequest is what the user is asked to approve.
type AuthorizationRequest struct {
	// Server is the configured name of the MCP server.
	Server string
	// Session is the session whose tool call needs the authorization (a
	// step-up, an expired grant), or "" when none does or several do
	// (a start, `astrid servers login`).
	Session string
	// URL is the authorization URL; Domain its host, to show.
	URL    string
	Domain string
	// Issuer is the authorization server; Scopes the scopes asked for.
	Issuer string
	Scopes []string
	// RedirectURL is where the browser comes back to.
	RedirectURL string
}

// ErrNotOAuth is returned by Login for a server OAuth does not apply to.
var ErrNotOAuth = errors.New("OAuth is only for streamable-http servers")

// AuthorizationRequiredError says a server needs an interactive
// authorization and no Authorizer is available to ask the user.
type AuthorizationRequiredError struct{ Server string }

func (e *AuthorizationRequiredError) Error() string {
	return fmt.Sprintf("mcp server %s needs an OAuth authorization: run `astrid servers login %s`", e.Server, e.Server)
}

// maxStepUps bounds the step-up authorizations one request may cause
// (besides one answer to a 401): a server that keeps answering 403
// insufficient_scope does not loop forever.
const maxStepUps = 2

// oauthClient runs the authorization of one server and signs its
// requests. It is an http.RoundTripper for the server's transport.
type oauthClient struct {
	name       string
	cfg        config.ServerOAuth
	serverURL  *url.URL
	base       http.RoundTripper
	hc         *http.Client // metadata, registration, tokens: no redirects
	store      *oauthStore
	authorizer Authorizer
	timeout    time.Duration
	clientName string
	log        *slog.Logger
	audit      func(decision audit.Decision, text string)
	// session is the session a request is made for (conn.session), or
	// nil for a login.
	session func() string
	// sessionsOnly: OAuthOptions.SessionsOnly, for a connection's client.
	sessionsOnly bool

	flow sync.Mutex // serialises refreshes and authorizations

	mu  sync.Mutex
	rec *oauthRecord // guarded by mu; nil: no tokens
}

// newOAuthClient returns the OAuth client of an HTTP server, with the
// tokens stored for it. A stored record for another URL is ignored; an
// unreadable token file is an error.
func (m *Manager) newOAuthClient(name string, cfg config.Server, base http.RoundTripper) (*oauthClient, error) {
	su, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("mcp server %s: %w", name, err)
	}
	timeout := m.o.OAuth.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	o := &oauthClient{name: name, cfg: cfg.OAuth, serverURL: su, base: base, store: m.oauth, authorizer: m.o.OAuth.Authorizer,
		timeout: timeout, clientName: m.o.ClientName, log: m.log,
		hc: &http.Client{Transport: base, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	o.audit = func(d audit.Decision, text string) { m.auditOAuth(name, cfg.URL, d, text) }
	rec, err := m.oauth.load(name)
	if err != nil {
		return nil, fmt.Errorf("mcp server %s: %w", name, err)
	}
	if rec != nil && rec.ServerURL == cfg.URL {
		o.rec = rec
	} else if rec != nil {
		m.log.Warn("stored OAuth tokens are for another URL; not using them", "server", name)
	}
	return o, nil
}

// oauthTransport wraps base with the server's OAuth client, unless the
// configuration sends its own Authorization header (env
// HEADER_Authorization), which then stays the only credential.
func (c *conn) oauthTransport(base http.RoundTripper) (http.RoundTripper, error) {
	for k := range c.srv.cfg.Env {
		if strings.EqualFold(k, "HEADER_Authorization") {
			return base, nil
		}
	}
	o, err := c.srv.m.newOAuthClient(c.srv.name, c.srv.cfg, base)
	if err != nil {
		return nil, err
	}
	o.session, o.sessionsOnly = c.session, c.srv.m.o.OAuth.SessionsOnly
	return o, nil
}

func (m *Manager) auditOAuth(name, serverURL string, d audit.Decision, text string) {
	if m.o.Audit == nil {
		return
	}
	e := audit.Entry{Type: audit.TypeDecision, Session: "daemon", Principal: "astridd", Frontend: "daemon",
		Action:   audit.Action{Kind: "mcp_oauth_authorize", Resource: clip("mcp://"+name+"/", audit.MaxResource), ArgsHash: audit.HashBytes([]byte(serverURL))},
		Decision: d, Proof: audit.Proof{Rule: "oauth"}, Text: audit.ClipText(text)}
	if _, err := m.o.Audit.Append(context.Background(), e); err != nil {
		m.log.Error("audit append failed for an MCP OAuth authorization", "server", name, "err", err)
	}
}

// Login runs an interactive authorization of the named server now (with
// a, or the configured Authorizer when a is nil) and stores the tokens, so that later
// connections need no user. It discovers the authorization server through
// the server's well-known metadata.
func (m *Manager) Login(ctx context.Context, name string, a Authorizer) error {
	s := m.server(name)
	if s == nil {
		return ErrNotConfigured
	}
	if s.cfg.Transport != "streamable-http" {
		return fmt.Errorf("mcp server %s: %w", name, ErrNotOAuth)
	}
	o, err := m.newOAuthClient(name, s.cfg, m.baseTransport())
	if err != nil {
		return err
	}
	if a != nil {
		o.authorizer = a
	}
	o.flow.Lock()
	defer o.flow.Unlock()
	return o.authorize(ctx, challenge{params: map[string]string{}}, nil)
}

// Logout forgets the named server's tokens and client registration.
func (m *Manager) Logout(name string) error {
	if m.server(name) == nil {
		return ErrNotConfigured
	}
	return m.oauth.remove(name)
}

func (m *Manager) baseTransport() http.RoundTripper {
	if m.o.HTTPClient != nil && m.o.HTTPClient.Transport != nil {
		return m.o.HTTPClient.Transport
	}
	return http.DefaultTransport
}

// record returns a copy of the current record (nil: none).
func (o *oauthClient) record() *oauthRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rec == nil {
		return nil
	}
	c := *o.rec
	return &c
}

func (o *oauthClient) accessToken() string {
	if r := o.record(); r != nil {
		return r.AccessToken
	}
	return ""
}

// setRecord makes r current and stores it.
func (o *oauthClient) setRecord(r *oauthRecord) error {
	o.mu.Lock()
	o.rec = r
	o.mu.Unlock()
	if r == nil {
		return o.store.remove(o.name)
	}
	return o.store.save(o.name, r)
}

// RoundTrip sends req with the server's access token. On a 401 it
// refreshes or authorizes and sends it again, once; on 403
// insufficient_scope it authorizes again with the scopes the server asks
// for (a step-up), at most maxStepUps times. Then the server's answer is
// returned as it is.
func (o *oauthClient) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" {
		return o.base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	ctx := req.Context()
	unauthorized, stepUps := false, 0
	for {
		tok := o.usableToken(ctx)
		r := req.Clone(ctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := o.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		ch := bearerChallenge(resp.Header)
		stepUp := resp.StatusCode == http.StatusForbidden && ch.params["error"] == "insufficient_scope"
		switch {
		case stepUp && stepUps < maxStepUps:
			stepUps++
		case resp.StatusCode == http.StatusUnauthorized && !unauthorized:
			unauthorized = true
		default:
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxMetadata))
		resp.Body.Close()
		if err := o.reauthorize(ctx, tok, ch, stepUp); err != nil {
			return nil, err
		}
	}
}

// usableToken returns the access token, renewed first when it has expired
// and can be renewed without the user: by its refresh token, or by the
// client credentials grant. A failed renewal leaves the old token: the
// server's 401 then starts a new authorization.
func (o *oauthClient) usableToken(ctx context.Context) string {
	r := o.record()
	if r == nil {
		return ""
	}
	clientCredentials := o.cfg.Grant == config.GrantClientCredentials
	if r.RefreshToken == "" && !clientCredentials || r.Expiry.IsZero() || time.Until(r.Expiry) > 30*time.Second {
		return r.AccessToken
	}
	o.flow.Lock()
	defer o.flow.Unlock()
	if cur := o.record(); cur == nil || cur.AccessToken != r.AccessToken {
		return o.accessToken() // renewed meanwhile
	}
	var err error
	if r.RefreshToken != "" {
		err = o.refresh(ctx)
	}
	if clientCredentials && (r.RefreshToken == "" || err != nil) {
		err = o.authorize(ctx, challenge{params: map[string]string{}}, r.Scopes)
	}
	if err != nil {
		o.log.Warn("mcp oauth renewal failed", "server", o.name, "err", err)
	}
	return o.accessToken()
}

// reauthorize gets a new token after the server refused used: by refresh
// when it can (not for a step-up, which needs the user's consent to more
// scopes), else by a new authorization. Another request that already got
// a new token meanwhile makes this a no-op.
func (o *oauthClient) reauthorize(ctx context.Context, used string, ch challenge, stepUp bool) error {
	o.flow.Lock()
	defer o.flow.Unlock()
	cur := o.record()
	if cur != nil && cur.AccessToken != used {
		return nil
	}
	if !stepUp && used != "" && cur != nil && cur.RefreshToken != "" {
		err := o.refresh(ctx)
		if err == nil {
			return nil
		}
		o.log.Warn("mcp oauth refresh failed; authorizing again", "server", o.name, "err", err)
	}
	var scopes []string
	if stepUp && cur != nil {
		scopes = cur.Scopes
	}
	return o.authorize(ctx, ch, scopes)
}

// selectScopes picks the scopes to ask for: the configured ones, else the
// challenge's, else the resource's scopes_supported, else none (the scope
// parameter is left out); plus, for a step-up, the scopes already held
// and the ones the challenge demands.
func (o *oauthClient) selectScopes(ch challenge, md *resourceMetadata, held []string) []string {
	var out []string
	switch {
	case len(o.cfg.Scopes) > 0:
		out = slices.Clone(o.cfg.Scopes)
	case len(ch.scopes()) > 0:
		out = ch.scopes()
	default:
		out = slices.Clone(md.ScopesSupported)
	}
	if len(held) > 0 {
		out = append(slices.Clone(held), out...)
		out = append(out, ch.scopes()...)
	}
	var uniq []string
	for _, s := range out {
		if s != "" && !slices.Contains(uniq, s) {
			uniq = append(uniq, s)
		}
	}
	return uniq
}

var errNoClient = errors.New("no way to identify Astrid to the authorization server: it supports neither client ID metadata documents (with oauth.client_metadata_url set) nor dynamic registration; configure oauth.client_id")
