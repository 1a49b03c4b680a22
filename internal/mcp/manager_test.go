package mcp

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/security"
)

// transports runs a test over stdio (through the sandbox) and over
// Streamable HTTP.
func transports(t *testing.T, trusted bool, f func(t *testing.T, e *env)) {
	t.Run("stdio", func(t *testing.T) {
		e := newEnv(t, map[string]config.Server{"good": selfServer(t, "good", trusted)})
		e.start("good")
		f(t, e)
	})
	t.Run("http", func(t *testing.T) {
		e := newEnv(t, map[string]config.Server{"good": {Transport: "streamable-http", URL: httpServer(t), Trusted: trusted, RestartPolicy: "never"}})
		e.start("good")
		f(t, e)
	})
}

func TestToolsThroughTheInterceptor(t *testing.T) {
	transports(t, true, func(t *testing.T, e *env) {
		want := []string{"mcp__good__add", "mcp__good__ask", "mcp__good__echo", "mcp__good__exit", "mcp__good__fail", "mcp__good__grow", "mcp__good__login",
			"mcp__good__open_url", "mcp__good__peek", "mcp__good__progress", "mcp__good__read_file", "mcp__good__roots", "mcp__good__sample", "mcp__good__slow", "mcp__good__wipe"}
		if diff := cmp.Diff(want, e.toolNames()); diff != "" {
			t.Fatalf("tools (-want +got):\n%s", diff)
		}
		if got := e.ok("mcp__good__echo", map[string]any{"text": "hi"}); got != "echo: hi" {
			t.Errorf("echo = %q", got)
		}
		if got := e.ok("mcp__good__add", map[string]any{"a": 2, "b": 40.5}); got != "42.5" {
			t.Errorf("add = %q", got)
		}
		// Every call asked: no mode authorises an MCP tool.
		if n := e.askedCount(); n != 2 {
			t.Errorf("asked %d times, want 2", n)
		}
		r := e.asked[0]
		if r.Kind != string(security.MCPTool) || r.Resource != "mcp://good/echo" || r.Risk != "medium" {
			t.Errorf("approval request = %+v", r)
		}
		// A tool error is an error result with the tool's text.
		res := e.call("mcp__good__fail", map[string]any{"text": "x"})
		if !res.IsError || !strings.Contains(res.Text, "it failed: x") {
			t.Errorf("fail = %+v", res)
		}
		// Bad arguments never reach the server or the human.
		before := e.askedCount()
		if res := e.call("mcp__good__echo", []int{1}); !res.IsError || !strings.Contains(res.Text, "JSON object") {
			t.Errorf("array args = %+v", res)
		}
		if e.askedCount() != before {
			t.Error("bad arguments reached the human")
		}
		// The audit log has the decision and the outcome of each call.
		n := countAudit(t, e, "mcp_tool", "mcp://good/echo")
		if n != 2 {
			t.Errorf("audit entries for mcp://good/echo = %d, want 2 (decision, outcome)", n)
		}
	})
}

func countAudit(t *testing.T, e *env, kind, resource string) int {
	t.Helper()
	ctx := context.Background()
	st := e.core.DB.Audit()
	stored, err := st.ReadEntries(ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range stored {
		en, err := audit.Decode(s.Data)
		if err != nil {
			t.Fatal(err)
		}
		if en.Action.Kind == kind && (resource == "" || en.Action.Resource == resource) {
			n++
		}
	}
	return n
}

// TestUntrustedServerAsksEveryTime: a workspace-added (untrusted) server's
// tools ask on every call, even after "allow for the session"; a trusted
// server's allowance is remembered.
func TestUntrustedServerAsksEveryTime(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		e := newEnv(t, map[string]config.Server{"good": selfServer(t, "good", trusted)})
		e.start("good")
		e.answer = approval.AllowSession
		for i := 0; i < 3; i++ {
			e.ok("mcp__good__peek", map[string]any{})
		}
		want := 3
		if trusted {
			want = 1
		}
		if n := e.askedCount(); n != want {
			t.Errorf("trusted=%v: asked %d times, want %d", trusted, n, want)
		}
		// Annotations never lower the risk; an untrusted server's is high.
		wantRisk := "high"
		if trusted {
			wantRisk = "medium"
		}
		if e.asked[0].Risk != wantRisk {
			t.Errorf("trusted=%v: risk of a read-only-hinted tool = %s, want %s", trusted, e.asked[0].Risk, wantRisk)
		}
		e.answer = approval.AllowOnce
		e.ok("mcp__good__wipe", map[string]any{})
		if r := e.asked[len(e.asked)-1]; r.Risk != "high" {
			t.Errorf("destructive tool risk = %s, want high", r.Risk)
		}
		// A human's denial is an error result and nothing runs.
		e.answer = approval.Deny
		if res := e.call("mcp__good__echo", map[string]any{"text": "no"}); !res.IsError || !strings.Contains(res.Text, "denied by approval") {
			t.Errorf("denied call = %+v", res)
		}
	}
}

