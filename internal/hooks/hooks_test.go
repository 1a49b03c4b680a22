package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/sandbox/helper"
)

// TestMain lets the test binary serve as the sandbox helper.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.HelperArg {
		os.Exit(helper.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, toml, want string
	}{
		{"unknown key", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\ncommand = [\"x\"]\ncomand = [\"y\"]\n", "f.toml:5: unknown key hook.comand"},
		{"bad event", "\n[[hook]]\nname = \"a\"\nevent = \"PreToolUse\"\ncommand = [\"x\"]\n", `f.toml:2: hook "a": unknown event "PreToolUse"`},
		{"second hook", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\ncommand = [\"x\"]\n\n[[hook]]\nname = \"b\"\nevent = \"PreToolCall\"\nasync = true\ncommand = [\"x\"]\n", `f.toml:6: hook "b": PreToolCall hooks cannot be async`},
		{"async pre compact", "[[hook]]\nname = \"a\"\nevent = \"PreCompact\"\nasync = true\ncommand = [\"x\"]\n", "PreCompact hooks cannot be async"},
		{"block non-blocking", "[[hook]]\nname = \"a\"\nevent = \"PostToolCall\"\nfail_action = \"block\"\ncommand = [\"x\"]\n", "PostToolCall cannot be blocked"},
		{"bad fail action", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\nfail_action = \"allow\"\ncommand = [\"x\"]\n", `fail_action "allow"`},
		{"matcher on session", "[[hook]]\nname = \"a\"\nevent = \"SessionStart\"\ntools = [\"bash\"]\ncommand = [\"x\"]\n", "matchers apply to tool events only"},
		{"no handler", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\n", "set command or url"},
		{"both handlers", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\ncommand = [\"x\"]\nurl = \"http://127.0.0.1/\"\n", "not both"},
		{"escaping command", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\ncommand = [\"../x\"]\n", "inside the hooks directory"},
		{"timeout", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\ncommand = [\"x\"]\ntimeout_secs = 31\n", "above hooks.timeout_secs"},
		{"duplicate", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\ncommand = [\"x\"]\n[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\ncommand = [\"x\"]\n", `f.toml:5: hook "a" is defined twice`},
		{"bad regex", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\nregex = \"(\"\ncommand = [\"x\"]\n", "invalid regex"},
		{"url creds", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\nurl = \"http://u:p@127.0.0.1/\"\n", "without credentials"},
		{"wrong type", "[[hook]]\nname = \"a\"\nevent = \"PreToolCall\"\ncommand = \"x\"\n", "f.toml:4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(c.toml), 30*time.Second)
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want a ParseError containing %q", err, c.want)
			}
		})
	}
}

func TestParseDefaultsAndMatchers(t *testing.T) {
	hs, err := Parse("f.toml", []byte(`
[[hook]]
name = "guard"
event = "PreToolCall"
tools = ["write_file"]
servers = ["github"]
glob = ["edit_*"]
regex = "^rm_"
command = ["./check.sh"]

[[hook]]
name = "log"
event = "PostToolCall"
url = "http://127.0.0.1:9/"
async = true
timeout_secs = 5
priority = -3
`), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	g, l := hs[0], hs[1]
	if g.FailAction != FailBlock || g.Timeout != 30*time.Second || g.Line != 2 {
		t.Errorf("guard defaults: %+v", g)
	}
	if l.FailAction != FailWarn || l.Timeout != 5*time.Second || !l.Async || l.Priority != -3 || l.Kind() != "http" {
		t.Errorf("log defaults: %+v", l)
	}
	for tool, want := range map[string]bool{"write_file": true, "mcp__github__create": true, "mcp__githubx__a": false,
		"edit_file": true, "rm_rf": true, "read_file": false, "bash": false} {
		if got := g.Matches(tool); got != want {
			t.Errorf("Matches(%q) = %v", tool, got)
		}
	}
	if !l.Matches("anything") {
		t.Error("a hook without matchers must match every tool")
	}
}

// env is a home, a workspace and a sandbox.
type env struct {
	t         *testing.T
	home, ws  string
	stage     string
	sb        *sandbox.Sandbox
	trust     *Trust
	allowWS   bool
	allowHost []string
}

func newEnv(t *testing.T) *env {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, home: filepath.Join(dir, "home"), ws: filepath.Join(dir, "ws"), stage: filepath.Join(dir, "stage"), allowWS: true}
	for _, d := range []string{e.home, e.ws} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.sb, err = sandbox.New(sandbox.Options{Protected: []string{e.home}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.trust = NewTrust(e.home)
	return e
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// user writes the user's hooks.toml and scripts (name → body).
func (e *env) user(toml string, scripts map[string]string) {
	writeFile(e.t, filepath.Join(UserDir(e.home), "hooks.toml"), toml, 0o600)
	for n, s := range scripts {
		writeFile(e.t, filepath.Join(UserDir(e.home), n), s, 0o700)
	}
}

func (e *env) load() *Set {
	s := Load(Options{Home: e.home, Workspace: e.ws, Enabled: true, AllowWorkspace: e.allowWS, Timeout: 30 * time.Second,
		AllowedHosts: e.allowHost, Trust: e.trust, Sandbox: e.sb, StageRoot: e.stage})
	e.t.Cleanup(s.Close)
	return s
}

func hook(name, event, extra string) string {
	return "[[hook]]\nname = \"" + name + "\"\nevent = \"" + event + "\"\n" + extra + "\n"
}

func TestCommandDecisions(t *testing.T) {
	e := newEnv(t)
	e.user(
		hook("ask", "PreToolCall", `tools = ["bash"]`+"\ncommand = [\"./answer.sh\", \"ask\"]")+
			hook("modify", "PreToolCall", `tools = ["write_file"]`+"\ncommand = [\"./modify.sh\"]")+
			hook("block", "PreToolCall", `regex = "^edit_"`+"\npriority = -1\ncommand = [\"./answer.sh\", \"block\"]")+
			hook("after-block", "PreToolCall", `regex = "^edit_"`+"\ncommand = [\"./answer.sh\", \"continue\"]"),
		map[string]string{
			"answer.sh": "#!/bin/sh\ncat >/dev/null\nprintf '{\"decision\":\"%s\",\"reason\":\"said %s\"}' \"$1\" \"$1\"\n",
			// modify rewrites the path and echoes what it got (the
			// payload reaches it on stdin).
			"modify.sh": "#!/bin/sh\nin=$(cat)\ncase \"$in\" in *'\"tool\":\"write_file\"'*'\"file_path\":\".env\"'*) ;; *) echo bad; exit 3;; esac\n" +
				"echo '{\"decision\":\"modify\",\"arguments\":{\"file_path\":\"env.txt\",\"content\":\"x\"}}'\n",
		})
	s := e.load()
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	ctx := context.Background()
	r := s.Fire(ctx, Payload{Event: PreToolCall, Tool: "bash", Arguments: json.RawMessage(`{"command":"ls"}`)})
	if r.Decision != Ask || r.Reason != "said ask" || r.Hook != "ask" || r.Ran != 1 {
		t.Errorf("ask: %+v", r)
	}
	r = s.Fire(ctx, Payload{Event: PreToolCall, Tool: "write_file", Arguments: json.RawMessage(`{"file_path":".env","content":"x"}`)})
	if r.Decision != Modify || string(r.Arguments) != `{"file_path":"env.txt","content":"x"}` || len(r.Modifiers) != 1 {
		t.Errorf("modify: %+v", r)
	}
	r = s.Fire(ctx, Payload{Event: PreToolCall, Tool: "edit_file"})
	if r.Decision != Block || r.Reason != "said block" || r.Ran != 1 {
		t.Errorf("block (and the later hook must not run): %+v", r)
	}
	r = s.Fire(ctx, Payload{Event: PreToolCall, Tool: "read_file"})
	if r.Decision != Continue || r.Ran != 0 {
		t.Errorf("unmatched: %+v", r)
	}
}

func TestFailureModes(t *testing.T) {
	e := newEnv(t)
	scripts := map[string]string{
		"hang.sh":    "#!/bin/sh\nsleep 60\n",
		"garbage.sh": "#!/bin/sh\necho 'not json'\n",
		"empty.sh":   "#!/bin/sh\ntrue\n",
		"exit.sh":    "#!/bin/sh\necho '{\"decision\":\"continue\"}'\nexit 2\n",
		"bad.sh":     "#!/bin/sh\necho '{\"decision\":\"modify\",\"arguments\":[1]}'\n",
		"block.sh":   "#!/bin/sh\necho '{\"decision\":\"block\"}'\n",
		"two.sh":     "#!/bin/sh\necho '{\"decision\":\"continue\"}{\"decision\":\"continue\"}'\n",
	}
	e.user(
		hook("hang", "PreToolCall", "tools = [\"hang\"]\ntimeout_secs = 1\ncommand = [\"./hang.sh\"]")+
			hook("hang-warn", "PreToolCall", "tools = [\"hang_warn\"]\ntimeout_secs = 1\nfail_action = \"warn\"\ncommand = [\"./hang.sh\"]")+
			hook("garbage", "PreToolCall", "tools = [\"garbage\"]\ncommand = [\"./garbage.sh\"]")+
			hook("empty", "PreToolCall", "tools = [\"empty\"]\ncommand = [\"./empty.sh\"]")+
			hook("exit", "PreToolCall", "tools = [\"exit\"]\ncommand = [\"./exit.sh\"]")+
			hook("bad", "PreToolCall", "tools = [\"bad\"]\ncommand = [\"./bad.sh\"]")+
			hook("two", "PreToolCall", "tools = [\"two\"]\ncommand = [\"./two.sh\"]")+
			hook("missing", "PreToolCall", "tools = [\"missing\"]\nfail_action = \"ignore\"\ncommand = [\"./missing.sh\"]")+
			hook("post-block", "PostToolCall", "command = [\"./block.sh\"]")+
			hook("prompt-garbage", "UserPrompt", "command = [\"./garbage.sh\"]"),
		scripts)
	s := e.load()
	ctx := context.Background()
	start := time.Now()
	r := s.Fire(ctx, Payload{Event: PreToolCall, Tool: "hang"})
	if r.Decision != Block || !strings.Contains(r.Reason, "timed out") {
		t.Errorf("hanging hook: %+v", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the hanging hook took %s", d)
	}
	if r := s.Fire(ctx, Payload{Event: PreToolCall, Tool: "hang_warn"}); r.Decision != Continue {
		t.Errorf("hanging hook with warn: %+v", r)
	}
	for _, tool := range []string{"garbage", "empty", "exit", "bad", "two"} {
		if r := s.Fire(ctx, Payload{Event: PreToolCall, Tool: tool}); r.Decision != Block || !strings.Contains(r.Reason, "hook "+tool+" failed") {
			t.Errorf("%s: %+v", tool, r)
		}
	}
	if r := s.Fire(ctx, Payload{Event: PreToolCall, Tool: "missing"}); r.Decision != Continue {
		t.Errorf("ignored failure: %+v", r)
	}
	// A block answer on an event that cannot be blocked is a failure
	// (warn): the event goes on.
	if r := s.Fire(ctx, Payload{Event: PostToolCall, Tool: "x"}); r.Decision != Continue || r.Ran != 1 {
		t.Errorf("block on PostToolCall: %+v", r)
	}
	if r := s.Fire(ctx, Payload{Event: UserPrompt, Prompt: "hi"}); r.Decision != Block {
		t.Errorf("invalid answer on UserPrompt must block by default: %+v", r)
	}
}

func TestMinimalEnvironment(t *testing.T) {
	t.Setenv("ASTRID_TEST_SECRET", "sk-123")
	e := newEnv(t)
	e.user(hook("env", "PreToolCall", "command = [\"./env.sh\"]"), map[string]string{
		"env.sh": "#!/bin/sh\ncat >/dev/null\n" +
			"if env | grep -q ASTRID_TEST_SECRET; then echo '{\"decision\":\"block\",\"reason\":\"leaked\"}'; exit 0; fi\n" +
			"[ \"$ASTRID_HOOK_EVENT\" = PreToolCall ] && [ \"$ASTRID_HOOK_NAME\" = env ] || { echo '{\"decision\":\"block\",\"reason\":\"no vars\"}'; exit 0; }\n" +
			"echo '{\"decision\":\"continue\"}'\n",
	})
	if r := e.load().Fire(context.Background(), Payload{Event: PreToolCall, Tool: "x"}); r.Decision != Continue {
		t.Errorf("%+v", r)
	}
}

func TestWorkspaceTrust(t *testing.T) {
	e := newEnv(t)
	wsHooks := WorkspaceDir(e.ws)
	writeFile(t, filepath.Join(wsHooks, "hooks.toml"), hook("ws", "PreToolCall", "command = [\"./no.sh\"]"), 0o644)
	writeFile(t, filepath.Join(wsHooks, "no.sh"), "#!/bin/sh\necho '{\"decision\":\"block\",\"reason\":\"workspace says no\"}'\n", 0o755)
	ctx := context.Background()
	p := Payload{Event: PreToolCall, Tool: "bash"}

	s := e.load()
	if hs := s.Hooks(); len(hs) != 1 || hs[0].Trusted || !hs[0].Workspace {
		t.Fatalf("untrusted workspace hooks must be listed untrusted: %+v", hs)
	}
	if r := s.Fire(ctx, p); r.Decision != Continue || r.Ran != 0 {
		t.Fatalf("an untrusted workspace's hook ran: %+v", r)
	}
	if _, err := e.trust.Trust(e.ws); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(e.home, "hooks", "trusted.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("trust file: %v %v", fi, err)
	}
	if r := e.load().Fire(ctx, p); r.Decision != Block || r.Reason != "workspace says no" {
		t.Fatalf("trusted workspace hook: %+v", r)
	}
	// Trusted, but the configuration forbids workspace hooks.
	e.allowWS = false
	if r := e.load().Fire(ctx, p); r.Ran != 0 {
		t.Fatalf("allow_workspace_hooks = false, yet it ran: %+v", r)
	}
	e.allowWS = true
	// A change to the hooks directory loses the trust.
	writeFile(t, filepath.Join(wsHooks, "no.sh"), "#!/bin/sh\necho '{\"decision\":\"continue\"}'\n", 0o755)
	if r := e.load().Fire(ctx, p); r.Ran != 0 {
		t.Fatalf("a changed workspace hook ran: %+v", r)
	}
	if err := e.trust.Revoke(e.ws); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.trust.Digest(e.ws); d != "" {
		t.Fatal("revoked trust is still recorded")
	}
}

func TestSymlinkInHooksDirRefused(t *testing.T) {
	e := newEnv(t)
	e.user(hook("a", "PreToolCall", "command = [\"./a.sh\"]"), nil)
	if err := os.Symlink("/etc/passwd", filepath.Join(UserDir(e.home), "a.sh")); err != nil {
		t.Fatal(err)
	}
	s := e.load()
	if s.Err() == nil {
		t.Fatal("a symlink in the hooks directory was accepted")
	}
	if r := s.Fire(context.Background(), Payload{Event: PreToolCall, Tool: "x"}); r.Decision != Block {
		t.Errorf("an invalid hooks directory must block blocking events: %+v", r)
	}
	if r := s.Fire(context.Background(), Payload{Event: PostToolCall, Tool: "x"}); r.Decision != Continue {
		t.Errorf("%+v", r)
	}
}

func TestHTTPHandler(t *testing.T) {
	var got Payload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &got)
		if r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			http.Error(w, "bad", 400)
			return
		}
		io.WriteString(w, `{"decision":"block","reason":"http says no"}`)
	}))
	defer srv.Close()
	e := newEnv(t)
	e.user(hook("web", "PreToolCall", "url = \""+srv.URL+"/hook\"")+
		hook("remote", "UserPrompt", "url = \"http://192.0.2.1:9/hook\"\ntimeout_secs = 2"), nil)
	s := e.load()
	r := s.Fire(context.Background(), Payload{Event: PreToolCall, Tool: "bash", SessionID: "s-1"})
	if r.Decision != Block || r.Reason != "http says no" {
		t.Errorf("%+v", r)
	}
	if got.Event != PreToolCall || got.Tool != "bash" || got.SessionID != "s-1" || got.Hook != "web" {
		t.Errorf("payload %+v", got)
	}
	r = s.Fire(context.Background(), Payload{Event: UserPrompt})
	if r.Decision != Block || !strings.Contains(r.Reason, "not a loopback address") {
		t.Errorf("a non-loopback URL must be refused: %+v", r)
	}
}

func TestHostAllowed(t *testing.T) {
	for _, c := range []struct {
		url   string
		allow []string
		want  bool
	}{
		{"https://hooks.example.com/x", []string{"hooks.example.com"}, true},
		{"https://a.example.com/x", []string{"*.example.com"}, true},
		{"https://example.com/x", []string{"*.example.com"}, false},
		{"https://hooks.example.com/x", []string{"hooks.example.com:80"}, false},
		{"http://10.1.2.3:8080/", []string{"10.0.0.0/8"}, true},
		{"http://evil.com/", nil, false},
	} {
		u, _ := url.Parse(c.url)
		if got := hostAllowed(u, c.allow); got != c.want {
			t.Errorf("hostAllowed(%s, %v) = %v", c.url, c.allow, got)
		}
	}
}

func TestAsyncHook(t *testing.T) {
	e := newEnv(t)
	srvHit := make(chan Payload, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p Payload
		json.NewDecoder(r.Body).Decode(&p)
		time.Sleep(100 * time.Millisecond)
		srvHit <- p
		io.WriteString(w, `{"decision":"continue"}`)
	}))
	defer srv.Close()
	e.user(hook("bg", "PostToolCall", "async = true\nurl = \""+srv.URL+"\""), nil)
	s := Load(Options{Home: e.home, Enabled: true, Timeout: 5 * time.Second, Sandbox: e.sb, StageRoot: e.stage})
	start := time.Now()
	r := s.Fire(context.Background(), Payload{Event: PostToolCall, Tool: "bash", Output: "ok"})
	if r.Ran != 0 || time.Since(start) > 80*time.Millisecond {
		t.Errorf("async hook was waited for: %+v after %s", r, time.Since(start))
	}
	s.Close()
	select {
	case p := <-srvHit:
		if p.Output != "ok" {
			t.Errorf("payload %+v", p)
		}
	default:
		t.Error("Close did not wait for the async hook")
	}
}

func TestDisabled(t *testing.T) {
	e := newEnv(t)
	e.user(hook("a", "PreToolCall", "command = [\"./nope\"]"), nil)
	s := Load(Options{Home: e.home, Enabled: false, Sandbox: e.sb, StageRoot: e.stage})
	if len(s.Hooks()) != 0 || s.Fire(context.Background(), Payload{Event: PreToolCall}).Decision != Continue {
		t.Error("hooks.enabled = false still loads hooks")
	}
}

func TestStaleAndClose(t *testing.T) {
	e := newEnv(t)
	e.user(hook("slow", "PreToolCall", "command = [\"./slow.sh\"]"), map[string]string{
		"slow.sh": "#!/bin/sh\nsleep 0.3\necho '{\"decision\":\"block\",\"reason\":\"done\"}'\n",
	})
	s := Load(Options{Home: e.home, Workspace: e.ws, Enabled: true, AllowWorkspace: true, Timeout: 5 * time.Second, Trust: e.trust, Sandbox: e.sb, StageRoot: e.stage})
	if s.Stale() {
		t.Fatal("stale right after Load")
	}
	// Close waits for a hook that is running; the staged copy it runs
	// from stays until it is done.
	done := make(chan Result)
	go func() { done <- s.Fire(context.Background(), Payload{Event: PreToolCall, Tool: "x"}) }()
	time.Sleep(100 * time.Millisecond)
	s.Close()
	if r := <-done; r.Decision != Block || r.Reason != "done" {
		t.Errorf("the hook running during Close: %+v", r)
	}
	if _, ok := s.TryFire(context.Background(), Payload{Event: PreToolCall}); ok {
		t.Error("TryFire ran on a closed Set")
	}
	if r := s.Fire(context.Background(), Payload{Event: PreToolCall}); r.Decision != Block {
		t.Errorf("Fire on a closed Set must block blocking events: %+v", r)
	}
	if ents, _ := os.ReadDir(e.stage); len(ents) != 0 {
		t.Errorf("staged directories left: %v", ents)
	}
	// Any change to the hooks directories or the trust file makes it stale.
	for name, change := range map[string]func(){
		"user script": func() { writeFile(t, filepath.Join(UserDir(e.home), "slow.sh"), "#!/bin/sh\n", 0o700) },
		"workspace":   func() { writeFile(t, filepath.Join(WorkspaceDir(e.ws), "hooks.toml"), "", 0o600) },
		"trust": func() {
			if _, err := e.trust.Trust(e.ws); err != nil {
				t.Fatal(err)
			}
		},
	} {
		s := Load(Options{Home: e.home, Workspace: e.ws, Enabled: true, AllowWorkspace: true, Timeout: 5 * time.Second, Trust: e.trust, Sandbox: e.sb, StageRoot: e.stage})
		change()
		if !s.Stale() {
			t.Errorf("%s: not stale after a change", name)
		}
		s.Close()
	}
}
