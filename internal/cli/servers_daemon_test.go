package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/mcp"
	"github.com/astrid-runtime/astrid/internal/runtime"
)

// TestServersLoginLogout drives `servers login|logout` through a daemon
// whose backend is the runtime's over a real MCP manager: logout removes
// the stored tokens of a configured server; login refuses an unknown
// server (a stdio one: TestServerLoginFailures), and says why a login whose authorization server
// can't be reached failed; a server only the workspace defines is unknown
// to the daemon.
func TestServersLoginLogout(t *testing.T) {
	te := newTestEnv(t)
	te.write(t, "home/config.toml", "[servers.web]\ntransport = \"streamable-http\"\nurl = \"http://127.0.0.1:1/mcp\"\n")
	te.write(t, "repo/.astrid/config.toml", "[servers.ws]\ntransport = \"streamable-http\"\nurl = \"https://example.com/mcp\"\n")
	tokens := filepath.Join(te.tmp, "home", "mcp-oauth", "web.json")
	te.write(t, "home/mcp-oauth/web.json", `{"server_url":"http://127.0.0.1:1/mcp"}`)
	os.Chmod(tokens, 0o600)
	serveMCPOnly(t, te)
	stdout, stderr, code := te.run(t, "servers", "logout", "web")
	if code != 0 || !strings.Contains(stdout, "logged out: web") {
		t.Fatalf("logout: exit %d, %s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(tokens); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token file after logout: %v", err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"servers", "login", "nope"}, "no such MCP server"},
		{[]string{"servers", "login", "web"}, "127.0.0.1:1"},
		{[]string{"servers", "logout", "ws"}, "no such MCP server"},
	} {
		_, stderr, code := te.run(t, tt.args...)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestServersLoginClientCredentials: `servers login` of a server
// configured for the client credentials grant authorizes at once, with
// no URL to open, and the daemon keeps the token (0600).
func TestServersLoginClientCredentials(t *testing.T) {
	var ts *httptest.Server
	var grants atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"resource": %q, "authorization_servers": [%q]}`, ts.URL+"/mcp", ts.URL)
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer": %q, "authorization_endpoint": %q, "token_endpoint": %q, "response_types_supported": ["code"],
			"code_challenge_methods_supported": ["S256"], "grant_types_supported": ["client_credentials"],
			"token_endpoint_auth_methods_supported": ["client_secret_basic"]}`, ts.URL, ts.URL+"/authorize", ts.URL+"/token")
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" || !ok || id != "machine" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error": "invalid_client"}`)
			return
		}
		grants.Add(1)
		io.WriteString(w, `{"access_token": "cc-token", "token_type": "Bearer", "expires_in": 3600}`)
	})
	ts = httptest.NewServer(mux)
	defer ts.Close()

	te := newTestEnv(t)
	te.write(t, "home/config.toml", fmt.Sprintf("[servers.web]\ntransport = \"streamable-http\"\nurl = %q\n[servers.web.oauth]\ngrant = \"client_credentials\"\nclient_id = \"machine\"\nclient_secret = \"s3cret\"\n", ts.URL+"/mcp"))
	serveMCPOnly(t, te)
	stdout, stderr, code := te.run(t, "servers", "login", "web")
	if code != 0 || !strings.Contains(stdout, "authorized: web") || strings.Contains(stderr, "open this URL") || grants.Load() != 1 {
		t.Fatalf("login: exit %d, %d grants, %s%s", code, grants.Load(), stdout, stderr)
	}
	fi, err := os.Stat(filepath.Join(te.tmp, "home", "mcp-oauth", "web.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
}

// serveMCPOnly serves te's daemon with an mcpOnly backend over a real MCP
// manager of the configured servers.
func serveMCPOnly(t *testing.T, te *testEnv) {
	t.Helper()
	serveTestDaemon(t, te, func(_ context.Context, deps daemon.BackendDeps) (daemon.Backend, error) {
		m, err := mcp.New(mcp.Options{Servers: deps.Config.Servers, HealthInterval: -1, Audit: deps.Core.Audit,
			OAuth: mcp.OAuthOptions{Dir: deps.Core.Home.MCPOAuthDir()}})
		if err != nil {
			return nil, err
		}
		return mcpOnly{&runtime.Backend{Unavailable: daemon.Unavailable{Reason: "test"}, MCP: m}}, nil
	})
}

// mcpOnly is the runtime's backend with an MCP manager and no agent
// runtime: only its server methods may be called.
type mcpOnly struct{ *runtime.Backend }

func (b mcpOnly) Stats() daemon.BackendStats         { return daemon.BackendStats{Servers: 1} }
func (b mcpOnly) Shutdown(ctx context.Context) error { return b.MCP.Close(ctx) }

// startRecorder records the server params of start and stop calls.
type startRecorder struct {
	daemon.Unavailable
	got chan api.ServerParams
}

func (b startRecorder) StartServer(_ context.Context, _ daemon.Caller, p api.ServerParams) (api.ServerInfo, error) {
	b.got <- p
	return api.ServerInfo{Name: p.Name, Workspace: p.Workspace, State: "running"}, nil
}

func (b startRecorder) StopServer(_ context.Context, _ daemon.Caller, p api.ServerParams) (api.Empty, error) {
	b.got <- p
	return api.Empty{}, nil
}

// TestServersStartInWorkspace: --workspace names the workspace whose
// configuration added the server, resolved to its physical root as the
// daemon keys workspaces; without it the configured servers are meant.
func TestServersStartInWorkspace(t *testing.T) {
	te := newTestEnv(t)
	if err := os.Symlink(filepath.Join(te.tmp, "repo"), filepath.Join(te.tmp, "link")); err != nil {
		t.Fatal(err)
	}
	rec := startRecorder{Unavailable: daemon.Unavailable{Reason: "test"}, got: make(chan api.ServerParams, 4)}
	serveTestDaemon(t, te, func(context.Context, daemon.BackendDeps) (daemon.Backend, error) { return rec, nil })
	root, _ := filepath.EvalSymlinks(filepath.Join(te.tmp, "repo"))
	for _, tt := range []struct {
		args []string
		want api.ServerParams
	}{
		{[]string{"servers", "start", "web", "--workspace", filepath.Join(te.tmp, "link")}, api.ServerParams{Name: "web", Workspace: root}},
		{[]string{"servers", "stop", "web", "--workspace", filepath.Join(te.tmp, "link")}, api.ServerParams{Name: "web", Workspace: root}},
		{[]string{"servers", "start", "web"}, api.ServerParams{Name: "web"}},
	} {
		if _, stderr, code := te.run(t, tt.args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, stderr)
		}
		if got := <-rec.got; got != tt.want {
			t.Errorf("%v: the daemon got %+v, want %+v", tt.args, got, tt.want)
		}
	}
	if _, stderr, code := te.run(t, "servers", "start", "web", "--workspace", filepath.Join(te.tmp, "missing")); code == 0 || !strings.Contains(stderr, "--workspace") {
		t.Errorf("a missing workspace: exit %d, %s", code, stderr)
	}
}