// TestNamesThatCannotBeOffered: a tool named like a built-in is offered
// only under its prefix; names with "__" or characters model APIs refuse
// are left out.
func TestNamesThatCannotBeOffered(t *testing.T) {
	e := newEnv(t, map[string]config.Server{"good": selfServer(t, "good", true)})
	e.start("good")
	names := e.toolNames()
	for _, bad := range []string{"mcp__good__bad__name", "mcp__good__dotted.name", "read_file"} {
		if slices.Contains(names, bad) {
			t.Errorf("%s offered", bad)
		}
	}
	// The built-in read_file is still the built-in.
	res := e.call("read_file", map[string]any{"file_path": "nope.txt"})
	if strings.Contains(res.Text, "not really") {
		t.Fatalf("the server's read_file replaced the built-in: %s", res.Text)
	}
	if got := e.ok("mcp__good__read_file", map[string]any{"text": "x"}); got != "not really x" {
		t.Errorf("prefixed read_file = %q", got)
	}
}

func TestServerRequests(t *testing.T) {
	transports(t, true, func(t *testing.T, e *env) {
		// Elicitation: the scripted frontend accepts with a name; the
		// omitted age gets its default.
		if got := e.ok("mcp__good__ask", map[string]any{}); got != `accept {"age":30,"name":"Ada"}` {
			t.Errorf("ask = %q", got)
		}
		if len(e.elicited) != 1 || e.elicited[0].Session != "s1" || e.elicited[0].Server != "good" || e.elicited[0].Mode != "form" || e.elicited[0].Message != "Who are you?" {
			t.Errorf("elicitation = %+v", e.elicited)
		}
		// Sampling: the request names the server and the session.
		if got := e.ok("mcp__good__sample", map[string]any{"text": "hi model"}); got != "model scripted-1 said: hello from the model" {
			t.Errorf("sample = %q", got)
		}
		if len(e.sampled) != 1 || e.sampled[0].Session != "s1" || e.sampled[0].MaxTokens != 50 || e.sampled[0].SystemPrompt != "be brief" ||
			len(e.sampled[0].Messages) != 1 || e.sampled[0].Messages[0].Text != "hi model" {
			t.Errorf("sampling = %+v", e.sampled)
		}
		// Roots: the workspace as a file URI.
		if got := e.ok("mcp__good__roots", map[string]any{}); got != "file://"+e.ws {
			t.Errorf("roots = %q", got)
		}
		// Progress: events carry the session and the tool.
		e.ok("mcp__good__progress", map[string]any{})
		var got []string
		for _, ev := range e.eventsOf("progress") {
			if ev.Session == "s1" && ev.Tool == "mcp__good__progress" {
				got = append(got, ev.Message)
			}
		}
		if diff := cmp.Diff([]string{"step 1", "step 2", "step 3"}, got); diff != "" {
			t.Errorf("progress (-want +got):\n%s", diff)
		}
	})
}

