package mcp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// env is the real wiring: core.Open over a temporary $ASTRID_HOME, the
// sandbox with this test binary as helper, a Manager and a registry
// attached to it, and a human who answers with a chosen decision.
type env struct {
	t    testing.TB
	dir  string
	home string
	ws   string
	core *core.Core
	sb   *sandbox.Sandbox
	m    *Manager
	reg  *tools.Registry
	sess security.Session

	mu       sync.Mutex
	answer   approval.Decision
	asked    []approval.Request
	events   []Event
	elicited []ElicitRequest
	sampled  []SampleRequest
	// urlAction answers URL elicitations ("" : accept).
	urlAction string
}

// selfServer is a stdio server config that runs this test binary in mode.
func selfServer(t testing.TB, mode string, trusted bool) config.Server {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return config.Server{Transport: "stdio", Command: exe, Args: []string{serverArg, mode}, Trusted: trusted, RestartPolicy: "never"}
}

type envOpt func(*Options)

func newEnv(t testing.TB, servers map[string]config.Server, opts ...envOpt) *env {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, home: filepath.Join(dir, "home"), ws: filepath.Join(dir, "ws"), answer: approval.AllowOnce}
	for _, d := range []string{e.ws, e.home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"ASTRID_HOME": e.home, "HOME": dir}
	e.core, err = core.Open(context.Background(), core.Options{Home: home.Dir(e.home), Getenv: func(k string) string { return vars[k] },
		SystemConfigFile: filepath.Join(dir, "none.toml"), Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.core.Close() })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e.sb, err = sandbox.New(sandbox.Options{Helper: exe, Protected: []string{e.home}, KillGrace: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Servers:        servers,
		Sandbox:        e.sb,
		TempRoot:       filepath.Join(dir, "tmp"),
		RequestTimeout: 10 * time.Second,
		StartTimeout:   20 * time.Second,
		HealthInterval: -1,
		InitialBackoff: 20 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
		StopGrace:      500 * time.Millisecond,
		Audit:          e.core.Audit,
		Notify: func(ev Event) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		},
		Sampler:  e,
		Elicitor: e,
		Roots:    e,
	}
	for _, f := range opts {
		f(&o)
	}
	e.m, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := e.m.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	e.reg = tools.New(tools.Options{})
	detach := e.m.Attach(e.reg)
	t.Cleanup(detach)
	e.sess = security.Session{ID: "s1", Principal: "tester", Frontend: "test", Workspace: e.ws, Mode: security.Autonomous,
		Asker: approval.AskerFunc(func(_ context.Context, r approval.Request) (approval.Answer, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.asked = append(e.asked, r)
			return approval.Answer{Decision: e.answer, By: "tester"}, nil
		})}
	return e
}

// Sample implements Sampler: the scripted model.
func (e *env) Sample(ctx context.Context, req SampleRequest) (SampleResult, error) {
	e.mu.Lock()
	e.sampled = append(e.sampled, req)
	e.mu.Unlock()
	return SampleResult{Text: "hello from the model", Model: "scripted-1"}, nil
}

// Elicit implements Elicitor: the scripted frontend accepts with a name.
func (e *env) Elicit(ctx context.Context, req ElicitRequest) (ElicitResult, error) {
	e.mu.Lock()
	e.elicited = append(e.elicited, req)
	e.mu.Unlock()
	if req.Mode == "url" {
		a := e.urlAction
		if a == "" {
			a = "accept"
		}
		return ElicitResult{Action: a}, nil
	}
	return ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
}

// Roots implements Roots: the session's workspace.
func (e *env) Roots(server string) []string { return []string{e.ws} }

func (e *env) start(name string) {
	e.t.Helper()
	if _, err := e.m.Start(context.Background(), name); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
}

// call runs a tool through the registry and the interceptor.
func (e *env) call(name string, args any) tools.Result {
	e.t.Helper()
	return e.callCtx(context.Background(), name, args)
}

func (e *env) callCtx(ctx context.Context, name string, args any) tools.Result {
	e.t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.reg.Run(ctx, e.core.Interceptor, e.sess, name, raw)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	return res
}

func (e *env) ok(name string, args any) string {
	e.t.Helper()
	res := e.call(name, args)
	if res.IsError {
		e.t.Fatalf("%s: error result: %s", name, res.Text)
	}
	return res.Text
}

func (e *env) askedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.asked)
}

func (e *env) eventsOf(kind string) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// waitState waits for a server to reach state.
func (e *env) waitState(name, state string, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, s := range e.m.List() {
			if s.Name == name && s.State == state {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("server %s did not reach %s: %+v", name, state, e.m.List())
}

func (e *env) toolNames() []string {
	var out []string
	for _, s := range e.reg.Specs() {
		if strings.HasPrefix(s.Name, ToolPrefix) {
			out = append(out, s.Name)
		}
	}
	return out
}

// httpServer serves newGoodServer over Streamable HTTP in this process.
func httpServer(t testing.TB) string {
	t.Helper()
	srv := newGoodServer()
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, nil)
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL
}

func newRegistry() *tools.Registry { return tools.New(tools.Options{}) }

func countPrefixed(specs []tools.Spec) int {
	n := 0
	for _, s := range specs {
		if strings.HasPrefix(s.Name, ToolPrefix) {
			n++
		}
	}
	return n
}
