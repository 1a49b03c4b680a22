package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
)

// fakeAuth is an authorization server and an OAuth-protected MCP server
// (newGoodServer over Streamable HTTP) on one 127.0.0.1 listener. It
// speaks the real protocol: RFC 9728 and RFC 8414 metadata, dynamic
// registration, an authorization endpoint that redirects at once (the
// user consents), and a token endpoint that checks the PKCE verifier
// against the challenge, the redirect URI, the client and the resource.
type fakeAuth struct {
	t  *testing.T
	ts *httptest.Server

	// Settings, fixed before use.
	issuer     string   // "" means the server's URL
	listScopes []string // scopes tools/list needs
	callScopes []string // scopes tools/call needs
	challenge  string   // scope in the 401 challenge
	tamper     func(q url.Values)
	withhold   string // a scope the token endpoint never grants
	prmStatus  int    // when set, the protected resource metadata answers this status
	asStatus   int    // when set, the authorization server metadata answers this status
	// The metadata's token_endpoint_auth_methods_supported (nil: "none"),
	// grant_types_supported and signing algorithms (nil: left out).
	authMethods, grantsOffered, signingAlgs []string
	cc                                      ccClient // the client_credentials client
	onRegister                              func()   // called at each dynamic registration

	mu       sync.Mutex
	codes    map[string]codeGrant
	tokens   map[string][]string // access token → scopes
	refresh  map[string][]string // refresh token → scopes
	authReqs []url.Values
	grants   []string // grant types of token requests
	issued   []string // every token and code handed out
	pkceOK   int
	denied   int // requests to /mcp answered 401
}

type codeGrant struct {
	challenge, clientID, redirect, resource string
	scopes                                  []string
}

func newFakeAuth(t *testing.T) *fakeAuth {
	f := &fakeAuth{t: t, codes: map[string]codeGrant{}, tokens: map[string][]string{}, refresh: map[string][]string{}}
	srv := newGoodServer()
	mcpH := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		if f.prmStatus != 0 {
			w.WriteHeader(f.prmStatus)
			return
		}
		writeJSON(w, map[string]any{"resource": f.ts.URL + "/mcp", "authorization_servers": []string{f.ts.URL}, "scopes_supported": []string{"read"}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		if f.asStatus != 0 {
			w.WriteHeader(f.asStatus)
			return
		}
		iss := f.issuer
		if iss == "" {
			iss = f.ts.URL
		}
		methods := f.authMethods
		if methods == nil {
			methods = []string{"none"}
		}
		md := map[string]any{"issuer": iss, "authorization_endpoint": f.ts.URL + "/authorize", "token_endpoint": f.ts.URL + "/token",
			"registration_endpoint": f.ts.URL + "/register", "response_types_supported": []string{"code"},
			"code_challenge_methods_supported": []string{"S256"}, "token_endpoint_auth_methods_supported": methods}
		if f.grantsOffered != nil {
			md["grant_types_supported"] = f.grantsOffered
		}
		if f.signingAlgs != nil {
			md["token_endpoint_auth_signing_alg_values_supported"] = f.signingAlgs
		}
		writeJSON(w, md)
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		if f.onRegister != nil {
			f.onRegister()
		}
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, map[string]any{"client_id": "client-" + f.random(), "token_endpoint_auth_method": "none"})
	})
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.Handle("/mcp", f.protect(mcpH))
	f.ts = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.ts.CloseClientConnections()
		f.ts.Close()
	})
	return f
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fakeAuth) random() string {
	b := make([]byte, 16)
	rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	f.mu.Lock()
	f.issued = append(f.issued, s)
	f.mu.Unlock()
	return s
}

