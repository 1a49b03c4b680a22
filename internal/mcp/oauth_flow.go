package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/keys"
)

// randomString is n random bytes, base64url without padding.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// s256 is the PKCE S256 challenge of verifier (RFC 7636).
func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// authorize gets tokens by the configured grant: the authorization-code
// flow with PKCE (discovery, the client's identity, the user's consent
// through the Authorizer and the loopback listener, the token request),
// or the client credentials grant. held are the scopes of a step-up. The
// caller holds o.flow. Success and failure are audited.
func (o *oauthClient) authorize(ctx context.Context, ch challenge, held []string) error {
	flow := o.authorizeFlow
	if o.cfg.Grant == config.GrantClientCredentials {
		flow = o.clientCredentialsFlow
	}
	issuer, scopes, err := flow(ctx, ch, held)
	if err != nil {
		err = fmt.Errorf("mcp server %s: oauth: %w", o.name, err)
		o.audit(audit.Denied, err.Error())
		return err
	}
	o.audit(audit.Allowed, fmt.Sprintf("authorized by %s with scopes %q", issuer, strings.Join(scopes, " ")))
	return nil
}

// discovery is where a server's authorization happens: its resource
// metadata and resource identifier, and its authorization server.
type discovery struct {
	prm      *resourceMetadata
	resource *url.URL
	issuer   string
	as       *authServerMetadata
	// legacy: the server's origin authorizes, as in MCP 2025-03-26.
	legacy bool
}

