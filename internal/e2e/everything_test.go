package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/frontend"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/mcp/mcptest"
)

// scripted is a chat frontend (frontend.Run drives it, as it drives the
// bots) whose user sends inputs in order, allows every approval once,
// accepts forms with values (the rest take their defaults), opens every
// URL, and interrupts the turn when a notice shown contains interruptOn.
type scripted struct {
	inputs      []string
	values      map[string]any
	interruptOn string
	interrupts  chan struct{}

	mu        sync.Mutex
	shown     []frontend.Output
	approvals []api.ApprovalNeeded
	forms     []frontend.Form
	urls      []frontend.URLRequest
}

func (s *scripted) Input(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inputs) == 0 {
		return "", io.EOF
	}
	in := s.inputs[0]
	s.inputs = s.inputs[1:]
	return in, nil
}

func (s *scripted) Show(_ context.Context, o frontend.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shown = append(s.shown, o)
	if o.Kind == frontend.KindNotice && strings.Contains(o.Text, s.interruptOn) {
		s.interrupts <- struct{}{}
	}
	return nil
}

func (s *scripted) Approve(_ context.Context, req api.ApprovalNeeded) (frontend.Answer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.approvals = append(s.approvals, req)
	return frontend.Answer{Decision: api.DecisionAllowOnce}, nil
}

func (s *scripted) ElicitForm(_ context.Context, f frontend.Form) (frontend.FormAnswer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forms = append(s.forms, f)
	values := map[string]any{}
	for _, fd := range f.Fields {
		if v, ok := s.values[fd.Name]; ok {
			values[fd.Name] = v
		}
	}
	return frontend.FormAnswer{Action: api.ElicitAccept, Values: values}, nil
}

func (s *scripted) ElicitURL(_ context.Context, u frontend.URLRequest) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.urls = append(s.urls, u)
	return true, nil
}

func (s *scripted) Interrupts() <-chan struct{} { return s.interrupts }

// results returns the results shown of the calls of tool, in order.
func (s *scripted) results(tool string) []frontend.ToolCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []frontend.ToolCall
	for _, o := range s.shown {
		if o.Kind == frontend.KindToolResult && o.Tool.Tool == tool {
			out = append(out, o.Tool)
		}
	}
	return out
}

// notices returns the notices shown that start with prefix.
func (s *scripted) notices(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, o := range s.shown {
		if o.Kind == frontend.KindNotice && strings.HasPrefix(o.Text, prefix) {
			out = append(out, o.Text)
		}
	}
	return out
}

