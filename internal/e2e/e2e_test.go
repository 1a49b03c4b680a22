// Package e2e_test drives the real astrid and astridd binaries: a daemon
// started on demand, a scripted model (the replay provider), headless turns
// through `astrid exec`, and the CLI commands that read what they left.
package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/mcp/mcptest"
)

var bin string // directory holding the built binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "astrid-e2e-bin-")
	if err != nil {
		panic(err)
	}
	out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/astrid-runtime/astrid/cmd/astrid", "github.com/astrid-runtime/astrid/cmd/astridd").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		panic("build: " + err.Error() + "\n" + string(out))
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type env struct {
	t       *testing.T
	dir, ws string
	home    string
	environ []string
}

func newEnv(t *testing.T, transcript, extraConfig string) *env {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, ws: filepath.Join(dir, "proj"), home: filepath.Join(dir, "astrid-home")}
	os.MkdirAll(e.ws, 0o755)
	os.MkdirAll(e.home, 0o700)
	script := filepath.Join(dir, "model.jsonl")
	if err := os.WriteFile(script, []byte(transcript), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "[model]\nprovider = \"replay\"\nmodel = \"scripted\"\napi_url = \"file://" + script + "\"\n[gateway]\nidle_shutdown_secs = 30\n" + extraConfig
	if err := os.WriteFile(filepath.Join(e.home, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.environ = []string{"ASTRID_HOME=" + e.home, "HOME=" + dir, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + dir}
	t.Cleanup(func() { e.astrid("daemon", "stop") })
	return e
}

// astrid runs the CLI and returns stdout, stderr and the exit code.
func (e *env) astrid(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(bin, "astrid"), args...)
	cmd.Dir = e.ws
	cmd.Env = e.environ
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		e.t.Fatalf("astrid %v hung; stderr:\n%s", args, errb.String())
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func events(t *testing.T, out string) []api.Event {
	t.Helper()
	var evs []api.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev api.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not an event line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestExecThroughAnAutoStartedDaemon(t *testing.T) {
	transcript := `{"text": "Writing it.", "tool_calls": [{"id": "c1", "name": "write_file", "arguments": {"file_path": "hello.txt", "content": "hello\n"}}]}
{"expect": {"tool_results": 1}, "tool_calls": [{"id": "c2", "name": "read_file", "arguments": {"file_path": "hello.txt"}}]}
{"expect": {"tool_results": 1}, "text": "Done: hello.txt says hello."}
`
	e := newEnv(t, transcript, "")
	out, stderr, code := e.astrid("--format", "json", "exec", "--approve", "allow", "--mode", "safe", "write hello.txt")
	if code != 0 {
		t.Fatalf("exec exited %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	evs := events(t, out)
	seen := map[api.EventType]int{}
	var text strings.Builder
	for _, ev := range evs {
		seen[ev.Type]++
		if ev.Type == api.EventTextDelta {
			var d api.TextDelta
			json.Unmarshal(ev.Data, &d)
			text.WriteString(d.Text)
		}
	}
	if seen[api.EventApprovalNeeded] != 2 || seen[api.EventToolCallResult] != 2 || seen[api.EventTurnComplete] != 1 {
		t.Errorf("events: %v", seen)
	}
	if !strings.Contains(text.String(), "Done: hello.txt says hello.") {
		t.Errorf("text %q", text.String())
	}
	if got, _ := os.ReadFile(filepath.Join(e.ws, "hello.txt")); string(got) != "hello\n" {
		t.Errorf("hello.txt = %q", got)
	}
	// The CLI reads what the daemon saved and logged.
	list, _, code := e.astrid("sessions", "list")
	if code != 0 || !strings.Contains(list, e.ws) {
		t.Errorf("sessions list (%d):\n%s", code, list)
	}
	if out, stderr, code := e.astrid("audit", "verify"); code != 0 {
		t.Errorf("audit verify (%d): %s %s", code, out, stderr)
	}
	if out, _, _ := e.astrid("--format", "json", "audit", "list", "--decision", "allowed"); strings.Count(out, "allow_once") < 2 {
		t.Errorf("audit does not show the two approvals:\n%s", out)
	}
}

func TestExecDefersWithoutAnAnswer(t *testing.T) {
	transcript := `{"tool_calls": [{"id": "c1", "name": "write_file", "arguments": {"file_path": "later.txt", "content": "x"}}]}
{"expect": {"tool_results": 1}, "text": "It is pending approval."}
`
	e := newEnv(t, transcript, "[security]\napproval_timeout_secs = 1\n")
	out, stderr, code := e.astrid("exec", "--approve", "defer", "--mode", "safe", "write later.txt")
	if code != 0 {
		t.Fatalf("exec exited %d\n%s\n%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(e.ws, "later.txt")); err == nil {
		t.Fatal("a deferred write ran")
	}
	list, _, _ := e.astrid("approvals", "list")
	if !strings.Contains(list, "pending") || !strings.Contains(list, "later.txt") {
		t.Errorf("approvals list:\n%s", list)
	}
	// A human approves it later: the daemon runs it, once, and says so.
	out, _, _ = e.astrid("--format", "json", "approvals", "list")
	var ds []api.DeferredApproval
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("approvals list --format json: %v\n%s", err, out)
	}
	id, sess := ds[0].ID, ds[0].Request.Session
	out, stderr, code = e.astrid("approvals", "approve", id)
	if code != 0 || !strings.Contains(out, "approved "+id+" (allow_once): write_file ran in session "+sess) {
		t.Fatalf("approve exited %d\n%s\n%s", code, out, stderr)
	}
	if got, err := os.ReadFile(filepath.Join(e.ws, "later.txt")); err != nil || string(got) != "x" {
		t.Fatalf("later.txt after the approval: %q, %v", got, err)
	}
	if _, stderr, code := e.astrid("approvals", "approve", id); code == 0 || !strings.Contains(stderr, "already answered") {
		t.Errorf("second approval: exit %d\n%s", code, stderr)
	}
	if out, _, _ := e.astrid("--format", "json", "approvals", "show", id); !strings.Contains(out, `"status": "done"`) && !strings.Contains(out, `"status":"done"`) {
		t.Errorf("approvals show after the run:\n%s", out)
	}
	// The session's model reads the outcome on its next turn.
	out, stderr, code = e.astrid("sessions", "show", sess)
	if code != 0 || !strings.Contains(out, "The deferred call write_file (approval "+id) || !strings.Contains(out, "and ran") {
		t.Errorf("sessions show exited %d\n%s\n%s", code, out, stderr)
	}
}

func TestExecRefusesBlockedCommands(t *testing.T) {
	transcript := `{"tool_calls": [{"id": "c1", "name": "bash", "arguments": {"command": "echo $(s\"u\"do id)"}}]}
{"expect": {"tool_results": 1}, "text": "Refused."}
`
	e := newEnv(t, transcript, "")
	out, _, code := e.astrid("--format", "json", "exec", "--approve", "allow", "--mode", "autonomous", "escalate")
	if code != 0 {
		t.Fatalf("exec exited %d:\n%s", code, out)
	}
	var res api.ToolCallResult
	for _, ev := range events(t, out) {
		if ev.Type == api.EventToolCallResult {
			json.Unmarshal(ev.Data, &res)
		}
	}
	if res.Status != "denied" || !strings.Contains(res.Output, "blocked_commands") {
		t.Errorf("bash result %+v", res)
	}
}

// stdinRun runs astrid with the given standard input.
func (e *env) stdinRun(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(bin, "astrid"), args...)
	cmd.Dir = e.ws
	cmd.Env = e.environ
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		e.t.Fatalf("astrid %v hung:\n%s\n%s", args, out.String(), errb.String())
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestFirstRunOfflineDemo: with no provider configured, chat offers the
// offline demo, which asks for one approval and shows the audit entries.
func TestFirstRunOfflineDemo(t *testing.T) {
	e := newEnv(t, `{"text":"unused"}`, "")
	os.Remove(filepath.Join(e.home, "config.toml")) // a fresh home: nothing configured
	t.Cleanup(func() {
		cmd := exec.Command(filepath.Join(bin, "astrid"), "daemon", "stop")
		cmd.Env = append(e.environ[:0:0], "ASTRID_HOME="+filepath.Join(e.home, "demo"), "HOME="+e.dir, "PATH="+os.Getenv("PATH"))
		cmd.Run()
	})
	out, stderr, code := e.stdinRun("d\no\n", "chat")
	if code != 0 {
		t.Fatalf("chat exited %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"no model to talk to", "offline demo", "o = allow once", "The audit log of this session", "allow_once", "edit_file", "Done."} {
		if !strings.Contains(out+stderr, want) {
			t.Errorf("output lacks %q:\n%s\n%s", want, out, stderr)
		}
	}
}

// TestDaemonKilledMidTurnResumes: SIGKILL the daemon while a command of the
// turn runs, start it again, and resume the session with what was saved.
func TestDaemonKilledMidTurnResumes(t *testing.T) {
	transcript := `{"tool_calls": [{"id": "c1", "name": "write_file", "arguments": {"file_path": "step1.txt", "content": "one"}}]}
{"expect": {"tool_results": 1}, "tool_calls": [{"id": "c2", "name": "bash", "arguments": {"command": "sleep 60"}}]}
{"text": "after the restart"}
`
	e := newEnv(t, transcript, "[workspace]\nmode = \"autonomous\"\n")
	cmd := exec.Command(filepath.Join(bin, "astrid"), "--format", "json", "exec", "--mode", "autonomous", "two steps")
	cmd.Dir, cmd.Env = e.ws, e.environ
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until the second round's command runs, then kill the daemon.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), `"tool":"bash"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	pidb, err := os.ReadFile(filepath.Join(e.home, "daemon.pid"))
	if err != nil {
		t.Fatalf("no daemon pid: %v\n%s", err, out.String())
	}
	var pid int
	fmt.Sscan(strings.TrimSpace(string(pidb)), &pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("exec succeeded although its daemon was killed:\n%s", out.String())
	}
	// A new daemon replaces the stale files; the session is there with the
	// first round saved.
	list, stderr, code := e.astrid("--format", "json", "sessions", "list")
	if code != 0 {
		t.Fatalf("sessions list: %s", stderr)
	}
	var sessions []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(list), &sessions); err != nil || len(sessions) != 1 {
		t.Fatalf("sessions: %v %s", err, list)
	}
	show, _, _ := e.astrid("sessions", "show", sessions[0].ID)
	if !strings.Contains(show, "step1.txt") {
		t.Errorf("the first round was not saved:\n%s", show)
	}
	if _, err := os.Stat(filepath.Join(e.ws, "step1.txt")); err != nil {
		t.Error("step1.txt missing")
	}
	// A restarted daemon resumes the session.
	out2, stderr, code := e.stdinRun("", "chat", "--session", sessions[0].ID)
	if code != 0 {
		t.Fatalf("resume after SIGKILL: %d\n%s\n%s", code, out2, stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMCPToolThroughTheDaemon: a configured stdio MCP server
// (server-everything, sandboxed) offers its tools to the model, and a call
// goes through the interceptor (asks, audited) to the server and back.
func TestMCPToolThroughTheDaemon(t *testing.T) {
	ne := mcptest.Find(t, "server-everything")
	node, script := ne.Node, ne.Script("server-everything")
	transcript := `{"tool_calls": [{"id": "m1", "name": "mcp__everything__echo", "arguments": {"message": "hi from astrid"}}]}
{"expect": {"tool_results": 1}, "text": "The server echoed."}
`
	servers := fmt.Sprintf("[servers.everything]\ntransport = \"stdio\"\ncommand = %q\nargs = [%q, \"stdio\"]\nauto_start = true\ntrusted = true\n", node, script)
	e := newEnv(t, transcript, servers)
	out, stderr, code := e.astrid("--format", "json", "exec", "--approve", "allow", "--mode", "safe", "echo something")
	if code != 0 {
		t.Fatalf("exec exited %d\n%s\n%s", code, out, stderr)
	}
	var res api.ToolCallResult
	asked := 0
	for _, ev := range events(t, out) {
		switch ev.Type {
		case api.EventToolCallResult:
			json.Unmarshal(ev.Data, &res)
		case api.EventApprovalNeeded:
			asked++
		}
	}
	if res.Status != "ok" || !strings.Contains(res.Output, "hi from astrid") || asked != 1 {
		t.Errorf("MCP call: asked %d times, result %+v", asked, res)
	}
	if list, _, _ := e.astrid("--format", "json", "audit", "list"); !strings.Contains(list, "mcp://everything/echo") {
		t.Errorf("the MCP call is not in the audit log:\n%s", list)
	}
}

// TestCapsuleToolUsedByTheAgent: the example notes capsule is built for
// wasip1, installed with the CLI, loaded by the daemon, and its tool is
// called by the model; its file write lands in the workspace through the
// interceptor.
func TestCapsuleToolUsedByTheAgent(t *testing.T) {
	transcript := `{"tool_calls": [{"id": "n1", "name": "note_add", "arguments": {"title": "Groceries", "text": "milk"}}]}
{"expect": {"tool_results": 1}, "text": "Noted."}
`
	e := newEnv(t, transcript, "")
	src := filepath.Join(e.dir, "notes-capsule")
	os.MkdirAll(src, 0o755)
	build := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", filepath.Join(src, "notes.wasm"), "github.com/astrid-runtime/astrid/examples/notes")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the notes capsule: %v\n%s", err, out)
	}
	manifest, err := os.ReadFile("../../examples/notes/Capsule.toml")
	if err != nil {
		t.Fatal(err)
	}
	wasm, _ := os.ReadFile(filepath.Join(src, "notes.wasm"))
	manifest, err = capsulepkg.SetManifestHash("Capsule.toml", manifest, capsulepkg.Hash(wasm))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "Capsule.toml"), manifest, 0o644)
	if out, stderr, code := e.astrid("capsule", "install", src, "--yes"); code != 0 {
		t.Fatalf("install: %d\n%s\n%s", code, out, stderr)
	}
	out, stderr, code := e.astrid("--format", "json", "exec", "--approve", "allow", "--mode", "autonomous", "note milk")
	if code != 0 {
		t.Fatalf("exec: %d\n%s\n%s", code, out, stderr)
	}
	var res api.ToolCallResult
	for _, ev := range events(t, out) {
		if ev.Type == api.EventToolCallResult {
			json.Unmarshal(ev.Data, &res)
		}
	}
	if res.Status != "ok" {
		t.Fatalf("note_add: %+v\n%s", res, stderr)
	}
	matches, _ := filepath.Glob(filepath.Join(e.ws, "notes", "*.md"))
	if len(matches) != 1 {
		t.Fatalf("notes written: %v (result %q)", matches, res.Output)
	}
	if b, _ := os.ReadFile(matches[0]); !strings.Contains(string(b), "milk") {
		t.Errorf("note %s: %q", matches[0], b)
	}
	if out, _, code := e.astrid("audit", "verify"); code != 0 {
		t.Errorf("audit verify: %s", out)
	}
}

func TestHooksThroughTheDaemon(t *testing.T) {
	transcript := `{"tool_calls": [{"id": "c1", "name": "write_file", "arguments": {"file_path": ".env", "content": "SECRET=1\n"}}]}
{"expect": {"tool_results": 1}, "text": "Could not write it."}
`
	e := newEnv(t, transcript, "[hooks]\nallow_workspace_hooks = true\n")
	hooksDir := filepath.Join(e.home, "hooks")
	os.MkdirAll(hooksDir, 0o700)
	os.WriteFile(filepath.Join(hooksDir, "hooks.toml"), []byte(`[[hook]]
name = "no-env-files"
event = "PreToolCall"
tools = ["write_file", "edit_file"]
command = ["./check.sh"]
timeout_secs = 10
`), 0o600)
	os.WriteFile(filepath.Join(hooksDir, "check.sh"), []byte(`#!/bin/sh
case "$(cat)" in
*'"file_path":".env"'*) echo '{"decision":"block","reason":"no .env files"}' ;;
*) echo '{"decision":"continue"}' ;;
esac
`), 0o700)
	wsHooks := filepath.Join(e.ws, ".astrid", "hooks")
	os.MkdirAll(wsHooks, 0o755)
	os.WriteFile(filepath.Join(wsHooks, "hooks.toml"), []byte("[[hook]]\nname = \"ws-log\"\nevent = \"PostToolCall\"\ncommand = [\"./log.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(wsHooks, "log.sh"), []byte("#!/bin/sh\ncat >/dev/null\necho '{\"decision\":\"continue\"}'\n"), 0o755)

	out, stderr, code := e.astrid("hooks", "list")
	if code != 0 || !strings.Contains(out, "no-env-files") || !strings.Contains(out, "ws-log") || !strings.Contains(out, "untrusted") {
		t.Fatalf("hooks list (%d):\n%s\n%s", code, out, stderr)
	}
	out, stderr, code = e.astrid("hooks", "test", "PreToolCall", "--args", `{"file_path":".env","content":"x"}`)
	if code != 0 || !strings.Contains(out, "block: no .env files") {
		t.Errorf("hooks test (%d):\n%s\n%s", code, out, stderr)
	}
	out, _, _ = e.astrid("--format", "json", "hooks", "test", "PreToolCall")
	if !strings.Contains(out, `"decision": "continue"`) {
		t.Errorf("hooks test with the sample payload:\n%s", out)
	}
	out, _, _ = e.astrid("hooks", "test", "PostToolCall")
	if !strings.Contains(out, "skipped") {
		t.Errorf("an untrusted workspace hook was not skipped:\n%s", out)
	}
	out, stderr, code = e.astrid("hooks", "info", "no-env-files")
	if code != 0 || !strings.Contains(out, "write_file, edit_file") || !strings.Contains(out, "hooks.toml:1") {
		t.Errorf("hooks info (%d):\n%s\n%s", code, out, stderr)
	}

	// The hook blocks the agent's real tool call.
	out, stderr, code = e.astrid("--format", "json", "exec", "--approve", "allow", "--mode", "autonomous", "write .env")
	if code != 0 {
		t.Fatalf("exec exited %d\n%s\n%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(e.ws, ".env")); err == nil {
		t.Fatal("the hook did not block the write")
	}
	if !strings.Contains(out, "blocked by hook no-env-files: no .env files") {
		t.Errorf("exec output:\n%s", out)
	}

	out, stderr, code = e.astrid("hooks", "trust")
	if code != 0 || !strings.Contains(out, "trusted the hooks of "+e.ws) {
		t.Fatalf("hooks trust (%d):\n%s\n%s", code, out, stderr)
	}
	out, _, _ = e.astrid("hooks", "list")
	if strings.Contains(out, "untrusted") {
		t.Errorf("still untrusted after trust:\n%s", out)
	}
	out, _, _ = e.astrid("hooks", "test", "PostToolCall")
	if !strings.Contains(out, "ws-log") || strings.Contains(out, "skipped") {
		t.Errorf("the trusted workspace hook did not run:\n%s", out)
	}
}

// TestFilesystemAndMemoryServers: a scripted model uses the reference
// servers server-filesystem (confined to the workspace) and server-memory
// through the daemon: it writes and reads a file in the workspace, is
// refused a file outside it, stores an entity and recalls it. Every call
// is in the audit log.
func TestFilesystemAndMemoryServers(t *testing.T) {
	ne := mcptest.Find(t, "server-filesystem", "server-memory")
	node, fsScript, memScript := ne.Node, ne.Script("server-filesystem"), ne.Script("server-memory")
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(dir, "outside.txt")
	if err := os.WriteFile(outside, []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	memDir := filepath.Join(dir, "memory")
	os.MkdirAll(memDir, 0o700)
	// The workspace is <tmp>/proj (newEnv); its path is known only after
	// newEnv, so the transcript names it through a placeholder.
	transcript := `{"tool_calls": [{"id": "f1", "name": "mcp__fs__write_file", "arguments": {"path": "WS/notes.txt", "content": "otters hold hands"}}]}
{"expect": {"tool_results": 1}, "tool_calls": [{"id": "f2", "name": "mcp__fs__read_text_file", "arguments": {"path": "WS/notes.txt"}}]}
{"expect": {"tool_results": 1}, "tool_calls": [{"id": "f3", "name": "mcp__fs__read_text_file", "arguments": {"path": "OUTSIDE"}}]}
{"expect": {"tool_results": 1}, "tool_calls": [{"id": "m1", "name": "mcp__memory__create_entities", "arguments": {"entities": [{"name": "Ada", "entityType": "person", "observations": ["likes tea"]}]}}]}
{"expect": {"tool_results": 1}, "tool_calls": [{"id": "m2", "name": "mcp__memory__open_nodes", "arguments": {"names": ["Ada"]}}]}
{"expect": {"tool_results": 1}, "text": "Done."}
`
	e := newEnv(t, "", "")
	transcript = strings.ReplaceAll(strings.ReplaceAll(transcript, "WS", e.ws), "OUTSIDE", outside)
	if err := os.WriteFile(filepath.Join(e.dir, "model.jsonl"), []byte(transcript), 0o600); err != nil {
		t.Fatal(err)
	}
	servers := fmt.Sprintf("[servers.fs]\ntransport = \"stdio\"\ncommand = %q\nargs = [%q, %q]\ncwd = %q\nauto_start = true\ntrusted = true\n", node, fsScript, e.ws, e.ws) +
		fmt.Sprintf("[servers.memory]\ntransport = \"stdio\"\ncommand = %q\nargs = [%q]\ncwd = %q\nenv = { MEMORY_FILE_PATH = %q }\nauto_start = true\ntrusted = true\n", node, memScript, memDir, filepath.Join(memDir, "memory.jsonl"))
	f, err := os.OpenFile(filepath.Join(e.home, "config.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(servers)
	f.Close()

	out, stderr, code := e.astrid("--format", "json", "exec", "--approve", "allow", "--mode", "safe", "take a note and remember Ada")
	if code != 0 {
		t.Fatalf("exec exited %d\n%s\n%s", code, out, stderr)
	}
	results := map[string]api.ToolCallResult{}
	for _, ev := range events(t, out) {
		if ev.Type == api.EventToolCallResult {
			var r api.ToolCallResult
			json.Unmarshal(ev.Data, &r)
			results[r.Call] = r
		}
	}
	if r := results["f1"]; r.Status != "ok" {
		t.Errorf("write_file = %+v", r)
	}
	if b, err := os.ReadFile(filepath.Join(e.ws, "notes.txt")); err != nil || string(b) != "otters hold hands" {
		t.Errorf("the file in the workspace: %q, %v", b, err)
	}
	if r := results["f2"]; r.Status != "ok" || !strings.Contains(r.Output, "otters hold hands") {
		t.Errorf("read_text_file = %+v", r)
	}
	if r := results["f3"]; r.Status != "error" || strings.Contains(r.Output, "not yours") || !strings.Contains(strings.ToLower(r.Output), "outside allowed directories") {
		t.Errorf("read outside the workspace = %+v", r)
	}
	if r := results["m1"]; r.Status != "ok" || !strings.Contains(r.Output, "Ada") {
		t.Errorf("create_entities = %+v", r)
	}
	if r := results["m2"]; r.Status != "ok" || !strings.Contains(r.Output, "likes tea") {
		t.Errorf("open_nodes = %+v", r)
	}
	if b, err := os.ReadFile(filepath.Join(memDir, "memory.jsonl")); err != nil || !strings.Contains(string(b), "likes tea") {
		t.Errorf("the memory file: %q, %v", b, err)
	}
	list, _, _ := e.astrid("--format", "json", "audit", "list")
	for _, res := range []string{"mcp://fs/write_file", "mcp://fs/read_text_file", "mcp://memory/create_entities", "mcp://memory/open_nodes"} {
		if !strings.Contains(list, res) {
			t.Errorf("%s is not in the audit log", res)
		}
	}
}
