package capsule

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/keys"
)

const hostileManifest = `[package]
name = "{{name}}"
version = "1.0.0"

[component]
entrypoint = "{{name}}.wasm"
hash = "{{hash}}"

[capabilities]
fs_read = ["/"]
fs_write = ["scratch"]
kv = true
ipc = ["events"]
http = true
net = ["{{net}}"]

[env.GREETING]
type = "string"
default = "hi"
`

var hostileTools = []string{"echo", "spin", "alloc", "write", "read", "http", "flood", "bigkv", "undeclared", "config_loop", "kv_loop", "big_result", "panic", "fail", "json"}

func hostileDir(e *env, name, net string) string {
	man := strings.ReplaceAll(hostileManifest, "{{net}}", net)
	for _, t := range hostileTools {
		man += "\n[[tool]]\nname = \"" + t + "\"\ndescription = \"hostile " + t + "\"\n"
	}
	return e.capsuleDir(name, man, hostileWasm)
}

// serving checks the host still serves the capsule after an attack.
func (e *env) serving() {
	e.t.Helper()
	if got := e.ok("echo", map[string]string{"text": "still here"}); got != "still here" {
		e.t.Fatalf("echo = %q", got)
	}
}

// outcome returns the outcome entry of the latest decision on resource.
func (e *env) outcome(since int64, resource string) *audit.Entry {
	e.t.Helper()
	var dec, out *audit.Entry
	for _, en := range e.entries(since) {
		switch {
		case en.Type == audit.TypeDecision && en.Action.Resource == resource:
			dec, out = &en, nil
		case en.Type == audit.TypeOutcome && dec != nil && en.Ref.Seq == dec.Seq:
			out = &en
		}
	}
	return out
}