// discover finds the server's authorization server, from the protected
// resource metadata or, for a server of MCP 2025-03-26 that has none,
// from its origin.
func (o *oauthClient) discover(ctx context.Context, ch challenge) (*discovery, error) {
	if o.serverURL.Scheme != "https" && !isLoopback(o.serverURL.Hostname()) {
		return nil, fmt.Errorf("refusing to send tokens to %s over plain http", o.serverURL.Host)
	}
	d := &discovery{}
	var err error
	d.prm, d.resource, err = o.discoverResource(ctx, ch)
	d.legacy = errors.Is(err, errNoMetadata)
	switch {
	case d.legacy:
		d.prm = &resourceMetadata{}
		d.resource = &url.URL{Scheme: o.serverURL.Scheme, Host: o.serverURL.Host, Path: o.serverURL.Path}
		d.as, d.issuer, err = o.legacyAuthServer(ctx)
	case err == nil:
		d.issuer = d.prm.AuthorizationServers[0]
		d.as, err = o.discoverAuthServer(ctx, d.issuer)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// save stores the tokens tr for the client and discovery d, and returns
// the scopes granted.
func (o *oauthClient) save(d *discovery, client oauthClientInfo, tr *tokenResponse, asked []string) ([]string, error) {
	rec := &oauthRecord{ServerURL: o.serverURL.String(), Issuer: d.issuer, Resource: d.resource.String(), Client: client, Legacy: d.legacy}
	tr.apply(rec, asked)
	if err := o.setRecord(rec); err != nil {
		return nil, err
	}
	return rec.Scopes, nil
}

// clientCredentialsFlow gets a token with the client credentials grant
// (RFC 6749 section 4.4; MCP extension SEP-1046): Astrid authenticates as
// the configured client, by its secret or a JWT signed with its private
// key, and no user is asked.
func (o *oauthClient) clientCredentialsFlow(ctx context.Context, ch challenge, held []string) (string, []string, error) {
	d, err := o.discover(ctx, ch)
	if err != nil {
		return "", nil, err
	}
	if g := d.as.GrantTypesSupported; len(g) > 0 && !slices.Contains(g, config.GrantClientCredentials) {
		return "", nil, fmt.Errorf("the authorization server does not offer the client_credentials grant (it lists %q)", strings.Join(g, " "))
	}
	client, err := o.configuredClient(d.as)
	if err != nil {
		return "", nil, err
	}
	scopes := o.selectScopes(ch, d.prm, held)
	form := url.Values{"grant_type": {config.GrantClientCredentials}, "resource": {d.resource.String()}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	tr, err := o.tokenRequest(ctx, d.as, client, form)
	if err != nil {
		return "", nil, err
	}
	granted, err := o.save(d, client, tr, scopes)
	return d.issuer, granted, err
}

// authorizeFlow is the authorization-code flow with PKCE, through the
// user: it returns the issuer and the scopes granted.
func (o *oauthClient) authorizeFlow(ctx context.Context, ch challenge, held []string) (string, []string, error) {
	d, err := o.discover(ctx, ch)
	if err != nil {
		return "", nil, err
	}
	as, issuer, resource := d.as, d.issuer, d.resource
	scopes := o.selectScopes(ch, d.prm, held)
	session := ""
	if o.session != nil {
		session = o.session()
	}
	if o.authorizer == nil || o.sessionsOnly && session == "" {
		return "", nil, &AuthorizationRequiredError{Server: o.name}
	}
	prev := o.record()
	ln, redirect, err := o.listen(prev, issuer)
	if err != nil {
		return "", nil, err
	}
	cb := newCallback(ln, redirect)
	defer cb.close()
	client, err := o.identify(ctx, as, issuer, redirect.String(), prev)
	if err != nil {
		return "", nil, err
	}
	state, verifier := randomString(32), randomString(32)
	au, _ := url.Parse(as.AuthorizationEndpoint)
	q := au.Query()
	q.Set("response_type", "code")
	q.Set("client_id", client.ID)
	q.Set("redirect_uri", redirect.String())
	q.Set("state", state)
	q.Set("code_challenge", s256(verifier))
	q.Set("code_challenge_method", "S256")
	q.Set("resource", resource.String())
	if len(scopes) > 0 {
		q.Set("scope", strings.Join(scopes, " "))
	}
	au.RawQuery = q.Encode()
	req := AuthorizationRequest{Server: o.name, Session: session, URL: au.String(), Domain: au.Hostname(), Issuer: issuer, Scopes: scopes, RedirectURL: redirect.String()}
	back, err := o.waitRedirect(ctx, req, cb)
	if err != nil {
		return "", nil, err
	}
	code, err := checkRedirect(back, state, issuer, as.IssParameterSupported)
	if err != nil {
		return "", nil, err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect.String()},
		"code_verifier": {verifier}, "resource": {resource.String()}}
	tr, err := o.tokenRequest(ctx, as, client, form)
	if err != nil {
		return "", nil, err
	}
	granted, err := o.save(d, client, tr, scopes)
	return issuer, granted, err
}

// refresh trades the refresh token for a new access token. A refused
// refresh token is forgotten. The caller holds o.flow.
func (o *oauthClient) refresh(ctx context.Context) error {
	rec := o.record()
	if rec == nil || rec.RefreshToken == "" {
		return errors.New("no refresh token")
	}
	var as *authServerMetadata
	var err error
	if rec.Legacy {
		as, _, err = o.legacyAuthServer(ctx)
	} else {
		as, err = o.discoverAuthServer(ctx, rec.Issuer)
	}
	if err != nil {
		return err
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rec.RefreshToken}, "resource": {rec.Resource}}
	tr, err := o.tokenRequest(ctx, as, rec.Client, form)
	var te *tokenError
	if errors.As(err, &te) && te.Code == "invalid_grant" {
		rec.RefreshToken = ""
		if serr := o.setRecord(rec); serr != nil {
			return errors.Join(err, serr)
		}
	}
	if err != nil {
		return err
	}
	tr.apply(rec, rec.Scopes)
	return o.setRecord(rec)
}

// listen opens the loopback listener the browser comes back to: the
// configured redirect URL, else the port of a registration kept for this
// issuer (so it stays valid), else a free port.
func (o *oauthClient) listen(prev *oauthRecord, issuer string) (net.Listener, *url.URL, error) {
	if o.cfg.RedirectURL != "" {
		u, err := url.Parse(o.cfg.RedirectURL)
		if err != nil || u.Scheme != "http" || !isLoopback(u.Hostname()) || u.Port() == "" {
			return nil, nil, fmt.Errorf("redirect_url %q is not a loopback http URL with a port", o.cfg.RedirectURL)
		}
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") {
			host = "127.0.0.1"
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, u.Port()))
		if err != nil {
			return nil, nil, fmt.Errorf("listening for the redirect on %s: %w", u.Host, err)
		}
		return ln, u, nil
	}
	if prev != nil && prev.Client.Registered && prev.Client.Issuer == issuer && prev.Client.RedirectURI != "" {
		if u, err := url.Parse(prev.Client.RedirectURI); err == nil && isLoopback(u.Hostname()) {
			if ln, err := net.Listen("tcp", u.Host); err == nil {
				return ln, u, nil
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listening for the redirect: %w", err)
	}
	return ln, &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: "/callback"}, nil
}

