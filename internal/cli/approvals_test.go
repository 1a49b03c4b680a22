package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/security"
)

// deferTwo opens the core as the daemon would and defers two writes.
func deferTwo(t *testing.T, te *testEnv) []string {
	t.Helper()
	ctx := context.Background()
	c, err := core.Open(ctx, core.Options{Home: home.Dir(te.vars["ASTRID_HOME"]), Getenv: func(k string) string { return te.vars[k] },
		SystemConfigFile: filepath.Join(te.tmp, "etc", "config.toml")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ws := filepath.Join(te.tmp, "repo")
	var ids []string
	for _, f := range []string{"a.go", "b.go"} {
		a, err := security.NewFileAction(security.FileWrite, security.Session{ID: "s1", Principal: "me", Workspace: ws}, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Interceptor.Intercept(ctx, a)
		var de *security.DeferredError
		if !errors.As(err, &de) {
			t.Fatalf("intercept without a frontend: %v", err)
		}
		ids = append(ids, de.ID)
	}
	return ids
}

func TestApprovalsListApproveDeny(t *testing.T) {
	te := newTestEnv(t)
	if out, _, code := te.run(t, "approvals", "list"); code != 0 || !strings.Contains(out, "no deferred approvals") {
		t.Fatalf("empty list: %d %q", code, out)
	}
	ids := deferTwo(t, te)
	// No daemon: list and show read the store.
	out, stderr, code := te.run(t, "approvals", "list")
	if code != 0 || !strings.Contains(out, ids[0]) || !strings.Contains(out, ids[1]) || !strings.Contains(out, "pending") {
		t.Fatalf("list: %d %q %q", code, out, stderr)
	}
	if out, stderr, code := te.run(t, "approvals", "show", ids[1]); code != 0 || !strings.Contains(out, "pending") || !strings.Contains(out, "a.go") && !strings.Contains(out, "b.go") {
		t.Fatalf("show without a daemon: %d %q %q", code, out, stderr)
	}
	// Answers go through the daemon, and so do list and show while it runs.
	serveTestDaemon(t, te, nil)
	if out, stderr, code := te.run(t, "approvals", "approve", ids[0], "--scope", "session"); code != 0 || !strings.Contains(out, "approved") {
		t.Fatalf("approve: %d %q %q", code, out, stderr)
	}
	if _, stderr, code := te.run(t, "approvals", "deny", ids[0]); code == 0 || !strings.Contains(stderr, "already answered") {
		t.Fatalf("second answer: %d %q", code, stderr)
	}
	if _, stderr, code := te.run(t, "approvals", "approve", ids[1], "--scope", "forever"); code == 0 || !strings.Contains(stderr, "--scope") {
		t.Fatalf("bad scope: %d %q", code, stderr)
	}
	if _, stderr, code := te.run(t, "approvals", "deny", ids[1], "--reason", "not now"); code != 0 {
		t.Fatalf("deny: %q", stderr)
	}
	out, _, code = te.run(t, "--format", "json", "approvals", "show", ids[0])
	var v api.DeferredApproval
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("show: %d %q", code, out)
	}
	if v.Status != string(approval.Approved) || v.Answer == nil || v.Answer.Decision != string(approval.AllowSession) || !strings.HasPrefix(v.Answer.By, "local:") || v.Answer.Frontend != "cli" {
		t.Errorf("show = %+v", v)
	}
	if out, _, _ := te.run(t, "approvals", "list"); !strings.Contains(out, "no deferred approvals") {
		t.Errorf("answered approvals still pending: %q", out)
	}
	if out, _, _ := te.run(t, "approvals", "list", "--all"); !strings.Contains(out, "denied") || !strings.Contains(out, "approved") {
		t.Errorf("list --all: %q", out)
	}
	if _, stderr, code := te.run(t, "approvals", "show", "nope"); code == 0 || !strings.Contains(stderr, "no such deferred approval") {
		t.Errorf("show unknown: %d %q", code, stderr)
	}
	// Every answer is in the audit log, which still verifies.
	if out, stderr, code := te.run(t, "audit", "verify"); code != 0 {
		t.Fatalf("audit verify after answers: %d %q %q", code, out, stderr)
	}
	out, _, _ = te.run(t, "--format", "json", "audit", "list")
	if n := strings.Count(out, "deferred:"); n != 4 {
		t.Errorf("audit mentions deferred approvals %d times, want 4 (2 deferrals, 2 answers):\n%s", n, out)
	}
	if _, err := os.Stat(filepath.Join(te.vars["ASTRID_HOME"], "state.db")); err != nil {
		t.Fatal(err)
	}
}

// TestDescribeAnswered: what `approvals approve|deny` prints for each
// outcome the daemon reports.
func TestDescribeAnswered(t *testing.T) {
	base := api.DeferredApproval{ID: "d1", Request: api.ApprovalRequest{Session: "s1"}}
	with := func(o *api.DeferredResult) api.DeferredApproval { v := base; v.Outcome = o; return v }
	for _, tc := range []struct {
		d    api.DeferredApproval
		dec  approval.Decision
		want string
	}{
		{base, approval.AllowOnce, "approved d1 (allow_once): it runs when its owner in session s1 claims it\n"},
		{base, approval.Deny, "denied d1\n"},
		{with(&api.DeferredResult{Tool: "bash", Status: api.DeferredRan, Output: "hello\n"}), approval.AllowOnce, "approved d1 (allow_once): bash ran in session s1:\nhello\n"},
		{with(&api.DeferredResult{Tool: "bash", Status: api.DeferredFailed, Output: "exit 1", Truncated: true}), approval.AllowSession, "approved d1 (allow_session): bash ran in session s1 and failed:\nexit 1\n[… truncated]\n"},
		{with(&api.DeferredResult{Tool: "write_file", Status: api.DeferredRefused, Output: "denied by policy"}), approval.AllowOnce, "approved d1 (allow_once), but write_file was not run:\ndenied by policy\n"},
		{with(&api.DeferredResult{Tool: "bash", Status: api.DeferredQueued}), approval.AllowOnce, "approved d1 (allow_once): queued; bash runs when the turn running in session s1 ends\n"},
		{with(&api.DeferredResult{Tool: "bash", Status: api.DeferredDenied}), approval.Deny, "denied d1: bash did not run; session s1 is told\n"},
	} {
		if got := describeAnswered(tc.d, tc.dec); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}