// TestToolListChanged: a server that adds a tool gets its new list into
// the registry.
func TestToolListChanged(t *testing.T) {
	transports(t, true, func(t *testing.T, e *env) {
		e.ok("mcp__good__grow", map[string]any{"text": "x"})
		deadline := time.Now().Add(5 * time.Second)
		for !slices.Contains(e.toolNames(), "mcp__good__grown_x") {
			if time.Now().After(deadline) {
				t.Fatalf("new tool never registered: %v", e.toolNames())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := e.ok("mcp__good__grown_x", map[string]any{}); got != "grown" {
			t.Errorf("grown = %q", got)
		}
	})
}

// TestCancellation: a cancelled turn cancels the call on the server.
func TestCancellation(t *testing.T) {
	e := newEnv(t, map[string]config.Server{"good": {Transport: "streamable-http", URL: httpServer(t), Trusted: true}})
	e.start("good")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err := e.reg.Run(ctx, e.core.Interceptor, e.sess, "mcp__good__slow", []byte(`{"text":"c1"}`))
		if err == nil && !res.IsError {
			t.Errorf("cancelled call succeeded: %+v", res)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	select {
	case got := <-cancelled:
		if got != "c1" {
			t.Errorf("cancelled %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server never saw the cancellation")
	}
}

func TestStartStopListAndUnknown(t *testing.T) {
	e := newEnv(t, map[string]config.Server{"good": selfServer(t, "good", true), "idle": selfServer(t, "good", false)})
	want := []string{"stopped", "stopped"}
	if got := states(e); !slices.Equal(got, want) {
		t.Fatalf("states = %v", got)
	}
	info, err := e.m.Start(context.Background(), "good")
	if err != nil || info.State != StateRunning || info.Tools != 15 || info.Transport != "stdio" {
		t.Fatalf("start = %+v, %v", info, err)
	}
	// Starting again is a no-op.
	if info2, err := e.m.Start(context.Background(), "good"); err != nil || info2.State != StateRunning {
		t.Fatalf("second start = %+v, %v", info2, err)
	}
	tl, err := e.m.ListTools("good")
	if err != nil || len(tl) != 15 || tl[0].Source != "mcp:good" {
		t.Fatalf("ListTools = %d %v", len(tl), err)
	}
	if _, err := e.m.Start(context.Background(), "nope"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("unknown server: %v", err)
	}
	if err := e.m.Stop(context.Background(), "good"); err != nil {
		t.Fatal(err)
	}
	if got := states(e); !slices.Equal(got, want) {
		t.Fatalf("after stop: %v", got)
	}
	if len(e.toolNames()) != 0 {
		t.Errorf("tools left after stop: %v", e.toolNames())
	}
	if err := e.m.Stop(context.Background(), "good"); err != nil {
		t.Errorf("stopping a stopped server: %v", err)
	}
	// A call to a tool of a stopped server is an unknown tool now.
	if res := e.call("mcp__good__echo", map[string]any{}); !res.IsError {
		t.Error("a stopped server's tool ran")
	}
	// Auto-start starts only trusted auto_start servers.
	e2 := newEnv(t, map[string]config.Server{
		"auto":      withAuto(selfServer(t, "good", true)),
		"untrusted": withAuto(selfServer(t, "good", false)),
	})
	if err := e2.m.StartAutoStart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := states(e2); !slices.Equal(got, []string{"running", "stopped"}) {
		t.Errorf("after auto-start: %v", got)
	}
}

func withAuto(s config.Server) config.Server {
	s.AutoStart = true
	return s
}

func states(e *env) []string {
	var out []string
	for _, s := range e.m.List() {
		out = append(out, s.State)
	}
	return out
}

// TestRestartPolicy: a crash is restarted under on-failure and always,
// not under never.
func TestRestartPolicy(t *testing.T) {
	for _, policy := range []string{"never", "on-failure", "always"} {
		t.Run(policy, func(t *testing.T) {
			s := selfServer(t, "good", true)
			s.RestartPolicy = policy
			e := newEnv(t, map[string]config.Server{"good": s})
			e.start("good")
			res := e.call("mcp__good__exit", map[string]any{})
			if !res.IsError {
				t.Fatalf("exit returned %+v", res)
			}
			if policy == "never" {
				e.waitState("good", StateFailed, 5*time.Second)
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				if len(e.eventsOf("state")) > 0 && e.m.List()[0].State == StateRunning && slices.Contains(e.toolNames(), "mcp__good__echo") {
					var starts int
					for _, ev := range e.eventsOf("state") {
						if ev.State == StateRunning {
							starts++
						}
					}
					if starts >= 2 {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("not restarted: %+v", e.m.List())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got := e.ok("mcp__good__echo", map[string]any{"text": "again"}); got != "echo: again" {
				t.Errorf("after restart: %q", got)
			}
		})
	}
}

// TestBinaryHash: a pinned hash that matches starts the server; one that
// does not refuses to start it, says why, and is audited.
func TestBinaryHash(t *testing.T) {
	exe, _ := os.Executable()
	good, err := HashFile(exe, "blake3")
	if err != nil {
		t.Fatal(err)
	}
	sha, err := HashFile(exe, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	ok1, ok2, bad := selfServer(t, "good", true), selfServer(t, "good", true), selfServer(t, "good", true)
	ok1.BinaryHash, ok2.BinaryHash = good, sha
	bad.BinaryHash = "blake3:" + strings.Repeat("0", 64)
	bad.RestartPolicy = "always"
	e := newEnv(t, map[string]config.Server{"ok1": ok1, "ok2": ok2, "changed": bad})
	e.start("ok1")
	e.start("ok2")
	_, err = e.m.Start(context.Background(), "changed")
	var hm *HashMismatchError
	if !errors.As(err, &hm) || hm.Got != good || hm.Binary != exe {
		t.Fatalf("start with a wrong hash: %v", err)
	}
	if info := e.m.List()[0]; info.Name != "changed" || info.State != StateFailed || !strings.Contains(info.Error, "refusing to start") {
		t.Errorf("info = %+v", info)
	}
	if n := countAudit(t, e, "mcp_server_start", "mcp://changed/"); n != 1 {
		t.Errorf("audit entries for the refused start = %d", n)
	}
	if n := countAudit(t, e, "mcp_server_start", "mcp://ok1/"); n != 1 {
		t.Errorf("audit entries for the start = %d", n)
	}
}

// TestHostileServers: each misbehaviour stops the server for good (no
// restart, whatever the policy) and the call fails with the reason.
func TestHostileServers(t *testing.T) {
	for _, tc := range []struct {
		mode, want string
	}{
		{"huge", "a message longer than"},
		{"garbage", "not JSON"},
		{"flood", "a flood of elicitation requests"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			s := selfServer(t, tc.mode, true)
			s.RestartPolicy = "always"
			e := newEnv(t, map[string]config.Server{"bad": s}, func(o *Options) {
				o.Limits.MessageBytes = 1 << 20
				o.Limits.ElicitationsPerMinute = 2
			})
			e.start("bad")
			res := e.call("mcp__bad__go", map[string]any{})
			if !res.IsError || !strings.Contains(res.Text, tc.want) {
				t.Errorf("call = %+v", res)
			}
			e.waitState("bad", StateFailed, 5*time.Second)
			time.Sleep(300 * time.Millisecond) // longer than the backoff
			if info := e.m.List()[0]; info.State != StateFailed || !strings.Contains(info.Error, tc.want) {
				t.Errorf("info = %+v", info)
			}
			if len(e.elicited) > 2 {
				t.Errorf("%d elicitations reached the user", len(e.elicited))
			}
		})
	}
	t.Run("silent", func(t *testing.T) {
		e := newEnv(t, map[string]config.Server{"bad": selfServer(t, "silent", true)}, func(o *Options) {
			o.RequestTimeout = 300 * time.Millisecond
			o.HealthInterval = 200 * time.Millisecond
		})
		e.start("bad")
		res := e.call("mcp__bad__go", map[string]any{})
		if !res.IsError || !strings.Contains(res.Text, "did not answer within") {
			t.Errorf("call = %+v", res)
		}
		e.waitState("bad", StateFailed, 5*time.Second)
		if info := e.m.List()[0]; !strings.Contains(info.Error, "health check failed") {
			t.Errorf("info = %+v", info)
		}
	})
}

// TestAttachDetach: a registry attached late gets the running tools and
// loses them when detached.
func TestAttachDetach(t *testing.T) {
	e := newEnv(t, map[string]config.Server{"good": selfServer(t, "good", true)})
	e.start("good")
	reg2 := newRegistry()
	detach := e.m.Attach(reg2)
	if n := countPrefixed(reg2.Specs()); n != 15 {
		t.Fatalf("attached registry has %d MCP tools", n)
	}
	detach()
	if n := countPrefixed(reg2.Specs()); n != 0 {
		t.Fatalf("detached registry still has %d MCP tools", n)
	}
}