// identify returns the client to authorize as: the configured client, a
// client ID metadata document, a registration kept for this issuer and
// redirect URL, or a new dynamic registration.
func (o *oauthClient) identify(ctx context.Context, as *authServerMetadata, issuer, redirect string, prev *oauthRecord) (oauthClientInfo, error) {
	if o.cfg.ClientID != "" {
		return o.configuredClient(as)
	}
	if as.ClientIDMetadataDocumentSupported && o.cfg.ClientMetadataURL != "" {
		return oauthClientInfo{ID: o.cfg.ClientMetadataURL, AuthMethod: "none"}, nil
	}
	if prev != nil && prev.Client.Registered && prev.Client.Issuer == issuer && prev.Client.RedirectURI == redirect {
		return prev.Client, nil
	}
	if as.RegistrationEndpoint == "" {
		return oauthClientInfo{}, errNoClient
	}
	return o.register(ctx, as, issuer, redirect)
}

// configuredClient is the pre-registered client of the configuration:
// public, or authenticated by its secret or its private key.
func (o *oauthClient) configuredClient(as *authServerMetadata) (oauthClientInfo, error) {
	supported := as.TokenEndpointAuthMethodsSupported
	c := oauthClientInfo{ID: o.cfg.ClientID, Secret: o.cfg.ClientSecret, AuthMethod: "none"}
	switch {
	case o.cfg.PrivateKeyFile != "":
		if len(supported) > 0 && !slices.Contains(supported, "private_key_jwt") {
			return c, fmt.Errorf("the token endpoint does not accept private_key_jwt (it lists %q)", strings.Join(supported, " "))
		}
		c.AuthMethod, c.KeyFile = "private_key_jwt", o.cfg.PrivateKeyFile
	case c.Secret != "":
		m, err := secretMethod(supported)
		if err != nil {
			return c, err
		}
		c.AuthMethod = m
	}
	return c, nil
}

// secretMethod picks how to send a client secret to the token endpoint.
// An authorization server that lists no methods supports
// client_secret_basic (RFC 8414).
func secretMethod(supported []string) (string, error) {
	switch {
	case len(supported) == 0 || slices.Contains(supported, "client_secret_basic"):
		return "client_secret_basic", nil
	case slices.Contains(supported, "client_secret_post"):
		return "client_secret_post", nil
	}
	return "", fmt.Errorf("the token endpoint supports none of client_secret_basic, client_secret_post (it lists %q)", strings.Join(supported, " "))
}