// connect connects to the daemon of e, starting it when none runs.
func (e *env) connect(ctx context.Context) *client.Client {
	e.t.Helper()
	c, err := client.Connect(ctx, home.Dir(e.home), client.ConnectOptions{AutoStart: true, Exe: filepath.Join(bin, "astridd"), Env: e.environ,
		DialOptions: client.DialOptions{Frontend: "test"}, StartTimeout: 30 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// waitTool waits until the daemon offers tool (starting the daemon).
func (e *env) waitTool(tool string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := e.connect(ctx)
	defer c.Close()
	for {
		tools, err := c.ListTools(ctx, api.ListToolsParams{})
		if err == nil && slices.ContainsFunc(tools, func(x api.ToolInfo) bool { return x.Name == tool }) {
			return
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s never offered: %v %v", tool, tools, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestEverythingThroughTheDaemon drives the reference MCP server,
// server-everything, over stdio (sandboxed) and Streamable HTTP, through
// the real astridd: a scripted model calls its tools, and a scripted user
// answers through frontend.Run over the daemon's API: approvals for every
// call, the sampling form (the model answers the server), the
// elicitation form with every kind of field, both again as tasks of the
// client (the server polls them), a URL elicitation (whose
// secret the model never sees), roots, progress, a tool run as a task,
// resources and prompts, and a long call cancelled by the user.
func TestEverythingThroughTheDaemon(t *testing.T) {
	ne := mcptest.Find(t, "server-everything")
	const p = "mcp__everything__"
	call := func(id, tool string, args map[string]any) string {
		b, _ := json.Marshal(map[string]any{"tool_calls": []any{map[string]any{"id": id, "name": tool, "arguments": args}}})
		return string(b)
	}
	secret := "https://login.example.org/cb?token=T0PSECRET"
	// NOTE: the replay model plays the line of a request's count of
	// assistant messages, so the server's sampling request (none) gets the
	// first line too: its text is the model's answer to the server.
	lines := []string{
		`{"text": "hello from the model", ` + call("c1", p+"echo", map[string]any{"message": "hi"})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c2", p+"trigger-long-running-operation", map[string]any{"duration": 1, "steps": 2})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c3", p+"trigger-sampling-request", map[string]any{"prompt": "say hi", "maxTokens": 20})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c4", p+"trigger-elicitation-request", map[string]any{})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c11", p+"trigger-sampling-request-async", map[string]any{"prompt": "say hi", "maxTokens": 20})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c12", p+"trigger-elicitation-request-async", map[string]any{})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c5", p+"get-roots-list", map[string]any{})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c6", p+"simulate-research-query", map[string]any{"topic": "otters"})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c7", "mcp_read_resource", map[string]any{"server": "everything", "uri": "demo://resource/dynamic/text/1"})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c8", "mcp_get_prompt", map[string]any{"server": "everything", "name": "args-prompt", "arguments": map[string]string{"city": "Rome", "state": "Lazio"}})[1:],
		`{"expect": {"tool_results": 1}, ` + call("c9", p+"trigger-url-elicitation", map[string]any{"url": secret})[1:],
		`{"expect": {"tool_results": 1}, "text": "All done."}`,
		// The second turn: a long call the user cancels.
		`{"expect": {"user_contains": "take your time"}, ` + call("c10", p+"trigger-long-running-operation", map[string]any{"duration": 60, "steps": 60})[1:],
	}
	transcript := strings.Join(lines, "\n") + "\n"

	for _, tr := range []string{"stdio", "http"} {
		t.Run(tr, func(t *testing.T) {
			server := fmt.Sprintf("[servers.everything]\ntransport = \"stdio\"\ncommand = %q\nargs = [%q, \"stdio\"]\nauto_start = true\ntrusted = true\n", ne.Node, ne.Script("server-everything"))
			if tr == "http" {
				server = fmt.Sprintf("[servers.everything]\ntransport = \"streamable-http\"\nurl = %q\nauto_start = true\ntrusted = true\n", ne.EverythingHTTP(t))
			}
			e := newEnv(t, transcript, server)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// server-everything offers its task tool once it knows the
			// client supports tasks, just after initialize.
			e.waitTool(p + "simulate-research-query")
			c := e.connect(ctx)
			defer c.Close()
			info, err := c.CreateSession(ctx, api.CreateSessionParams{Workspace: e.ws, Mode: "safe"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Subscribe(ctx, info.ID); err != nil {
				t.Fatal(err)
			}
			user := &scripted{inputs: []string{"use the server", "take your time"}, values: map[string]any{"name": "Ada", "check": true},
				interruptOn: "trigger-long-running-operation: 1/60", interrupts: make(chan struct{}, 4)}
			start := time.Now()
			if err := frontend.Run(ctx, frontend.Options{Client: c, Events: c.Events(), Session: info}, user); err != nil {
				t.Fatalf("run: %v\nshown: %+v", err, user.shown)
			}
			took := time.Since(start)
			defer func() {
				if t.Failed() {
					for _, o := range user.shown {
						t.Logf("shown %d %q %+v", o.Kind, o.Text, o.Tool)
					}
				}
			}()

			one := func(tool string) frontend.ToolCall {
				t.Helper()
				rs := user.results(tool)
				if len(rs) != 1 {
					t.Fatalf("%s: %d results: %+v", tool, len(rs), rs)
				}
				if rs[0].Status != "ok" {
					t.Errorf("%s: status %s: %s", tool, rs[0].Status, rs[0].Output)
				}
				return rs[0]
			}
			for tool, want := range map[string][]string{
				p + "echo":                        {"Echo: hi"},
				p + "trigger-sampling-request":    {"hello from the model"},
				p + "trigger-elicitation-request": {"User provided the requested information", "Ada"},
				// Run as tasks of the client, polled by the server.
				p + "trigger-sampling-request-async":    {"[COMPLETED]", "hello from the model"},
				p + "trigger-elicitation-request-async": {"[COMPLETED]", "Ada"},
				p + "get-roots-list":                    {e.ws},
				p + "simulate-research-query":           {"otters"},
				"mcp_read_resource":                     {"demo://resource/dynamic/text/1"},
				"mcp_get_prompt":                        {"What's weather in Rome, Lazio?"},
				p + "trigger-url-elicitation":           {"[URL shown to the user: login.example.org]"},
			} {
				r := one(tool)
				for _, w := range want {
					if !strings.Contains(r.Output, w) {
						t.Errorf("%s: output lacks %q:\n%s", tool, w, r.Output)
					}
				}
			}
			if r := one(p + "trigger-url-elicitation"); strings.Contains(r.Output, "T0PSECRET") {
				t.Errorf("the model saw the URL's secret: %s", r.Output)
			}
			if len(user.urls) != 1 || user.urls[0].URL != secret || user.urls[0].Domain != "login.example.org" {
				t.Errorf("URL elicitation shown: %+v", user.urls)
			}

			// The sampling request and the server's form reached the
			// user as forms; the elicitation's fields were all rendered.
			// (The first of each: the async tools ask again, as tasks.)
			var sampling, survey *frontend.Form
			for i, f := range user.forms {
				switch {
				case f.Sampling && sampling == nil:
					sampling = &user.forms[i]
				case strings.Contains(f.Message, "Please provide inputs") && survey == nil:
					survey = &user.forms[i]
				}
			}
			if sampling == nil || sampling.Server != "everything" || len(sampling.Fields) != 2 || sampling.Fields[0].Name != "prompt" ||
				sampling.Fields[0].Default != "Resource trigger-sampling-request context: say hi" || sampling.Fields[1].Default != float64(20) {
				t.Errorf("sampling form: %+v", sampling)
			}
			if survey == nil || len(survey.Fields) != 13 {
				t.Errorf("elicitation form: %+v", survey)
			}

			// Every server call asked the user first.
			asked := map[string]bool{}
			for _, a := range user.approvals {
				asked[a.Request.Resource] = true
			}
			for _, r := range []string{"mcp://everything/echo", "mcp://everything/trigger-elicitation-request", "mcp://everything/simulate-research-query"} {
				if !asked[r] {
					t.Errorf("no approval asked for %s (asked: %v)", r, asked)
				}
			}
			// The sampling request was put to the user as its form only,
			// not also as an approval prompt nobody could answer.
			if asked["mcp://everything/sampling:create"] {
				t.Error("the sampling request was also prompted as an approval")
			}

			// Progress and task status reached the user.
			if n := len(user.notices("[progress] " + p + "trigger-long-running-operation")); n < 2 {
				t.Errorf("%d progress notices, want 2 or more: %v", n, user.notices("["))
			}
			tasks := user.notices("[task] " + p + "simulate-research-query")
			if len(tasks) < 2 || !strings.Contains(tasks[0], "): working") || !strings.Contains(tasks[len(tasks)-1], "): completed") {
				t.Errorf("task notices %v", tasks)
			}

			// The long call was cancelled at the user's interrupt, after
			// its first progress, long before its 60 s.
			long := user.results(p + "trigger-long-running-operation")
			if len(long) != 2 || long[0].Status != "ok" || long[1].Status != "cancelled" {
				t.Errorf("long-running results %+v", long)
			}
			if took > 50*time.Second {
				t.Errorf("the session took %s: the cancelled call ran on", took)
			}
		})
	}
}

// TestExecAnswersServerRequests: astrid exec has nobody to ask, so with
// --approve allow a server's sampling request is accepted as asked (it is
// an approval; the model answers the server), while a form is declined at
// once rather than left to time out. The sampling request is never also
// prompted as an approval.
func TestExecAnswersServerRequests(t *testing.T) {
	ne := mcptest.Find(t, "server-everything")
	const p = "mcp__everything__"
	transcript := `{"text": "hello from the model", "tool_calls": [{"id": "s1", "name": "` + p + `trigger-sampling-request", "arguments": {"prompt": "say hi", "maxTokens": 20}}]}
{"expect": {"tool_results": 1}, "tool_calls": [{"id": "f1", "name": "` + p + `trigger-elicitation-request", "arguments": {}}]}
{"expect": {"tool_results": 1}, "text": "Done."}
`
	server := fmt.Sprintf("[servers.everything]\ntransport = \"stdio\"\ncommand = %q\nargs = [%q, \"stdio\"]\nauto_start = true\ntrusted = true\n[security]\napproval_timeout_secs = 120\n",
		ne.Node, ne.Script("server-everything"))
	e := newEnv(t, transcript, server)
	// The server offers its sampling tool once it knows the client can
	// sample, just after initialize.
	e.waitTool(p + "trigger-sampling-request")
	start := time.Now()
	out, stderr, code := e.astrid("--format", "json", "exec", "--approve", "allow", "--mode", "safe", "ask the server")
	if code != 0 {
		t.Fatalf("exec exited %d\n%s\n%s", code, out, stderr)
	}
	if took := time.Since(start); took > 60*time.Second {
		t.Errorf("exec took %s: a request waited for its timeout", took)
	}
	results := map[string]api.ToolCallResult{}
	sampling := 0
	for _, ev := range events(t, out) {
		var r api.ToolCallResult
		var en api.ElicitationNeeded
		var an api.ApprovalNeeded
		switch {
		case ev.Type == api.EventToolCallResult && json.Unmarshal(ev.Data, &r) == nil:
			results[r.Call] = r
		case ev.Type == api.EventElicitationNeeded && json.Unmarshal(ev.Data, &en) == nil && en.Sampling:
			sampling++
		case ev.Type == api.EventApprovalNeeded && json.Unmarshal(ev.Data, &an) == nil && strings.HasSuffix(an.Request.Resource, "/sampling:create"):
			t.Errorf("the sampling request was prompted as an approval: %s", ev.Data)
		}
	}
	if sampling != 1 {
		t.Errorf("%d sampling forms, want 1", sampling)
	}
	if r := results["s1"]; r.Status != "ok" || !strings.Contains(r.Output, "hello from the model") {
		t.Errorf("sampling: %+v", r)
	}
	if f := results["f1"]; f.Status != "ok" || !strings.Contains(f.Output, "User declined to provide the requested information") {
		t.Errorf("form: %+v", f)
	}
}