func (f *fakeAuth) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.authReqs = append(f.authReqs, q)
	f.mu.Unlock()
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := f.random()
	f.mu.Lock()
	f.codes[code] = codeGrant{challenge: q.Get("code_challenge"), clientID: q.Get("client_id"), redirect: q.Get("redirect_uri"),
		resource: q.Get("resource"), scopes: strings.Fields(q.Get("scope"))}
	f.mu.Unlock()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	bq := url.Values{"code": {code}, "state": {q.Get("state")}}
	if f.tamper != nil {
		f.tamper(bq)
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (f *fakeAuth) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	fail := func(code string) {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": code})
	}
	f.mu.Lock()
	f.grants = append(f.grants, r.PostForm.Get("grant_type"))
	f.mu.Unlock()
	var scopes []string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		f.mu.Lock()
		g, ok := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code"))
		f.mu.Unlock()
		switch {
		case !ok:
			fail("invalid_grant")
			return
		case s256(r.PostForm.Get("code_verifier")) != g.challenge:
			fail("invalid_grant") // PKCE
			return
		case r.PostForm.Get("redirect_uri") != g.redirect, r.PostForm.Get("client_id") != g.clientID, r.PostForm.Get("resource") != g.resource:
			fail("invalid_request")
			return
		}
		f.mu.Lock()
		f.pkceOK++
		f.mu.Unlock()
		scopes = slices.DeleteFunc(slices.Clone(g.scopes), func(s string) bool { return s == f.withhold })
	case "refresh_token":
		f.mu.Lock()
		s, ok := f.refresh[r.PostForm.Get("refresh_token")]
		delete(f.refresh, r.PostForm.Get("refresh_token"))
		f.mu.Unlock()
		if !ok {
			fail("invalid_grant")
			return
		}
		scopes = s
	case "client_credentials":
		if err := f.cc.authenticate(r, f.ts.URL); err != nil {
			f.t.Logf("fake authorization server: client_credentials refused: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			writeJSON(w, map[string]string{"error": "invalid_client", "error_description": err.Error()})
			return
		}
		if r.PostForm.Get("resource") != f.ts.URL+"/mcp" {
			fail("invalid_target")
			return
		}
		scopes = strings.Fields(r.PostForm.Get("scope"))
		at := f.random()
		f.mu.Lock()
		f.tokens[at] = scopes
		f.mu.Unlock()
		// No refresh token: the client asks again (RFC 6749 4.4.3).
		writeJSON(w, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3600, "scope": strings.Join(scopes, " ")})
		return
	default:
		fail("unsupported_grant_type")
		return
	}
	at, rt := f.random(), f.random()
	f.mu.Lock()
	f.tokens[at] = scopes
	f.refresh[rt] = scopes
	f.mu.Unlock()
	writeJSON(w, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3600, "refresh_token": rt, "scope": strings.Join(scopes, " ")})
}