// register registers Astrid dynamically (RFC 7591) as a public client
// when the server allows, else as a confidential one.
func (o *oauthClient) register(ctx context.Context, as *authServerMetadata, issuer, redirect string) (oauthClientInfo, error) {
	method := "none"
	if s := as.TokenEndpointAuthMethodsSupported; len(s) > 0 && !slices.Contains(s, "none") {
		m, err := secretMethod(s)
		if err != nil {
			return oauthClientInfo{}, err
		}
		method = m
	}
	body, _ := json.Marshal(map[string]any{
		"client_name": o.clientName, "redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "token_endpoint_auth_method": method,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, as.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return oauthClientInfo{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	var reg struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		AuthMethod   string `json:"token_endpoint_auth_method"`
	}
	if err := o.postJSON(req, "registration endpoint", &reg); err != nil {
		return oauthClientInfo{}, err
	}
	if reg.ClientID == "" {
		return oauthClientInfo{}, errors.New("the registration endpoint returned no client_id")
	}
	c := oauthClientInfo{ID: reg.ClientID, Secret: reg.ClientSecret, AuthMethod: reg.AuthMethod, Registered: true, Issuer: issuer, RedirectURI: redirect}
	switch {
	case c.AuthMethod == "none" || c.AuthMethod == "client_secret_basic" || c.AuthMethod == "client_secret_post":
	case c.AuthMethod != "":
		return oauthClientInfo{}, fmt.Errorf("the registration endpoint chose token endpoint auth method %q, which Astrid does not support", clipRunes(c.AuthMethod, 64))
	case method != "none":
		c.AuthMethod = method
	case c.Secret != "" && !slices.Contains(as.TokenEndpointAuthMethodsSupported, "none"):
		if c.AuthMethod, err = secretMethod(as.TokenEndpointAuthMethodsSupported); err != nil {
			return oauthClientInfo{}, err
		}
	default:
		// Registered as asked, a public client; a secret it was given
		// anyway is not used.
		c.AuthMethod = "none"
	}
	if c.AuthMethod != "none" && c.Secret == "" {
		return oauthClientInfo{}, fmt.Errorf("the registration endpoint chose %s without giving a client_secret", c.AuthMethod)
	}
	return c, nil
}

// tokenResponse is a token endpoint's answer (RFC 6749 section 5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// apply puts the tokens into rec; the granted scopes are the response's,
// else the ones asked for.
func (t *tokenResponse) apply(rec *oauthRecord, asked []string) {
	rec.AccessToken = t.AccessToken
	if t.RefreshToken != "" {
		rec.RefreshToken = t.RefreshToken
	}
	rec.Expiry = time.Time{}
	if t.ExpiresIn > 0 {
		rec.Expiry = time.Now().Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	rec.Scopes = slices.Clone(asked)
	if t.Scope != "" {
		rec.Scopes = strings.Fields(t.Scope)
	}
}

// tokenError is an OAuth error answer (RFC 6749 section 5.2).
type tokenError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
	status      int
}

func (e *tokenError) Error() string {
	s := fmt.Sprintf("the authorization server refused (HTTP %d): %s", e.status, clipRunes(e.Code, 64))
	if e.Description != "" {
		s += ": " + clipRunes(e.Description, 300)
	}
	return s
}

// tokenRequest posts form to the token endpoint, authenticated as client.
func (o *oauthClient) tokenRequest(ctx context.Context, as *authServerMetadata, client oauthClientInfo, form url.Values) (*tokenResponse, error) {
	form = cloneValues(form)
	switch client.AuthMethod {
	case "client_secret_post":
		form.Set("client_id", client.ID)
		form.Set("client_secret", client.Secret)
	case "client_secret_basic":
	case "private_key_jwt":
		key, err := keys.ReadSigner(client.KeyFile)
		if err != nil {
			return nil, err
		}
		// The issuer is never empty: discovery checked it, or set it.
		a, err := clientAssertion(key, client.ID, as.Issuer, as.SigningAlgs, time.Now())
		if err != nil {
			return nil, err
		}
		form.Set("client_id", client.ID)
		form.Set("client_assertion_type", assertionType)
		form.Set("client_assertion", a)
	default:
		form.Set("client_id", client.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, as.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if client.AuthMethod == "client_secret_basic" {
		// RFC 6749 section 2.3.1: both form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(client.ID), url.QueryEscape(client.Secret))
	}
	var tr tokenResponse
	if err := o.postJSON(req, "token endpoint", &tr); err != nil {
		return nil, err
	}
	if tr.AccessToken == "" || strings.ContainsFunc(tr.AccessToken, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return nil, errors.New("the token endpoint returned no usable access_token")
	}
	if !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, fmt.Errorf("the token endpoint returned a token of type %q, not Bearer", clipRunes(tr.TokenType, 64))
	}
	return &tr, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// postJSON sends req (no redirects) and decodes a 200 or 201 JSON answer
// into v; an OAuth error answer becomes a *tokenError.
func (o *oauthClient) postJSON(req *http.Request, what string, v any) error {
	resp, err := o.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata+1))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(data) > maxMetadata {
		return fmt.Errorf("%s: answer larger than %d bytes", what, maxMetadata)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		te := &tokenError{status: resp.StatusCode}
		if json.Unmarshal(data, te) == nil && te.Code != "" {
			return fmt.Errorf("%s: %w", what, te)
		}
		return fmt.Errorf("%s answered %s", what, resp.Status)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: not a JSON answer: %v", what, err)
	}
	return nil
}

// callback is the loopback listener the browser is redirected to. It
// takes the first request to the redirect path.
type callback struct {
	srv  *http.Server
	got  chan url.Values
	done chan struct{}
}

func newCallback(ln net.Listener, redirect *url.URL) *callback {
	cb := &callback{got: make(chan url.Values, 1), done: make(chan struct{})}
	path := redirect.Path
	if path == "" {
		path = "/"
	}
	cb.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		select {
		case cb.got <- r.URL.Query():
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "Astrid received the authorization. You can close this window.\n")
		default:
			http.Error(w, "this authorization was already answered", http.StatusConflict)
		}
	})}
	go func() {
		defer close(cb.done)
		_ = cb.srv.Serve(ln)
	}()
	return cb
}

