package mcp

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
)

// TestResourcesAndPrompts: the user's access (Manager methods) and the
// model's (the mcp_* tools, each an audited MCPTool action through the
// interceptor) to the good server's resources, templates, prompts and
// subscriptions, over stdio and HTTP.
func TestResourcesAndPrompts(t *testing.T) {
	for _, tr := range []string{"stdio", "http"} {
		t.Run(tr, func(t *testing.T) {
			cfg := selfServer(t, "good", true)
			if tr == "http" {
				cfg = config.Server{Transport: "streamable-http", URL: httpServer(t), Trusted: true, RestartPolicy: "never"}
			}
			e := newEnv(t, map[string]config.Server{"good": cfg})
			ctx := context.Background()
			// Not running: a clear error, for the user and the model.
			if _, err := e.m.ListResources(ctx, "", "good"); !errors.Is(err, ErrNotRunning) {
				t.Errorf("list before start: %v", err)
			}
			if res := e.call("mcp_list_resources", map[string]any{"server": "good"}); !res.IsError || !strings.Contains(res.Text, "not running") {
				t.Errorf("tool before start = %+v", res)
			}
			if _, err := e.m.ListPrompts(ctx, "", "nope"); !errors.Is(err, ErrNotConfigured) {
				t.Errorf("unknown server: %v", err)
			}
			e.start("good")

			lr, err := e.m.ListResources(ctx, "", "good")
			if err != nil || len(lr.Resources) != 1 || lr.Resources[0].URI != "note://greeting" || len(lr.Templates) != 1 || lr.Templates[0].URITemplate != "note://by-name/{name}" {
				t.Fatalf("ListResources = %+v, %v", lr, err)
			}
			rr, err := e.m.ReadResource(ctx, "", "good", "note://by-name/ada")
			if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "note ada" {
				t.Errorf("ReadResource = %+v, %v", rr, err)
			}
			lp, err := e.m.ListPrompts(ctx, "", "good")
			if err != nil || len(lp.Prompts) != 1 || lp.Prompts[0].Name != "greet" || len(lp.Prompts[0].Arguments) != 1 || !lp.Prompts[0].Arguments[0].Required {
				t.Errorf("ListPrompts = %+v, %v", lp, err)
			}
			gp, err := e.m.GetPrompt(ctx, "", "good", "greet", map[string]string{"who": "Ada"})
			if err != nil || len(gp.Messages) != 1 || gp.Messages[0].Text != "Say hello to Ada" || gp.Messages[0].Role != "user" {
				t.Errorf("GetPrompt = %+v, %v", gp, err)
			}
			if _, err := e.m.ReadResource(ctx, "", "good", "note://missing"); err == nil {
				t.Error("reading a missing resource succeeded")
			}

			// The model, through the interceptor.
			if got := e.ok("mcp_read_resource", map[string]any{"server": "good", "uri": "note://greeting"}); !strings.Contains(got, "hello, reader") {
				t.Errorf("mcp_read_resource = %q", got)
			}
			if got := e.ok("mcp_list_resources", map[string]any{"server": "good"}); !strings.Contains(got, "note://greeting") {
				t.Errorf("mcp_list_resources = %q", got)
			}
			if got := e.ok("mcp_get_prompt", map[string]any{"server": "good", "name": "greet", "arguments": map[string]string{"who": "Bo"}}); !strings.Contains(got, "Say hello to Bo") {
				t.Errorf("mcp_get_prompt = %q", got)
			}
			if got := e.ok("mcp_list_prompts", map[string]any{"server": "good"}); !strings.Contains(got, "greet") {
				t.Errorf("mcp_list_prompts = %q", got)
			}
			if n := countAudit(t, e, "mcp_tool", "mcp://good/resource:"+url.QueryEscape("note://greeting")); n != 2 {
				t.Errorf("audit entries for the read = %d, want 2 (decision, outcome)", n)
			}
			if n := countAudit(t, e, "mcp_tool", "mcp://good/prompt:greet"); n != 2 {
				t.Errorf("audit entries for the prompt = %d", n)
			}
			// Bad arguments are the model's to fix and reach nobody.
			before := e.askedCount()
			for _, bad := range []map[string]any{{}, {"server": "nope"}, {"server": "good", "uri": "x", "extra": 1}, {"server": "good"}} {
				if res := e.call("mcp_read_resource", bad); !res.IsError || !strings.Contains(res.Text, "mcp_read_resource") {
					t.Errorf("bad args %v = %+v", bad, res)
				}
			}
			if e.askedCount() != before {
				t.Error("bad arguments reached the human")
			}
			// A denial stops the read.
			e.answer = approval.Deny
			e.sess.Mode = "safe"
			if res := e.call("mcp_read_resource", map[string]any{"server": "good", "uri": "note://greeting"}); !res.IsError || strings.Contains(res.Text, "hello, reader") {
				t.Errorf("denied read = %+v", res)
			}
			e.answer = approval.AllowOnce
			e.sess.Mode = "autonomous"

			// Subscriptions: the server's update becomes an event.
			if got := e.ok("mcp_subscribe_resource", map[string]any{"server": "good", "uri": "note://greeting"}); !strings.Contains(got, "subscribed") {
				t.Errorf("subscribe = %q", got)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(e.eventsOf("resource_updated")) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if ev := e.eventsOf("resource_updated"); len(ev) != 1 || ev[0].ID != "note://greeting" || ev[0].Server != "good" || ev[0].Session != "s1" {
				t.Errorf("resource_updated events = %+v", ev)
			}
			// Per session: a second session's subscription to the same URI
			// is not sent again; an update goes to both subscribers, one
			// nobody subscribed to goes nowhere.
			if err := e.m.SubscribeResource(ctx, "", "s2", "good", "note://greeting"); err != nil {
				t.Fatal(err)
			}
			if err := e.m.SubscribeResource(ctx, "", "", "good", "note://greeting"); err == nil {
				t.Error("a subscription without a session was taken")
			}
			_, c, err := e.m.running("", "good")
			if err != nil {
				t.Fatal(err)
			}
			update := func(uri string) {
				n := mcpgo.JSONRPCNotification{}
				n.Method = mcpgo.MethodNotificationResourceUpdated
				n.Params.AdditionalFields = map[string]any{"uri": uri}
				c.onNotification(n)
			}
			update("note://greeting")
			update("note://nobody-asked")
			var to []string
			for _, ev := range e.eventsOf("resource_updated")[1:] {
				to = append(to, ev.Session+" "+ev.ID)
			}
			if want := []string{"s1 note://greeting", "s2 note://greeting"}; !slices.Equal(to, want) {
				t.Errorf("updates went to %q, want %q", to, want)
			}
			// Ending s1 keeps s2's subscription; ending s2 unsubscribes.
			e.m.EndSession("s1")
			update("note://greeting")
			if ev := e.eventsOf("resource_updated"); len(ev) != 4 || ev[3].Session != "s2" {
				t.Errorf("after s1 ended: %+v", ev)
			}
			e.m.EndSession("s2")
			update("note://greeting")
			if n := len(e.eventsOf("resource_updated")); n != 4 {
				t.Errorf("%d updates after both ended, want 4", n)
			}
			if tr == "http" {
				select {
				case uri := <-unsubscribed:
					if uri != "note://greeting" {
						t.Errorf("unsubscribed from %q", uri)
					}
				case <-time.After(5 * time.Second):
					t.Error("the server was never asked to unsubscribe")
				}
			}
		})
	}
}

// TestURLElicitation: the frontend gets the URL and its domain; the model
// never sees the URL (results and errors are redacted), the audit log
// keeps its hash only; a -32042 error is retried once after the user
// accepted and the server said it completed, and fails clearly on a
// decline, without completion, or when the server asks again.
func TestURLElicitation(t *testing.T) {
	e := newEnv(t, map[string]config.Server{"good": selfServer(t, "good", true)}, func(o *Options) { o.URLElicitationWait = 2 * time.Second })
	e.start("good")
	secret := "SECRET-"

	// Request path: elicitation/create in URL mode.
	got := e.ok("mcp__good__open_url", map[string]any{"text": "a"})
	if strings.Contains(got, secret) || !strings.Contains(got, "accept for [URL shown to the user: auth.example.com]") {
		t.Errorf("open_url result = %q", got)
	}
	last := func() ElicitRequest {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.elicited[len(e.elicited)-1]
	}
	if r := last(); r.Mode != "url" || r.URL != secretURL("a") || r.Domain != "auth.example.com" || r.ElicitationID != "open-a" || r.Session != "s1" {
		t.Errorf("elicitation shown = %+v", r)
	}

	// Error path: -32042, completion, one retry.
	got = e.ok("mcp__good__login", map[string]any{"text": "b"})
	if strings.Contains(got, secret) || !strings.Contains(got, "signed in at [URL shown to the user: auth.example.com]") {
		t.Errorf("login result = %q", got)
	}
	if r := last(); r.URL != secretURL("b") || r.ElicitationID != "el-b" {
		t.Errorf("elicitation shown = %+v", r)
	}
	if ev := e.eventsOf("elicitation_complete"); len(ev) == 0 || ev[len(ev)-1].ID != "el-b" {
		t.Errorf("completion events = %+v", ev)
	}

	for _, tc := range []struct{ text, action, want string }{
		{"c", "decline", "the user declined it"},
		{"d", "cancel", "the user cancelled it"},
		{"nocomplete", "accept", "did not confirm within 2s"},
		{"again", "accept", "still asks for a URL elicitation"},
	} {
		e.urlAction = tc.action
		res := e.call("mcp__good__login", map[string]any{"text": tc.text})
		if !res.IsError || !strings.Contains(res.Text, tc.want) || strings.Contains(res.Text, secret) {
			t.Errorf("login %s = %+v", tc.text, res)
		}
	}
	e.urlAction = ""

	// The audit log: each URL elicitation with its domain and the URL's
	// hash; no entry holds the URL in clear.
	stored, err := e.core.DB.Audit().ReadEntries(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, s := range stored {
		if strings.Contains(string(s.Data), secret) {
			t.Errorf("an audit entry holds the URL: %s", s.Data)
		}
		en, err := audit.Decode(s.Data)
		if err != nil {
			t.Fatal(err)
		}
		if en.Action.Kind == "mcp_url_elicitation" && en.Action.ArgsHash == audit.HashBytes([]byte(secretURL("b"))) && strings.Contains(en.Text, "auth.example.com") {
			found++
		}
	}
	if found != 1 {
		t.Errorf("%d audit entries for the URL elicitation of login b, want 1", found)
	}
}

// TestResourceToolsOfUntrustedServer: reading a resource of a server a
// workspace added asks the human every time, whatever the mode.
func TestResourceToolsOfUntrustedServer(t *testing.T) {
	e := newEnv(t, map[string]config.Server{})
	if err := e.m.SetWorkspaceServers(e.ws, map[string]config.Server{"wsrv": selfServer(t, "good", false)}); err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	defer e.m.AttachWorkspace(reg, e.ws)()
	e.reg = reg
	if _, err := e.m.StartIn(context.Background(), e.ws, "wsrv"); err != nil {
		t.Fatal(err)
	}
	e.answer = approval.AllowSession
	for i := 0; i < 2; i++ {
		if got := e.ok("mcp_read_resource", map[string]any{"server": "wsrv", "uri": "note://greeting"}); !strings.Contains(got, "hello, reader") {
			t.Errorf("read = %q", got)
		}
	}
	if n := e.askedCount(); n != 2 {
		t.Errorf("asked %d times, want 2", n)
	}
	if r := e.asked[0]; r.Resource != "mcp://wsrv/resource:"+url.QueryEscape("note://greeting") || r.Risk != "high" {
		t.Errorf("approval request = %+v", r)
	}
}
