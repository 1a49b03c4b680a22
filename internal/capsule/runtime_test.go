package capsule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/sdk"
)

const friendManifest = `[package]
name = "{{name}}"
version = "2.0.0"

[component]
entrypoint = "{{name}}.wasm"
hash = "{{hash}}"

[capabilities]
kv = true
ipc = ["events", "hostile/events"]
uplink = true
elicit = true
cron = true
http = true
net = ["{{net}}"]
fs_write = ["scratch"]

[[uplink]]
name = "feed"

[[interceptor]]
event = "BeforeToolCall"

[[interceptor]]
event = "AfterToolCall"
tool = "echo"

[[context_file]]
path = "{{name}}.wasm"
`

// callTool runs a handler of c as the tool call the registry would make,
// whether or not the manifest declares it (only declared tools reach a
// registry).
func (e *env) callTool(c *Capsule, name string, args any) (string, error) {
	e.t.Helper()
	raw, _ := json.Marshal(args)
	a, ex, err := tool{c: c, decl: capsulepkg.ToolDecl{Name: name}}.Prepare(e.sess, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.core.Interceptor.Run(context.Background(), a, ex)
	return string(out), err
}

type fakeFrontend struct {
	mu   sync.Mutex
	sent []string
}

func (f *fakeFrontend) Send(_ context.Context, s security.Session, capsule, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, s.ID+"|"+capsule+"|"+text)
	return nil
}

func (f *fakeFrontend) Elicit(_ context.Context, s security.Session, capsule string, req sdk.ElicitRequest) (string, error) {
	return "blue for " + capsule + " in " + s.ID + " (" + req.Prompt + ")", nil
}

