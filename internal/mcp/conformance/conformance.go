// Package conformance is the MCP client the official conformance suite
// (npm @modelcontextprotocol/conformance) runs against its test servers.
// It is built from Astrid's real MCP host: a Manager over a throw-away
// $ASTRID_HOME, every tool call through the security interceptor (a
// scripted human allows each call once), elicitations answered by a
// scripted frontend that accepts and lets the client fill in defaults.
//
// The suite runs the command with the server's URL as the last argument,
// the scenario's name in MCP_CONFORMANCE_SCENARIO and, for some
// scenarios, a JSON context in MCP_CONFORMANCE_CONTEXT (a pre-registered
// client_id with its client_secret or private_key_pem). For every scenario
// the client connects over Streamable HTTP, initializes, lists the tools,
// calls each tool once with arguments made from its input schema, and
// disconnects.
//
// Servers that demand OAuth are authorized by the library's flow; this
// client is its frontend: the suite's authorization endpoint redirects
// without a user, so followRedirect requests the authorization URL itself
// and hands the redirect it answers with back to the flow.
package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/mcp"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// Main runs one scenario against the server URL in args and returns the
// exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: astrid-mcp-conformance SERVER_URL")
		return 2
	}
	scenario := getenv("MCP_CONFORMANCE_SCENARIO")
	oauth, cleanup, err := oauthConfig(scenario, getenv("MCP_CONFORMANCE_CONTEXT"))
	defer cleanup()
	if err != nil {
		fmt.Fprintln(stderr, "astrid-mcp-conformance:", err)
		return 2
	}
	if err := Run(ctx, args[len(args)-1], scenario, oauth, stdout); err != nil {
		fmt.Fprintln(stderr, "astrid-mcp-conformance:", err)
		return 1
	}
	return 0
}

// ClientMetadataURL is the client ID metadata document the suite expects
// a client to use where the authorization server supports them.
const ClientMetadataURL = "https://conformance-test.local/client-metadata.json"

// oauthConfig is the server's [oauth] table: the client metadata URL, and
// the pre-registered client of the scenario's context, if any. The
// auth/client-credentials-* scenarios (extension SEP-1046) use the client
// credentials grant, with the context's client secret or its private key,
// which is written to a 0600 file that cleanup removes.
func oauthConfig(scenario, contextJSON string) (c config.ServerOAuth, cleanup func(), err error) {
	c = config.ServerOAuth{ClientMetadataURL: ClientMetadataURL}
	cleanup = func() {}
	if contextJSON == "" {
		return c, cleanup, nil
	}
	var sc struct {
		ClientID      string `json:"client_id"`
		ClientSecret  string `json:"client_secret"`
		PrivateKeyPEM string `json:"private_key_pem"`
	}
	if err := json.Unmarshal([]byte(contextJSON), &sc); err != nil {
		return c, cleanup, fmt.Errorf("MCP_CONFORMANCE_CONTEXT: %w", err)
	}
	c.ClientID, c.ClientSecret = sc.ClientID, sc.ClientSecret
	if strings.HasPrefix(scenario, "auth/client-credentials") {
		c.Grant = config.GrantClientCredentials
	}
	if sc.PrivateKeyPEM != "" {
		f, err := os.CreateTemp("", "astrid-conformance-key-*.pem") // mode 0600
		if err != nil {
			return c, cleanup, err
		}
		cleanup = func() { os.Remove(f.Name()) }
		_, err = f.WriteString(sc.PrivateKeyPEM)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		c.PrivateKeyFile = f.Name()
		return c, cleanup, err
	}
	return c, cleanup, nil
}