// protect demands a known bearer token, listScopes for tools/list and
// callScopes for tools/call.
func (f *fakeAuth) protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prm := f.ts.URL + "/.well-known/oauth-protected-resource/mcp"
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		scopes, known := f.tokens[tok]
		f.mu.Unlock()
		if !ok || !known {
			f.mu.Lock()
			f.denied++
			f.mu.Unlock()
			h := fmt.Sprintf(`Bearer error="invalid_token", resource_metadata="%s"`, prm)
			if f.prmStatus != 0 {
				h = `Bearer error="invalid_token"` // a server without the metadata names none
			}
			if f.challenge != "" {
				h += fmt.Sprintf(`, scope="%s"`, f.challenge)
			}
			w.Header().Set("WWW-Authenticate", h)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && len(f.listScopes)+len(f.callScopes) > 0 {
			body, _ := readAllLimit(r)
			var msg struct{ Method string }
			json.Unmarshal(body, &msg)
			need := map[string][]string{"tools/list": f.listScopes, "tools/call": f.callScopes}[msg.Method]
			if !containsAll(scopes, need) {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope="%s", resource_metadata="%s"`, strings.Join(need, " "), prm))
				http.Error(w, "insufficient scope", http.StatusForbidden)
				return
			}
			r.Body = readCloser(body)
		}
		next.ServeHTTP(w, r)
	})
}

func readAllLimit(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(http.MaxBytesReader(nil, r.Body, 1<<20))
	return b.Bytes(), err
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func readCloser(b []byte) nopCloser { return nopCloser{bytes.NewReader(b)} }

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func (f *fakeAuth) authorizations() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.authReqs)
}

func (f *fakeAuth) grantTypes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.grants)
}

func (f *fakeAuth) revokeAccessTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

// browser is a frontend whose user consents at once: it follows the
// authorization URL like a browser, through the redirect to Astrid's
// loopback listener, and returns "" (the listener gets the code).
type browser struct {
	mu    sync.Mutex
	shown []AuthorizationRequest

	// late makes Authorize return at once and the browser follow the
	// URL afterwards, as a frontend that only shows the link does.
	late     time.Duration
	browsing sync.WaitGroup
}

func (b *browser) Authorize(ctx context.Context, req AuthorizationRequest) (string, error) {
	b.mu.Lock()
	b.shown = append(b.shown, req)
	b.mu.Unlock()
	if b.late > 0 {
		b.browsing.Go(func() {
			time.Sleep(b.late)
			b.follow(context.Background(), req.URL)
		})
		return "", nil
	}
	return "", b.follow(ctx, req.URL)
}

func (b *browser) follow(ctx context.Context, u string) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (b *browser) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.shown)
}

// auditLog records audit entries.
type auditLog struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (a *auditLog) Append(_ context.Context, e audit.Entry) (audit.Receipt, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return audit.Receipt{}, nil
}

func (a *auditLog) oauth() []audit.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Entry
	for _, e := range a.entries {
		if e.Action.Kind == "mcp_oauth_authorize" {
			out = append(out, e)
		}
	}
	return out
}

// oauthEnv is a Manager with one OAuth-protected server, "web".
type oauthEnv struct {
	m     *Manager
	dir   string
	fe    *browser
	audit *auditLog
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newOAuthEnv(t *testing.T, f *fakeAuth, dir string, oc config.ServerOAuth) *oauthEnv {
	t.Helper()
	e := &oauthEnv{dir: dir, fe: &browser{}, audit: &auditLog{}, logs: &syncBuffer{}}
	m, err := New(Options{
		Servers:        map[string]config.Server{"web": {Transport: "streamable-http", URL: f.ts.URL + "/mcp", Trusted: true, RestartPolicy: "never", OAuth: oc}},
		HealthInterval: -1, RequestTimeout: 10 * time.Second, StartTimeout: 20 * time.Second,
		Audit:  e.audit,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OAuth:  OAuthOptions{Authorizer: e.fe, Dir: dir, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	t.Cleanup(func() { m.Close(context.Background()) })
	return e
}

func (e *oauthEnv) start(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := e.m.Start(ctx, "web")
	return err
}

// noSecrets fails when a token or code the fake issued appears in the
// logs, the audit entries or text.
func (e *oauthEnv) noSecrets(t *testing.T, f *fakeAuth, texts ...string) {
	t.Helper()
	entries, _ := json.Marshal(e.audit.entries)
	all := e.logs.String() + "\n" + string(entries) + "\n" + strings.Join(texts, "\n")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.issued) == 0 {
		t.Fatal("the fake issued nothing: the check would prove nothing")
	}
	for _, s := range f.issued {
		if strings.Contains(all, s) {
			t.Errorf("a token or code the authorization server issued appears in logs, audit or errors")
		}
	}
}

func TestOAuthHappyPath(t *testing.T) {
	f := newFakeAuth(t)
	dir := filepath.Join(t.TempDir(), "mcp-oauth")
	e := newOAuthEnv(t, f, dir, config.ServerOAuth{})
	if err := e.start(t); err != nil {
		t.Fatal(err)
	}
	tools, err := e.m.ListTools("web")
	if err != nil || len(tools) == 0 {
		t.Fatalf("tools %d, err %v", len(tools), err)
	}
	reqs := f.authorizations()
	if len(reqs) != 1 || f.pkceOK != 1 {
		t.Fatalf("%d authorization requests, %d PKCE-verified code exchanges; want 1 and 1", len(reqs), f.pkceOK)
	}
	q := reqs[0]
	if q.Get("resource") != f.ts.URL+"/mcp" || q.Get("scope") != "read" || len(q.Get("state")) < 40 {
		t.Errorf("authorization request %v: want resource %s/mcp, scope read (scopes_supported), a long state", q, f.ts.URL)
	}
	if e.fe.shown[0].Domain != "127.0.0.1" || !strings.HasPrefix(e.fe.shown[0].RedirectURL, "http://127.0.0.1:") {
		t.Errorf("shown %+v", e.fe.shown[0])
	}
	// Token file: 0600 in a 0700 directory, bound to the server's URL.
	fi, err := os.Stat(filepath.Join(dir, "web.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("token dir mode %v, want 0700", di.Mode().Perm())
	}
	if a := e.audit.oauth(); len(a) != 1 || a[0].Decision != audit.Allowed {
		t.Errorf("audit %+v, want one allowed authorization", a)
	}
	e.noSecrets(t, f)
}

func TestOAuthWrongStateRefused(t *testing.T) {
	f := newFakeAuth(t)
	f.tamper = func(q url.Values) { q.Set("state", "forged-"+q.Get("state")) }
	dir := t.TempDir()
	e := newOAuthEnv(t, f, dir, config.ServerOAuth{})
	err := e.start(t)
	if err == nil || !strings.Contains(err.Error(), "state") {
		t.Fatalf("start: %v, want a refusal naming the state", err)
	}
	f.mu.Lock()
	grants := slices.Clone(f.grants)
	f.mu.Unlock()
	if len(grants) != 0 {
		t.Errorf("the forged redirect's code was exchanged: %v", grants)
	}
	if _, err := os.Stat(filepath.Join(dir, "web.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token file after a refused authorization: %v", err)
	}
	if a := e.audit.oauth(); len(a) == 0 || a[0].Decision != audit.Denied {
		t.Errorf("audit %+v, want a denied authorization", a)
	}
	e.noSecrets(t, f, err.Error())
}

func TestOAuthIssuerMismatchRefused(t *testing.T) {
	f := newFakeAuth(t)
	f.issuer = "https://evil.example"
	e := newOAuthEnv(t, f, t.TempDir(), config.ServerOAuth{})
	err := e.start(t)
	if err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Fatalf("start: %v, want an issuer mismatch", err)
	}
	if n := len(f.authorizations()); n != 0 || e.fe.count() != 0 {
		t.Errorf("%d authorization requests, %d shown to the user after an issuer mismatch", n, e.fe.count())
	}
}

// TestOAuthLegacyServer: a server of MCP 2025-03-26 has no protected
// resource metadata; its origin authorizes, described by metadata at the
// origin or by the default endpoints there. Only a discovery that found
// nothing (404) falls back; the fallback's metadata must stay on the
// server's origin.
func TestOAuthLegacyServer(t *testing.T) {
	for _, tc := range []struct {
		name                string
		prm, as             int
		issuer, wantRefusal string
	}{
		{name: "metadata at the origin", prm: http.StatusNotFound, issuer: "/oauth"},
		{name: "default endpoints", prm: http.StatusNotFound, as: http.StatusNotFound},
		{name: "metadata naming another origin", prm: http.StatusNotFound, issuer: "https://evil.example", wantRefusal: "names issuer"},
		{name: "resource metadata failing", prm: http.StatusInternalServerError, wantRefusal: "no protected resource metadata found"},
		{name: "default endpoints after a failing discovery", prm: http.StatusNotFound, as: http.StatusBadGateway, wantRefusal: "no metadata for authorization server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAuth(t)
			f.prmStatus, f.asStatus = tc.prm, tc.as
			if strings.HasPrefix(tc.issuer, "/") {
				tc.issuer = f.ts.URL + tc.issuer
			}
			f.issuer = tc.issuer
			dir := t.TempDir()
			e := newOAuthEnv(t, f, dir, config.ServerOAuth{})
			err := e.start(t)
			if tc.wantRefusal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantRefusal) {
					t.Fatalf("start: %v, want %q", err, tc.wantRefusal)
				}
				if n := len(f.authorizations()); n != 0 {
					t.Errorf("%d authorization requests after a refusal", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tools, err := e.m.ListTools("web"); err != nil || len(tools) == 0 {
				t.Fatalf("tools %d, err %v", len(tools), err)
			}
			reqs := f.authorizations()
			if len(reqs) != 1 || f.pkceOK != 1 || reqs[0].Get("resource") != f.ts.URL+"/mcp" {
				t.Fatalf("authorization requests %v, %d PKCE-verified", reqs, f.pkceOK)
			}
			b, err := os.ReadFile(filepath.Join(dir, "web.json"))
			if err != nil || !strings.Contains(string(b), `"legacy": true`) {
				t.Errorf("token file %s %v", b, err)
			}
			// The server revokes the access token: a refresh at the same
			// endpoints answers the 401, without the user.
			e.m.Close(context.Background())
			f.revokeAccessTokens()
			e2 := newOAuthEnv(t, f, dir, config.ServerOAuth{})
			if err := e2.start(t); err != nil {
				t.Fatal(err)
			}
			if e2.fe.count() != 0 || !slices.Contains(f.grantTypes(), "refresh_token") {
				t.Errorf("asked %d times, grants %v; want a refresh", e2.fe.count(), f.grantTypes())
			}
		})
	}
}

func TestOAuthIssParameterMismatchRefused(t *testing.T) {
	f := newFakeAuth(t)
	f.tamper = func(q url.Values) { q.Set("iss", "https://evil.example") }
	e := newOAuthEnv(t, f, t.TempDir(), config.ServerOAuth{})
	if err := e.start(t); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Fatalf("start: %v, want the redirect's iss refused", err)
	}
}

func TestOAuthRefresh(t *testing.T) {
	f := newFakeAuth(t)
	dir := t.TempDir()
	e := newOAuthEnv(t, f, dir, config.ServerOAuth{})
	if err := e.start(t); err != nil {
		t.Fatal(err)
	}
	e.m.Close(context.Background())
	// Time passes: the stored access token expires.
	rec, err := newOAuthStore(dir).load("web")
	if err != nil || rec == nil || rec.RefreshToken == "" {
		t.Fatalf("stored record %v, err %v", rec != nil, err)
	}
	rec.Expiry = time.Now().Add(-time.Minute)
	if err := newOAuthStore(dir).save("web", rec); err != nil {
		t.Fatal(err)
	}
	// A new daemon: the stored refresh token gets a new access token
	// without the user.
	e2 := newOAuthEnv(t, f, dir, config.ServerOAuth{})
	if err := e2.start(t); err != nil {
		t.Fatal(err)
	}
	if e2.fe.count() != 0 {
		t.Errorf("the user was asked again instead of a refresh")
	}
	e2.m.Close(context.Background())
	// The server revoked the access token: the 401 is answered by a
	// refresh, again without the user.
	f.revokeAccessTokens()
	e3 := newOAuthEnv(t, f, dir, config.ServerOAuth{})
	if err := e3.start(t); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	grants := slices.Clone(f.grants)
	f.mu.Unlock()
	if want := []string{"authorization_code", "refresh_token", "refresh_token"}; !slices.Equal(grants, want) {
		t.Errorf("grants %v, want %v", grants, want)
	}
	if e3.fe.count() != 0 {
		t.Errorf("the user was asked again instead of a refresh")
	}
	e.noSecrets(t, f)
	e3.noSecrets(t, f)
}

func TestOAuthStepUp(t *testing.T) {
	f := newFakeAuth(t)
	f.challenge = "read"
	f.listScopes = []string{"read", "write"}
	e := newOAuthEnv(t, f, t.TempDir(), config.ServerOAuth{})
	if err := e.start(t); err != nil {
		t.Fatal(err)
	}
	reqs := f.authorizations()
	if len(reqs) != 2 {
		t.Fatalf("%d authorizations, want 2 (first, step-up)", len(reqs))
	}
	if reqs[0].Get("scope") != "read" || !containsAll(strings.Fields(reqs[1].Get("scope")), []string{"read", "write"}) {
		t.Errorf("scopes %q then %q; want read (from the challenge), then read and write", reqs[0].Get("scope"), reqs[1].Get("scope"))
	}
}

// A frontend that shows the link and returns before the browser comes
// back: the flow waits for the redirect, and returns once it has it
// (it once went on waiting for the frontend's answer it had already
// taken, for ever).
func TestOAuthAuthorizerReturnsBeforeRedirect(t *testing.T) {
	f := newFakeAuth(t)
	e := newOAuthEnv(t, f, t.TempDir(), config.ServerOAuth{})
	e.fe.late = 50 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- e.start(t) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("start hangs after the redirect arrived")
	}
	e.fe.browsing.Wait()
	if _, err := e.m.ListTools("web"); err != nil {
		t.Fatal(err)
	}
}

func TestOAuthStepUpRetryLimit(t *testing.T) {
	f := newFakeAuth(t)
	f.listScopes = []string{"admin"}
	f.withhold = "admin" // asked for, never granted: every step-up fails
	e := newOAuthEnv(t, f, t.TempDir(), config.ServerOAuth{})
	err := e.start(t)
	if err == nil {
		t.Fatal("start succeeded against a server that always answers insufficient_scope")
	}
	reqs := f.authorizations()
	if len(reqs) != 1+maxStepUps {
		t.Fatalf("%d authorizations, want 1 and %d step-ups", len(reqs), maxStepUps)
	}
	if !strings.Contains(reqs[1].Get("scope"), "admin") {
		t.Errorf("step-up asked for %q, want the demanded admin scope", reqs[1].Get("scope"))
	}
}

func TestOAuthTokenFilePermissionsRefused(t *testing.T) {
	f := newFakeAuth(t)
	dir := t.TempDir()
	e := newOAuthEnv(t, f, dir, config.ServerOAuth{})
	if err := e.start(t); err != nil {
		t.Fatal(err)
	}
	e.m.Close(context.Background())
	file := filepath.Join(dir, "web.json")
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	e2 := newOAuthEnv(t, f, dir, config.ServerOAuth{})
	err := e2.start(t)
	if err == nil || !strings.Contains(err.Error(), "others may read it") {
		t.Fatalf("start with a world-readable token file: %v", err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o644 {
		t.Errorf("the refused file was rewritten")
	}
}

func TestOAuthWithoutAuthorizer(t *testing.T) {
	f := newFakeAuth(t)
	m, err := New(Options{Servers: map[string]config.Server{"web": {Transport: "streamable-http", URL: f.ts.URL + "/mcp", RestartPolicy: "never"}}, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	_, err = m.Start(context.Background(), "web")
	var are *AuthorizationRequiredError
	if !errors.As(err, &are) {
		t.Fatalf("start: %v, want *AuthorizationRequiredError", err)
	}
}

func TestOAuthLoginLogout(t *testing.T) {
	f := newFakeAuth(t)
	dir := t.TempDir()
	e := newOAuthEnv(t, f, dir, config.ServerOAuth{})
	// The login's own frontend is asked, not the manager's.
	login := &browser{}
	if err := e.m.Login(context.Background(), "web", login); err != nil {
		t.Fatal(err)
	}
	if err := e.start(t); err != nil {
		t.Fatal(err)
	}
	if login.count() != 1 || e.fe.count() != 0 {
		t.Errorf("login's frontend asked %d times, the manager's %d; want 1 and 0 (the login's tokens serve the start)", login.count(), e.fe.count())
	}
	if err := e.m.Logout("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "web.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token file after logout: %v", err)
	}
	if err := e.m.Logout("nope"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("logout of an unknown server: %v", err)
	}
}

func TestOAuthResourceMismatchRefused(t *testing.T) {
	f := newFakeAuth(t)
	o := &oauthClient{name: "web", hc: http.DefaultClient}
	var err error
	o.serverURL, _ = url.Parse(f.ts.URL + "/other")
	_, _, err = o.discoverResource(context.Background(), challenge{params: map[string]string{"resource_metadata": f.ts.URL + "/.well-known/oauth-protected-resource/mcp"}})
	if err == nil || !strings.Contains(err.Error(), "is for") {
		t.Errorf("metadata for /mcp accepted for /other: %v", err)
	}
	o.serverURL, _ = url.Parse(f.ts.URL + "/mcp")
	_, _, err = o.discoverResource(context.Background(), challenge{params: map[string]string{"resource_metadata": "http://127.0.0.2:1/prm"}})
	if err == nil || !strings.Contains(err.Error(), "origin") {
		t.Errorf("resource_metadata on another origin accepted: %v", err)
	}
}

func TestParseChallenges(t *testing.T) {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Basic realm="x", Bearer error="insufficient_scope", scope="a b", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", error_description="say \"hi\""`)
	c := bearerChallenge(h)
	if c.params["error"] != "insufficient_scope" || !slices.Equal(c.scopes(), []string{"a", "b"}) ||
		c.params["resource_metadata"] != "https://h/.well-known/oauth-protected-resource/mcp" || c.params["error_description"] != `say "hi"` {
		t.Errorf("parsed %+v", c)
	}
	if c := bearerChallenge(http.Header{"Www-Authenticate": {`Bearer realm=api,scope=x`}}); c.params["scope"] != "x" || c.params["realm"] != "api" {
		t.Errorf("tokens: %+v", c)
	}
	if c := bearerChallenge(http.Header{"Www-Authenticate": {`Basic realm="x"`}}); len(c.params) != 0 {
		t.Errorf("no bearer challenge: %+v", c)
	}
}

func TestOAuthURLRules(t *testing.T) {
	for _, tt := range []struct {
		u  string
		ok bool
	}{
		{"https://as.example/token", true},
		{"http://127.0.0.1:8080/token", true},
		{"http://localhost/token", true},
		{"http://[::1]:9/x", true},
		{"http://as.example/token", false},
		{"https://user:pw@as.example/", false},
		{"https://as.example/#frag", false},
		{"ftp://as.example/", false},
	} {
		if _, err := checkOAuthURL("u", tt.u); (err == nil) != tt.ok {
			t.Errorf("checkOAuthURL(%q) = %v, want ok %v", tt.u, err, tt.ok)
		}
	}
	res, _ := url.Parse("https://h/api")
	for _, tt := range []struct {
		srv string
		ok  bool
	}{{"https://h/api", true}, {"https://h/api/mcp", true}, {"https://h/apix", false}, {"https://h:444/api", false}, {"http://h/api", false}} {
		su, _ := url.Parse(tt.srv)
		if covers(res, su) != tt.ok {
			t.Errorf("covers(%s, %s) != %v", res, tt.srv, tt.ok)
		}
	}
	iu, _ := url.Parse("https://as.example/tenant1")
	want := []string{"https://as.example/.well-known/oauth-authorization-server/tenant1", "https://as.example/.well-known/openid-configuration/tenant1", "https://as.example/tenant1/.well-known/openid-configuration"}
	if got := asMetadataURLs(iu); !slices.Equal(got, want) {
		t.Errorf("asMetadataURLs = %v", got)
	}
}

// TestOAuthStepUpDuringACall: a server that demands more scopes for a
// tool call gets them by a step-up whose request names the calling
// session (for the runtime to show it there); the start named none.
func TestOAuthStepUpDuringACall(t *testing.T) {
	f := newFakeAuth(t)
	f.callScopes = []string{"read", "write"}
	fe := &browser{}
	e := newEnv(t, map[string]config.Server{"web": {Transport: "streamable-http", URL: f.ts.URL + "/mcp", Trusted: true, RestartPolicy: "never"}},
		func(o *Options) { o.OAuth = OAuthOptions{Authorizer: fe, Dir: t.TempDir(), Timeout: 10 * time.Second} })
	e.start("web")
	if got := e.ok("mcp__web__echo", map[string]any{"text": "hi"}); !strings.Contains(got, "hi") {
		t.Errorf("echo = %q", got)
	}
	fe.mu.Lock()
	shown := slices.Clone(fe.shown)
	fe.mu.Unlock()
	if len(shown) != 2 || shown[0].Session != "" || shown[1].Session != "s1" || !slices.Contains(shown[1].Scopes, "write") {
		t.Errorf("authorization requests %+v; want the start's (no session), then the call's step-up for s1 with write", shown)
	}
}

// TestOAuthSessionsOnly: an Authorizer that asks only through sessions is
// not asked for a start, and the flow stops before it registers a client
// or listens: the start fails with the login hint.
func TestOAuthSessionsOnly(t *testing.T) {
	f := newFakeAuth(t)
	var registered atomic.Int32
	f.onRegister = func() { registered.Add(1) }
	fe := &browser{}
	e := newEnv(t, map[string]config.Server{"web": {Transport: "streamable-http", URL: f.ts.URL + "/mcp", Trusted: true, RestartPolicy: "never"}},
		func(o *Options) {
			o.OAuth = OAuthOptions{Authorizer: fe, SessionsOnly: true, Dir: t.TempDir(), Timeout: 10 * time.Second}
		})
	_, err := e.m.Start(context.Background(), "web")
	var are *AuthorizationRequiredError
	if !errors.As(err, &are) || fe.count() != 0 || registered.Load() != 0 {
		t.Fatalf("start: %v; asked %d, registered %d; want the login hint, nobody asked, no registration", err, fe.count(), registered.Load())
	}
}