func TestRuntimeHostFunctions(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("X-Test", "yes")
		w.Write([]byte("hello " + r.URL.Path))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	// The administrator allows loopback here, so the declared host can be
	// reached.
	e := newEnv(t, envOptions{config: "[security.policy]\nallowed_hosts = [\"127.0.0.1\"]\n"})
	ff := &fakeFrontend{}
	e.m.o.Uplink, e.m.o.Elicit = ff, ff
	ctx := context.Background()
	hostile := e.install(hostileDir(e, "hostile", "example.com"), capsulepkg.InstallOptions{})
	friend := e.install(e.capsuleDir("friend", strings.ReplaceAll(friendManifest, "{{net}}", u.Host), hostileWasm), capsulepkg.InstallOptions{})

	e.sub("fs", func(t *testing.T) {
		got, err := e.callTool(friend, "fs_tour", map[string]string{"path": "scratch"})
		if err != nil || got != "f.txt 5 1 false" {
			t.Fatalf("fs_tour = %q, %v", got, err)
		}
		if fi, err := os.Stat(filepath.Join(e.ws, "scratch", "sub")); err != nil || !fi.IsDir() {
			t.Errorf("scratch/sub: %v", err)
		}
	})

	e.sub("http", func(t *testing.T) {
		got, err := e.callTool(friend, "http", map[string]string{"url": srv.URL + "/x"})
		if err != nil || got != "200 hello /x" || hits != 1 {
			t.Errorf("http = %q, %v (hits %d)", got, err, hits)
		}
		// Same address, another port: not declared.
		if _, err := e.callTool(friend, "http", map[string]string{"url": "http://127.0.0.1:1/"}); err == nil || !strings.Contains(err.Error(), "not declared") {
			t.Errorf("undeclared port: %v", err)
		}
	})

	e.sub("ipc between capsules", func(t *testing.T) {
		if _, err := e.callTool(friend, "listen", map[string]string{"topic": "hostile/events"}); err != nil {
			t.Fatal(err)
		}
		if got, err := e.callTool(friend, "poll", map[string]string{"topic": "hostile/events"}); err != nil || got != "" {
			t.Fatalf("empty poll = %q, %v", got, err)
		}
		for _, p := range []string{"one", "two"} {
			if _, err := e.callTool(hostile, "publish", map[string]string{"topic": "events", "payload": p}); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := e.callTool(friend, "poll", map[string]string{"topic": "hostile/events"}); err != nil || got != "hostile:hostile/events:one,hostile:hostile/events:two" {
			t.Errorf("poll = %q, %v", got, err)
		}
		// A capsule cannot publish under another capsule's id, even a
		// topic it may subscribe to.
		_, err := e.callTool(friend, "publish", map[string]string{"topic": "hostile/events", "payload": "forged"})
		if err == nil || !strings.Contains(err.Error(), "capsule_grant") {
			t.Errorf("forged publish: %v", err)
		}
		if _, err := e.callTool(hostile, "poll", map[string]string{"topic": "events"}); err == nil || !strings.Contains(err.Error(), "not subscribed") {
			t.Errorf("poll without subscribing: %v", err)
		}
	})

	e.sub("uplink and elicit", func(t *testing.T) {
		if got, err := e.callTool(friend, "tell", map[string]any{}); err != nil || got != "told" {
			t.Fatalf("tell = %q, %v", got, err)
		}
		if strings.Join(ff.sent, ";") != "s1|friend|hello from a capsule" {
			t.Errorf("sent = %v", ff.sent)
		}
		if up := e.m.Uplinks(); up["feed"] != "friend" {
			t.Errorf("uplinks = %v", up)
		}
		if got, err := e.callTool(friend, "ask", map[string]any{}); err != nil || got != "blue for friend in s1 (favourite colour?)" {
			t.Errorf("ask = %q, %v", got, err)
		}
		// hostile declared neither.
		if _, err := e.callTool(hostile, "ask", map[string]any{}); err == nil || !strings.Contains(err.Error(), "capsule_grant") {
			t.Errorf("hostile ask: %v", err)
		}
	})

	e.sub("cron scheduled at run time", func(t *testing.T) {
		if _, err := e.callTool(friend, "sched", map[string]any{}); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 3, 1, 9, 0, 10, 0, time.UTC)
		e.m.Tick(ctx, now)
		e.m.Tick(ctx, now.Add(time.Minute))
		if v, _, _ := e.m.kv.Get(ctx, "friend", "ticks"); string(v) != "1" {
			t.Errorf("ticks = %q", v)
		}
		if _, err := e.callTool(friend, "unsched", map[string]any{}); err != nil {
			t.Fatal(err)
		}
		e.m.Tick(ctx, now.Add(5*time.Minute))
		if v, _, _ := e.m.kv.Get(ctx, "friend", "ticks"); string(v) != "1" {
			t.Errorf("ticks after cancel = %q", v)
		}
		if _, err := e.callTool(friend, "unsched", map[string]any{}); err == nil {
			t.Error("cancelled twice")
		}
	})

	e.sub("hooks", func(t *testing.T) {
		v, err := e.m.Hook(ctx, e.sess, sdk.HookEvent{Event: "BeforeToolCall", Session: "s1", Tool: "bash", Args: []byte(`{"command":"forbidden"}`)})
		if err != nil || !v.Block || v.Reason != "capsule friend: no forbidden words" {
			t.Errorf("block: %+v %v", v, err)
		}
		v, err = e.m.Hook(ctx, e.sess, sdk.HookEvent{Event: "BeforeToolCall", Tool: "bash", Args: []byte(`{}`)})
		if err != nil || v.Block {
			t.Errorf("pass: %+v %v", v, err)
		}
		// A hook that crashes blocks: an error is a no.
		v, _ = e.m.Hook(ctx, e.sess, sdk.HookEvent{Event: "BeforeToolCall", Tool: "bash", Args: []byte(`{"x":"crash"}`)})
		if !v.Block || !strings.Contains(v.Reason, "could not judge") {
			t.Errorf("crash: %+v", v)
		}
		v, _ = e.m.Hook(ctx, e.sess, sdk.HookEvent{Event: "AfterToolCall", Tool: "echo"})
		if v.Note != "[friend] seen echo" {
			t.Errorf("after: %+v", v)
		}
		v, _ = e.m.Hook(ctx, e.sess, sdk.HookEvent{Event: "AfterToolCall", Tool: "bash"})
		if v.Note != "" {
			t.Errorf("after, other tool: %+v", v)
		}
	})

	e.sub("static", func(t *testing.T) {
		// friend's context file is its 3 MB module: too large to inject.
		items, err := e.m.Static()
		if err == nil || !strings.Contains(err.Error(), "larger than 65536 bytes") || len(items) != 1 {
			t.Errorf("static with an oversized file: %d items, %v", len(items), err)
		}
		dir := filepath.Join(e.dir, "src", "guide")
		os.MkdirAll(filepath.Join(dir, "skills"), 0o755)
		os.WriteFile(filepath.Join(dir, "GUIDE.md"), []byte("Be brief."), 0o644)
		os.WriteFile(filepath.Join(dir, "skills", "review.md"), []byte("Review carefully."), 0o644)
		os.WriteFile(filepath.Join(dir, capsulepkg.ManifestFile), []byte(`[package]
name = "guide"
version = "1.0.0"
[[context_file]]
path = "GUIDE.md"
[[skill]]
name = "review"
path = "skills/review.md"
[[command]]
name = "standup"
prompt = "Summarise yesterday."
`), 0o644)
		e.install(dir, capsulepkg.InstallOptions{})
		items, _ = e.m.Static()
		var got []string
		for _, it := range items {
			if it.Capsule == "guide" {
				got = append(got, it.Kind+":"+it.Name+":"+it.Text)
			}
		}
		if strings.Join(got, "|") != "context_file:GUIDE.md:Be brief.|skill:review:Review carefully.|command:standup:Summarise yesterday." {
			t.Errorf("static items: %v", got)
		}
		for _, in := range e.m.List() {
			if in.ID == "guide" && in.Engine != "static" {
				t.Errorf("guide: %+v", in)
			}
		}
	})

	e.sub("widened manifest is not loaded", func(t *testing.T) {
		man := filepath.Join(e.home, "capsules", "friend", capsulepkg.ManifestFile)
		b, _ := os.ReadFile(man)
		wider := strings.Replace(string(b), "kv = true", "kv = true\nfs_read = [\"/\"]", 1)
		os.WriteFile(man, []byte(wider), 0o600)
		if _, err := e.m.Load(ctx, "friend"); err == nil || !strings.Contains(err.Error(), `(fs_read "/")`) {
			t.Errorf("Load: %v", err)
		}
		os.WriteFile(man, b, 0o600)
		if _, err := e.m.Load(ctx, "friend"); err != nil {
			t.Errorf("reload: %v", err)
		}
	})

	e.sub("remove", func(t *testing.T) {
		g, err := e.m.Store().ReadGrant("friend")
		if err != nil {
			t.Fatal(err)
		}
		// A record of a deferred call must not outlive the capsule.
		if _, err := e.m.kv.Set(ctx, capsulepkg.DeferredNS("friend"), "approval-1", []byte(`{}`), 1<<20, 100); err != nil {
			t.Fatal(err)
		}
		if err := e.m.Remove(ctx, "friend"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := e.m.kv.Get(ctx, "friend", "ticks"); ok {
			t.Error("kv left behind")
		}
		if _, ok, _ := e.m.kv.Get(ctx, capsulepkg.DeferredNS("friend"), "approval-1"); ok {
			t.Error("a deferred call's record left behind: a capsule installed later under the same id could read it")
		}
		id, _ := capability.ParseID(g.TokenID)
		recs, _ := e.core.DB.Tokens().List(ctx, true, time.Now())
		revoked := false
		for _, r := range recs {
			if r.Token.ID == id && !r.RevokedAt.IsZero() {
				revoked = true
			}
		}
		if !revoked {
			t.Error("grant token not revoked")
		}
		if _, err := e.m.Load(ctx, "friend"); !errors.Is(err, api.ErrNotFound) {
			t.Errorf("load after remove: %v", err)
		}
		if err := e.m.Unload(ctx, "friend"); !errors.Is(err, api.ErrNotFound) {
			t.Errorf("unload after remove: %v", err)
		}
	})

	// Everything the capsules did, allowed or refused, left a log that
	// verifies.
	rep, err := audit.Verify(ctx, e.core.DB.Audit(), e.core.Trusted, nil)
	if err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if rep.Tree.N < 50 {
		t.Errorf("audit verify: only %d entries", rep.Tree.N)
	}
}

func TestStartRunsCronAndDefers(t *testing.T) {
	e := newEnv(t, envOptions{limits: Limits{Timeout: 5 * time.Second}})
	var minutes atomic.Int64
	base := time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC)
	e.m.now = func() time.Time { return base.Add(time.Duration(minutes.Add(1)) * time.Minute) }
	e.install(e.notesDir(), capsulepkg.InstallOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.m.Start(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _, _ := e.m.kv.Get(ctx, "notes", "stats:runs"); len(v) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not run the cron job")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// In a safe-mode session nobody can answer, a capsule's file write is
	// deferred: the capsule sees status deferred, nothing is written.
	e.sess.Mode, e.sess.Asker = security.Safe, nil
	got := e.fail("note_add", map[string]string{"title": "later", "text": "x"})
	if !strings.Contains(got, "deferred: approval ") {
		t.Errorf("note_add in safe mode without an asker: %q", got)
	}
	if _, err := os.Stat(filepath.Join(e.ws, "notes")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("notes/ was created: %v", err)
	}
}

// capsulepkg writes install entries without linking the interceptor; its
// kind must stay the interceptor's.
func TestInstallEntriesUseTheInterceptorsKind(t *testing.T) {
	if capsulepkg.ActionKind != string(security.Capsule) {
		t.Fatalf("capsulepkg.ActionKind = %q, security.Capsule = %q", capsulepkg.ActionKind, security.Capsule)
	}
}