// Run connects to url, calls every tool once and disconnects.
func Run(ctx context.Context, url, scenario string, oauth config.ServerOAuth, out io.Writer) error {
	dir, err := os.MkdirTemp("", "astrid-conformance-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	h := filepath.Join(dir, "home")
	vars := map[string]string{"ASTRID_HOME": h, "HOME": dir}
	c, err := core.Open(ctx, core.Options{Home: home.Dir(h), Getenv: func(k string) string { return vars[k] },
		SystemConfigFile: filepath.Join(dir, "none.toml"), Sync: store.SyncNormal})
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := mcp.New(mcp.Options{
		Servers:        map[string]config.Server{"conformance": {Transport: "streamable-http", URL: url, Trusted: true, RestartPolicy: "never", OAuth: oauth}},
		HealthInterval: -1,
		RequestTimeout: 20 * time.Second,
		Elicitor:       acceptAll{},
		Sampler:        scriptedModel{},
		Roots:          noRoots{},
		Audit:          c.Audit,
		ClientName:     "astrid-conformance",
		ClientVersion:  "1.0.0",
		OAuth:          mcp.OAuthOptions{Authorizer: followRedirect{}, Dir: filepath.Join(h, "mcp-oauth"), Timeout: 10 * time.Second},
	})
	if err != nil {
		return err
	}
	defer m.Close(context.WithoutCancel(ctx))
	if _, err := m.Start(ctx, "conformance"); err != nil {
		return err
	}
	reg := tools.New(tools.Options{})
	defer m.Attach(reg)()
	sess := security.Session{ID: "conformance", Principal: "conformance", Frontend: "conformance", Mode: security.Safe,
		Asker: approval.AskerFunc(func(context.Context, approval.Request) (approval.Answer, error) {
			return approval.Answer{Decision: approval.AllowOnce, By: "conformance"}, nil
		})}
	list, err := m.ListTools("conformance")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "scenario %q: %d tools\n", scenario, len(list))
	for _, t := range list {
		args := ArgsFor(t.InputSchema)
		res, err := reg.Run(ctx, c.Interceptor, sess, t.Name, args)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %s -> error=%v %s\n", t.Name, args, res.IsError, res.Text)
	}
	return nil
}

// ArgsFor makes arguments from an input schema: every property gets a
// value of its type (its default or first enum value when it has one).
func ArgsFor(schema json.RawMessage) json.RawMessage {
	var s struct {
		Properties map[string]struct {
			Type    any             `json:"type"`
			Default json.RawMessage `json:"default"`
			Enum    []any           `json:"enum"`
		} `json:"properties"`
	}
	_ = json.Unmarshal(schema, &s)
	args := map[string]any{}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		p := s.Properties[n]
		switch {
		case len(p.Default) > 0:
			args[n] = p.Default
			continue
		case len(p.Enum) > 0:
			args[n] = p.Enum[0]
			continue
		}
		typ, _ := p.Type.(string)
		switch typ {
		case "number", "integer":
			args[n] = i + 1
		case "boolean":
			args[n] = true
		case "array":
			args[n] = []any{}
		case "object":
			args[n] = map[string]any{}
		default:
			args[n] = "test"
		}
	}
	b, _ := json.Marshal(args)
	return b
}

// followRedirect is the conformance client's browser: it requests the
// authorization URL and returns where the authorization server redirects
// to, without following it.
type followRedirect struct{}

func (followRedirect) Authorize(ctx context.Context, req mcp.AuthorizationRequest) (string, error) {
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(r)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
		return "", fmt.Errorf("the authorization endpoint answered %s without a redirect", resp.Status)
	}
	return loc, nil
}

type acceptAll struct{}

func (acceptAll) Elicit(ctx context.Context, req mcp.ElicitRequest) (mcp.ElicitResult, error) {
	return mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
}

type scriptedModel struct{}

func (scriptedModel) Sample(ctx context.Context, req mcp.SampleRequest) (mcp.SampleResult, error) {
	return mcp.SampleResult{Text: "This is a scripted answer.", Model: "astrid-conformance"}, nil
}

type noRoots struct{}

func (noRoots) Roots(string) []string { return nil }