func (cb *callback) close() {
	cb.srv.Close()
	<-cb.done
}

// waitRedirect shows the authorization to the user and waits for the
// redirect: on the loopback listener, or handed back by the Authorizer.
func (o *oauthClient) waitRedirect(ctx context.Context, req AuthorizationRequest, cb *callback) (url.Values, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	type answer struct {
		url string
		err error
	}
	fe := make(chan answer, 1)
	go func() {
		u, err := o.authorizer.Authorize(ctx, req)
		fe <- answer{u, err}
	}()
	// The Authorizer must return once ctx ends; wait for it so that
	// nothing outlives the flow. The wait is on fe itself: pending is
	// the select's copy, set to nil once the answer is taken.
	defer func() { cancel(); <-fe }()
	pending := fe
	for {
		select {
		case q := <-cb.got:
			return q, nil
		case a := <-pending:
			fe <- a // for the deferred wait
			if a.err != nil {
				return nil, fmt.Errorf("the authorization was not completed: %w", a.err)
			}
			if a.url == "" {
				pending = nil // shown; keep waiting for the browser
				continue
			}
			u, err := url.Parse(a.url)
			want, _ := url.Parse(req.RedirectURL)
			if err != nil || u.Scheme != want.Scheme || !strings.EqualFold(u.Host, want.Host) || u.Path != want.Path {
				return nil, errors.New("the frontend handed back a URL that is not the redirect URL")
			}
			return u.Query(), nil
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer from the browser: %w", ctx.Err())
		}
	}
}

// checkRedirect checks the redirect's parameters and returns the code:
// an error answer, a state that is not ours or an issuer that is not the
// one asked (RFC 9207) refuse the authorization.
func checkRedirect(q url.Values, state, issuer string, issRequired bool) (string, error) {
	if e := q.Get("error"); e != "" {
		msg := "the authorization server refused: " + clipRunes(e, 64)
		if d := q.Get("error_description"); d != "" {
			msg += ": " + clipRunes(d, 300)
		}
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			msg += " (with a state that is not ours)"
		}
		return "", errors.New(msg)
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return "", errors.New("the redirect's state is not the one sent (a forged or stale redirect); authorization refused")
	}
	if iss, ok := q["iss"]; ok {
		if strings.TrimSuffix(iss[0], "/") != strings.TrimSuffix(issuer, "/") {
			return "", fmt.Errorf("the redirect comes from issuer %q, not %q; authorization refused", clipRunes(iss[0], 200), clipRunes(issuer, 200))
		}
	} else if issRequired {
		return "", errors.New("the redirect lacks the iss parameter its authorization server promised; authorization refused")
	}
	code := q.Get("code")
	if code == "" {
		return "", errors.New("the redirect carries no authorization code")
	}
	return code, nil
}
