// Package conformance is the MCP client the official conformance suite
// (npm @modelcontextprotocol/conformance) runs against its test servers.
// It is built from Astrid's real MCP host: a Manager over a throw-away
// $ASTRID_HOME, every tool call through the security interceptor (a
// scripted human allows each call once), elicitations answered by a
// scripted frontend that accepts and lets the client fill in defaults.
//
// The suite runs the command with the server's URL as the last argument
// and the scenario's name in MCP_CONFORMANCE_SCENARIO. For every scenario
// the client connects over Streamable HTTP, initializes, lists the tools,
// calls each tool once with arguments made from its input schema, and
// disconnects.
package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
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
	if err := Run(ctx, args[len(args)-1], getenv("MCP_CONFORMANCE_SCENARIO"), stdout); err != nil {
		fmt.Fprintln(stderr, "astrid-mcp-conformance:", err)
		return 1
	}
	return 0
}

// Run connects to url, calls every tool once and disconnects.
func Run(ctx context.Context, url, scenario string, out io.Writer) error {
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
		Servers:        map[string]config.Server{"conformance": {Transport: "streamable-http", URL: url, Trusted: true, RestartPolicy: "never"}},
		HealthInterval: -1,
		RequestTimeout: 20 * time.Second,
		Elicitor:       acceptAll{},
		Sampler:        scriptedModel{},
		Roots:          noRoots{},
		Audit:          c.Audit,
		ClientName:     "astrid-conformance",
		ClientVersion:  "1.0.0",
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
