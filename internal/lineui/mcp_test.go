package lineui_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/lineui"
	"github.com/astrid-runtime/astrid/internal/lineui/lineuitest"
)

// mcpFake is a fake client that also serves resources and prompts,
// recording the params it got.
type mcpFake struct {
	*lineuitest.FakeClient
	got []any
}

func (f *mcpFake) ListResources(_ context.Context, p api.MCPServerParams) (api.ListResourcesResult, error) {
	f.got = append(f.got, p)
	return api.ListResourcesResult{Resources: []api.ResourceInfo{{URI: "note://a", Name: "a", MIMEType: "text/plain"}},
		Templates: []api.ResourceTemplateInfo{{URITemplate: "note://{x}", Name: "x"}}}, nil
}

func (f *mcpFake) ReadResource(_ context.Context, p api.ReadResourceParams) (api.ReadResourceResult, error) {
	f.got = append(f.got, p)
	return api.ReadResourceResult{Contents: []api.ResourceContent{{URI: p.URI, Text: "body\x1b[2J of a"}}}, nil
}

func (f *mcpFake) ListPrompts(_ context.Context, p api.MCPServerParams) (api.ListPromptsResult, error) {
	f.got = append(f.got, p)
	return api.ListPromptsResult{Prompts: []api.PromptInfo{{Name: "greet", Arguments: []api.PromptArgument{{Name: "who", Required: true}, {Name: "tone"}}}}}, nil
}

func (f *mcpFake) GetPrompt(_ context.Context, p api.GetPromptParams) (api.GetPromptResult, error) {
	f.got = append(f.got, p)
	return api.GetPromptResult{Messages: []api.PromptMessage{{Role: "user", Text: "Say hello to " + p.Arguments["who"]}}}, nil
}

func runLinesWith(t *testing.T, c lineui.Client, input string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := lineui.RunLines(ctx, lineui.Options{Client: c, Events: make(chan api.Event), Session: api.SessionInfo{ID: "s1", Workspace: "/w", Mode: "safe"}},
		strings.NewReader(input), &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestResourcesAndPromptsCommands: /resources and /prompts list and show
// through the daemon API, in the session's workspace, with the server's
// text sanitized; bad usage is explained; a client without the methods
// says they are not available.
func TestResourcesAndPromptsCommands(t *testing.T) {
	f := &mcpFake{FakeClient: &lineuitest.FakeClient{}}
	out := runLinesWith(t, f, "/resources fs\n/resources fs note://a\n/prompts fs\n/prompts fs greet who=Ada\n/prompts fs greet bad\n/resources\n/exit\n")
	for _, sub := range []string{"note://a", "note://{x}", "template", "body of a", "who* tone", "user: Say hello to Ada", "want NAME=VALUE", "usage: /resources SERVER"} {
		if !strings.Contains(out, sub) {
			t.Errorf("output lacks %q:\n%s", sub, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("an escape sequence reached the output: %q", out)
	}
	want := []any{
		api.MCPServerParams{Server: "fs", Session: "s1"},
		api.ReadResourceParams{Server: "fs", Session: "s1", URI: "note://a"},
		api.MCPServerParams{Server: "fs", Session: "s1"},
		api.GetPromptParams{Server: "fs", Session: "s1", Name: "greet", Arguments: map[string]string{"who": "Ada"}},
	}
	if diff := cmp.Diff(want, f.got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if out := runLinesWith(t, &lineuitest.FakeClient{}, "/prompts fs\n/exit\n"); !strings.Contains(out, "/prompts: not available in this daemon") {
		t.Errorf("without the methods:\n%s", out)
	}
}