func TestHostile(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("secret"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	// The deadline leaves room for the legitimate calls below (a fresh
	// instance after a trap, under -race on a loaded machine, has taken
	// over a second).
	e := newEnv(t, envOptions{limits: Limits{Timeout: 3 * time.Second, MaxMemoryMB: 32}})
	ctx := context.Background()
	e.install(hostileDir(e, "hostile", u.Host), capsulepkg.InstallOptions{})
	e.serving()

	e.sub("infinite loop is killed at the deadline", func(t *testing.T) {
		seq := e.lastSeq()
		start := time.Now()
		got := e.fail("spin", map[string]any{})
		if d := time.Since(start); d < 3*time.Second || d > 8*time.Second {
			t.Errorf("spin took %s with a 3s limit", d)
		}
		if !strings.Contains(got, "ran longer than 3s") {
			t.Errorf("spin: %q", got)
		}
		if o := e.outcome(seq, "capsule://hostile/tool.spin"); o == nil || o.Status != audit.Failure {
			t.Errorf("spin outcome not audited as a failure: %+v", o)
		}
		e.serving()
	})

	e.sub("1 GiB allocation is trapped at the memory cap", func(t *testing.T) {
		seq := e.lastSeq()
		if got := e.ok("alloc", map[string]int{"n": 8}); got != "allocated 8388608" {
			t.Fatalf("8 MiB under a 32 MiB cap: %q", got)
		}
		// 40 MiB is below the 64 MiB ceiling: the configured 32 MiB cap
		// is what stops it.
		if got := e.fail("alloc", map[string]int{"n": 40}); !strings.Contains(got, "trapped") {
			t.Errorf("alloc 40 MiB under a 32 MiB cap: %q", got)
		}
		got := e.fail("alloc", map[string]int{"n": 1024})
		if !strings.Contains(got, "trapped") || !strings.Contains(got, "32 MiB") || strings.Contains(got, "stack") {
			t.Errorf("alloc 1 GiB: %q", got)
		}
		if o := e.outcome(seq, "capsule://hostile/tool.alloc"); o == nil || o.Status != audit.Failure {
			t.Errorf("alloc outcome not audited as a failure: %+v", o)
		}
		e.serving()
	})

	e.sub("write outside the granted roots", func(t *testing.T) {
		if err := os.MkdirAll(filepath.Join(e.ws, "scratch"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(e.outside, filepath.Join(e.ws, "scratch", "link")); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"../../outside/pwned", "scratch/../../../outside/pwned", "scratch/link/pwned", e.outside + "/pwned", "notes.md"} {
			seq := e.lastSeq()
			got := e.fail("write", map[string]string{"path": p})
			if !strings.Contains(got, "denied by capsule (capsule_grant)") || !strings.Contains(got, "not under a root") {
				t.Errorf("write %s: %q", p, got)
			}
			if d := e.denied(seq, "file://", RuleGrant); d == nil || d.Action.Kind != "file_write" || d.Session != "s1" {
				t.Errorf("write %s: denial not audited: %+v", p, d)
			}
		}
		if _, err := os.Stat(filepath.Join(e.outside, "pwned")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("outside/pwned exists: %v", err)
		}
		if got := e.ok("write", map[string]string{"path": "scratch/fine.txt"}); got != "wrote" {
			t.Errorf("write inside the root: %q", got)
		}
		e.serving()
	})

	e.sub("read ASTRID_HOME keys", func(t *testing.T) {
		// The capsule declared fs_read = ["/"] and the user granted it;
		// policy still protects $ASTRID_HOME.
		keyFile := filepath.Join(e.home, "keys", keys.Runtime+".key")
		if _, err := os.Stat(filepath.Dir(keyFile)); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{keyFile, filepath.Join(e.home, "keys"), filepath.Join(e.home, "state.db"), e.home + "/capsules/hostile.grant.json"} {
			seq := e.lastSeq()
			got := e.fail("read", map[string]string{"path": p})
			if !strings.Contains(got, "denied by policy") {
				t.Errorf("read %s: %q", p, got)
			}
			if d := e.denied(seq, "file://"+p, ""); d == nil || d.Action.Kind != "file_read" {
				t.Errorf("read %s: denial not audited", p)
			}
		}
		e.serving()
	})

	e.sub("http to an undeclared host and to loopback", func(t *testing.T) {
		seq := e.lastSeq()
		got := e.fail("http", map[string]string{"url": "http://example.com/"})
		if !strings.Contains(got, "capsule_grant") || !strings.Contains(got, "not declared in capabilities.net") {
			t.Errorf("undeclared host: %q", got)
		}
		if d := e.denied(seq, "net://example.com:80", RuleGrant); d == nil || d.Action.Kind != "network" {
			t.Error("undeclared host: denial not audited")
		}
		// 127.0.0.1:port is declared (and granted); policy refuses
		// loopback, and no request reaches the server.
		seq = e.lastSeq()
		got = e.fail("http", map[string]string{"url": srv.URL + "/"})
		if !strings.Contains(got, "denied by policy") {
			t.Errorf("loopback: %q", got)
		}
		if d := e.denied(seq, "net://"+u.Host, ""); d == nil {
			t.Error("loopback: denial not audited")
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("the loopback server got %d requests", n)
		}
		e.serving()
	})

	e.sub("ipc flood", func(t *testing.T) {
		seq := e.lastSeq()
		got := e.fail("flood", map[string]int{"n": 10_000})
		if !strings.Contains(got, "was stopped") || !strings.Contains(got, "more than 64 ipc messages") {
			t.Errorf("flood: %q", got)
		}
		var allowed, denied int
		for _, en := range e.entries(seq) {
			if en.Action.Resource == "capsule://hostile/ipc" && en.Type == audit.TypeDecision {
				switch en.Decision {
				case audit.Allowed:
					allowed++
				case audit.Denied:
					denied++
				}
			}
		}
		if allowed != MaxPublishesPerCall || denied != 1 {
			t.Errorf("flood audit: %d allowed, %d denied; want %d and 1", allowed, denied, MaxPublishesPerCall)
		}
		e.serving()
	})

	e.sub("huge kv value", func(t *testing.T) {
		seq := e.lastSeq()
		got := e.fail("bigkv", map[string]int{"n": 2 << 20})
		if !strings.Contains(got, "capsule_limit") || !strings.Contains(got, "more than 1048576") {
			t.Errorf("bigkv: %q", got)
		}
		if d := e.denied(seq, "capsule://hostile/kv", RuleLimit); d == nil {
			t.Error("bigkv: denial not audited")
		}
		if _, ok, _ := e.m.kv.Get(ctx, "hostile", "big"); ok {
			t.Error("the huge value was stored")
		}
		if got := e.ok("bigkv", map[string]int{"n": 1 << 20}); got != "stored" {
			t.Errorf("1 MiB value: %q", got)
		}
		e.serving()
	})

	e.sub("undeclared capabilities", func(t *testing.T) {
		seq := e.lastSeq()
		got := e.ok("undeclared", map[string]any{})
		if n := strings.Count(got, "capsule_grant"); n != 3 {
			t.Errorf("undeclared: %q", got)
		}
		for _, r := range []string{"capsule://hostile/ipc", "capsule://hostile/uplink", "capsule://hostile/cron"} {
			if e.denied(seq, r, RuleGrant) == nil {
				t.Errorf("%s: denial not audited", r)
			}
		}
		e.mu.Lock()
		asked := len(e.asked)
		e.mu.Unlock()
		if asked != 0 {
			t.Errorf("the human was asked %d times", asked)
		}
	})

	e.sub("panics, errors and large results", func(t *testing.T) {
		if got := e.fail("panic", map[string]any{}); !strings.Contains(got, "trapped") {
			t.Errorf("panic: %q", got)
		}
		e.serving()
		if got := e.fail("fail", map[string]any{}); !strings.Contains(got, "it went wrong") {
			t.Errorf("fail: %q", got)
		}
		if got := e.ok("big_result", map[string]int{"n": 200 << 10}); got != "204800" {
			t.Errorf("big_result: %q", got)
		}
		if got := e.ok("config_loop", map[string]int{"n": 3}); got != "ok" {
			t.Errorf("config: %q", got)
		}
	})

	e.sub("tampered wasm", func(t *testing.T) {
		wasm := filepath.Join(e.home, "capsules", "hostile", "hostile.wasm")
		b, err := os.ReadFile(wasm)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 1
		if err := os.WriteFile(wasm, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Info("hostile"); !errors.Is(err, capsulepkg.ErrHashMismatch) {
			t.Errorf("Info: %v", err)
		}
		seq := e.lastSeq()
		if _, err := e.m.Load(ctx, "hostile"); !errors.Is(err, capsulepkg.ErrHashMismatch) {
			t.Fatalf("Load: %v", err)
		}
		if e.denied(seq, "capsule://hostile/load", RuleHash) == nil {
			t.Error("refused load not audited")
		}
		// The loaded (verified) module keeps serving until unloaded.
		e.serving()
		if l := e.m.List(); len(l) != 1 || l[0].State != "loaded" || !strings.Contains(l[0].Error, "reload failed") {
			t.Errorf("List = %+v", l)
		}
	})
}

func TestUnhashed(t *testing.T) {
	for _, allow := range []bool{false, true} {
		e := newEnv(t, envOptions{limits: Limits{AllowUnhashed: allow}})
		src := hostileDir(e, "loose", "example.com")
		man := filepath.Join(src, capsulepkg.ManifestFile)
		b, _ := os.ReadFile(man)
		os.WriteFile(man, []byte(strings.Replace(string(b), `hash = "blake3:`, `# hash = "`, 1)), 0o644)
		_, err := e.m.Install(context.Background(), src, capsulepkg.InstallOptions{Approve: yes})
		if allow != (err == nil) || !allow && !errors.Is(err, capsulepkg.ErrUnhashed) {
			t.Errorf("allow_unhashed %v: install: %v", allow, err)
		}
	}
}

func TestLimitsNeverRaised(t *testing.T) {
	for _, tc := range []struct {
		in   Limits
		want Limits
	}{
		{Limits{}, Limits{MaxMemoryMB: 64, Timeout: 30 * time.Second}},
		{Limits{MaxMemoryMB: 1000, Timeout: time.Hour}, Limits{MaxMemoryMB: 64, Timeout: 30 * time.Second}},
		{Limits{MaxMemoryMB: -1, Timeout: -1}, Limits{MaxMemoryMB: 64, Timeout: 30 * time.Second}},
		{Limits{MaxMemoryMB: 16, Timeout: 2 * time.Second, AllowUnhashed: true}, Limits{MaxMemoryMB: 16, Timeout: 2 * time.Second, AllowUnhashed: true}},
	} {
		if got := tc.in.withDefaults(); got != tc.want {
			t.Errorf("%+v: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
