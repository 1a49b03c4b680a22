package mcp

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/mcp/mcptest"
)

func everythingServers(t *testing.T) map[string]func(t *testing.T) config.Server {
	ne := mcptest.Find(t, "server-everything")
	node, script := ne.Node, ne.Script("server-everything")
	return map[string]func(t *testing.T) config.Server{
		"stdio": func(t *testing.T) config.Server {
			return config.Server{Transport: "stdio", Command: node, Args: []string{script, "stdio"}, Trusted: true, RestartPolicy: "never"}
		},
		"http": func(t *testing.T) config.Server {
			return config.Server{Transport: "streamable-http", URL: ne.EverythingHTTP(t), Trusted: true, RestartPolicy: "never"}
		},
	}
}

// waitTool waits for a tool to be offered (server-everything registers
// some tools after initialize and announces them with list_changed).
func (e *env) waitTool(name string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(e.toolNames(), name) {
		if time.Now().After(deadline) {
			e.t.Fatalf("tool %s never offered; have %v", name, e.toolNames())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEverything runs the reference server's features through the
// Manager, the registry and the interceptor, over stdio (in the sandbox)
// and Streamable HTTP, with the scripted model and frontend of env.
func TestEverything(t *testing.T) {
	for _, tr := range []string{"stdio", "http"} {
		mk := everythingServers(t)[tr]
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, map[string]config.Server{"everything": mk(t)}, func(o *Options) { o.RequestTimeout = 30 * time.Second })
			e.start("everything")
			p := "mcp__everything__"
			e.waitTool(p + "simulate-research-query")

			if got := e.ok(p+"echo", map[string]any{"message": "hi"}); got != "Echo: hi" {
				t.Errorf("echo = %q", got)
			}
			if got := e.ok(p+"get-sum", map[string]any{"a": 2, "b": 3}); !strings.Contains(got, "5") {
				t.Errorf("get-sum = %q", got)
			}
			if got := e.ok(p+"get-tiny-image", map[string]any{}); !strings.Contains(got, "[image image/png") {
				t.Errorf("get-tiny-image = %q", got)
			}
			// Progress.
			before := len(e.eventsOf("progress"))
			if got := e.ok(p+"trigger-long-running-operation", map[string]any{"duration": 1, "steps": 2}); !strings.Contains(got, "completed") {
				t.Errorf("long-running = %q", got)
			}
			if n := len(e.eventsOf("progress")) - before; n < 2 {
				t.Errorf("%d progress events, want 2", n)
			}
			// Sampling through the scripted model.
			if got := e.ok(p+"trigger-sampling-request", map[string]any{"prompt": "say hi", "maxTokens": 20}); !strings.Contains(got, "hello from the model") {
				t.Errorf("sampling = %q", got)
			}
			if len(e.sampled) == 0 || e.sampled[len(e.sampled)-1].Session != "s1" {
				t.Errorf("sampling requests = %+v", e.sampled)
			}
			// Form elicitation through the scripted frontend.
			if got := e.ok(p+"trigger-elicitation-request", map[string]any{}); !strings.Contains(got, "accept") {
				t.Errorf("elicitation = %q", got)
			}
			// Client-side tasks: the server asks that its sampling and
			// elicitation requests run as tasks of the client, polls them
			// with tasks/get and fetches them with tasks/result.
			sampled, asked := len(e.sampled), len(e.elicited)
			got := e.ok(p+"trigger-sampling-request-async", map[string]any{"prompt": "say hi", "maxTokens": 20})
			t.Logf("async sampling: %.600s", got)
			if !strings.Contains(got, "[COMPLETED]") || !strings.Contains(got, "hello from the model") || !strings.Contains(got, "Poll 1: completed") {
				t.Errorf("async sampling = %.600q", got)
			}
			if len(e.sampled) != sampled+1 || e.sampled[sampled].Session != "s1" {
				t.Errorf("async sampling requests = %+v", e.sampled[sampled:])
			}
			got = e.ok(p+"trigger-elicitation-request-async", map[string]any{})
			t.Logf("async elicitation: %.600s", got)
			if !strings.Contains(got, "[COMPLETED]") || !strings.Contains(got, "accept") {
				t.Errorf("async elicitation = %.600q", got)
			}
			if len(e.elicited) != asked+1 || !strings.Contains(e.elicited[asked].Message, "async task demo") {
				t.Errorf("async elicitations = %+v", e.elicited[asked:])
			}
			// Roots: the session's workspace.
			if got := e.ok(p+"get-roots-list", map[string]any{}); !strings.Contains(got, e.ws) {
				t.Errorf("roots = %q", got)
			}
			// Tasks: the research tool runs as a task, polled to the end;
			// its status changes are events of the calling session.
			got = e.ok(p+"simulate-research-query", map[string]any{"topic": "otters"})
			t.Logf("research: %.300s", got)
			if !strings.Contains(strings.ToLower(got), "otters") {
				t.Errorf("research = %q", got)
			}
			if ev := e.eventsOf("task"); len(ev) < 2 || ev[0].State != "working" || ev[len(ev)-1].State != "completed" || ev[0].Session != "s1" || ev[0].ID == "" {
				t.Errorf("task events = %+v", ev)
			}
			// input_required: the task's elicitation comes through
			// tasks/result and is answered by the scripted frontend.
			before = len(e.eventsOf("task"))
			asked = len(e.elicited)
			got = e.ok(p+"simulate-research-query", map[string]any{"topic": "python", "ambiguous": true})
			if !strings.Contains(got, "User accepted without selection") {
				t.Errorf("ambiguous research = %.500q", got)
			}
			var states []string
			for _, ev := range e.eventsOf("task")[before:] {
				states = append(states, ev.State)
			}
			if !slices.Contains(states, "input_required") || states[len(states)-1] != "completed" {
				t.Errorf("task states = %v", states)
			}
			if len(e.elicited) != asked+1 || !strings.Contains(e.elicited[asked].Message, "multiple interpretations") || e.elicited[asked].Session != "s1" {
				t.Errorf("task elicitation = %+v", e.elicited[asked:])
			}
			// Resources and prompts.
			ctx := context.Background()
			lr, err := e.m.ListResources(ctx, "", "everything")
			if err != nil || len(lr.Resources) == 0 || len(lr.Templates) == 0 {
				t.Fatalf("ListResources = %+v, %v", lr, err)
			}
			rr, err := e.m.ReadResource(ctx, "", "everything", lr.Resources[0].URI)
			if err != nil || len(rr.Contents) == 0 || rr.Contents[0].Text+rr.Contents[0].Blob == "" {
				t.Errorf("ReadResource(%s) = %+v, %v", lr.Resources[0].URI, rr, err)
			}
			if got := e.ok("mcp_read_resource", map[string]any{"server": "everything", "uri": "demo://resource/dynamic/text/1"}); !strings.Contains(got, "demo://resource/dynamic/text/1") {
				t.Errorf("mcp_read_resource = %.300q", got)
			}
			lp, err := e.m.ListPrompts(ctx, "", "everything")
			if err != nil || !slices.ContainsFunc(lp.Prompts, func(p api.PromptInfo) bool { return p.Name == "args-prompt" }) {
				t.Errorf("ListPrompts = %+v, %v", lp, err)
			}
			gp, err := e.m.GetPrompt(ctx, "", "everything", "args-prompt", map[string]string{"city": "Oslo"})
			if err != nil || len(gp.Messages) != 1 || gp.Messages[0].Text != "What's weather in Oslo?" {
				t.Errorf("GetPrompt = %+v, %v", gp, err)
			}
			if got := e.ok("mcp_get_prompt", map[string]any{"server": "everything", "name": "args-prompt", "arguments": map[string]string{"city": "Rome", "state": "Lazio"}}); !strings.Contains(got, "What's weather in Rome, Lazio?") {
				t.Errorf("mcp_get_prompt = %q", got)
			}
			// URL elicitation (request path): the frontend gets the URL,
			// the model a redacted result.
			secret := "https://login.example.org/cb?token=T0PSECRET"
			got = e.ok(p+"trigger-url-elicitation", map[string]any{"url": secret})
			if strings.Contains(got, "T0PSECRET") || !strings.Contains(got, "[URL shown to the user: login.example.org]") {
				t.Errorf("url elicitation result = %q", got)
			}
			if last := e.elicited[len(e.elicited)-1]; last.Mode != "url" || last.URL != secret || last.Domain != "login.example.org" {
				t.Errorf("url elicitation shown = %+v", last)
			}
		})
	}
}
