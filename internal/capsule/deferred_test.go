package capsule

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/security"
)

// deferWrite calls write_once in a session nobody can answer and returns
// the approval id the capsule was given.
func (e *env) deferWrite(c *Capsule, path string) string {
	e.t.Helper()
	got, err := e.callTool(c, "write_once", map[string]string{"path": path})
	id, ok := strings.CutPrefix(got, "deferred ")
	if err != nil || !ok || len(id) < 16 {
		e.t.Fatalf("write_once = %q, %v; want deferred <id>", got, err)
	}
	return id
}

// TestDeferredHostCallResumes: a capsule's file write is deferred because
// nobody can answer; the daemon restarts; a human approves; the write
// runs exactly once and the capsule receives its result, which no other
// capsule can read. A denied approval delivers the denial.
func TestDeferredHostCallResumes(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	e.sess.Mode, e.sess.Asker = security.Safe, nil // nobody can answer
	man := strings.ReplaceAll(hostileManifest, "{{net}}", "example.com")
	e.install(e.capsuleDir("writer", man, hostileWasm), capsulepkg.InstallOptions{})
	e.install(e.capsuleDir("other", man, hostileWasm), capsulepkg.InstallOptions{})
	writer, _ := e.m.Capsule("writer")

	target := filepath.Join(e.ws, "scratch", "once.txt")
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	id := e.deferWrite(writer, "scratch/once.txt")
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the deferred write ran: %v", err)
	}
	// While the approval waits, the result is deferred.
	if got, err := e.callTool(writer, "deferred_result", map[string]string{"id": id}); err == nil || !strings.Contains(err.Error(), "deferred: approval "+id+": still waiting") {
		t.Fatalf("deferred_result before the answer = %q, %v", got, err)
	}

	// The daemon restarts: a new Manager over the same state.
	if err := e.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e.m = e.newManager()
	for _, id := range []string{"writer", "other"} {
		if _, err := e.m.Load(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	writer, _ = e.m.Capsule("writer")
	other, _ := e.m.Capsule("other")

	// A human approves (astrid approvals approve / resolveApproval).
	if _, err := e.core.Interceptor.Resolve(ctx, id, approval.Answer{Decision: approval.AllowOnce, By: "human"}); err != nil {
		t.Fatal(err)
	}
	// The scheduler's pass and the capsule's poll race for it; it runs once.
	e.m.ResumeDeferred(ctx)
	e.m.ResumeDeferred(ctx)
	if b, err := os.ReadFile(target); err != nil || string(b) != "once" {
		t.Fatalf("after the approval: %q, %v", b, err)
	}
	// Written once: a change to the file is not overwritten by a second
	// resumption, and the approval cannot be run again.
	if err := os.WriteFile(target, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.m.ResumeDeferred(ctx)
	if b, _ := os.ReadFile(target); string(b) != "changed" {
		t.Fatalf("the write ran twice: %q", b)
	}
	if _, err := e.core.Interceptor.RunDeferred(ctx, id, security.ExecutorFunc(func(context.Context, security.Action) ([]byte, error) {
		t.Error("ran again")
		return nil, nil
	})); !errors.Is(err, approval.ErrAlreadyResolved) {
		t.Errorf("RunDeferred again = %v", err)
	}

	// Another capsule cannot read the result, nor learn that it exists.
	if got, err := e.callTool(other, "deferred_result", map[string]string{"id": id}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("another capsule's deferred_result = %q, %v", got, err)
	}
	// The capsule gets it, once.
	if got, err := e.callTool(writer, "deferred_result", map[string]string{"id": id}); err != nil || got != "result " {
		t.Fatalf("deferred_result = %q, %v", got, err)
	}
	if _, err := e.callTool(writer, "deferred_result", map[string]string{"id": id}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("second deferred_result = %v, want not found", err)
	}
	// The run was judged again and audited once, with the human's answer.
	var ran int
	for _, en := range e.entries(-1) {
		if en.Type == audit.TypeDecision && en.Decision == audit.Allowed && strings.HasSuffix(en.Action.Resource, "scratch/once.txt") {
			ran++
			if en.Proof.Approval != string(approval.AllowOnce) {
				t.Errorf("the resumed write's proof: %+v", en.Proof)
			}
		}
	}
	if ran != 1 {
		t.Errorf("%d allowing decisions for the resumed write, want 1", ran)
	}

	// A denied approval delivers the denial; nothing is written.
	denied := filepath.Join(e.ws, "scratch", "denied.txt")
	id2 := e.deferWrite(writer, "scratch/denied.txt")
	if _, err := e.core.Interceptor.Resolve(ctx, id2, approval.Answer{Decision: approval.Deny, By: "human", Reason: "not today"}); err != nil {
		t.Fatal(err)
	}
	got, err := e.callTool(writer, "deferred_result", map[string]string{"id": id2})
	if err == nil || !strings.Contains(err.Error(), "denied: approval "+id2+" was denied by human: not today") {
		t.Fatalf("deferred_result of a denied approval = %q, %v", got, err)
	}
	if _, err := os.Stat(denied); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the denied write ran: %v", err)
	}
}

// TestDeferredCallRegranted: an approved call that the capsule's grant no
// longer covers when it resumes does not run.
func TestDeferredCallRegranted(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	e.sess.Mode, e.sess.Asker = security.Safe, nil
	man := strings.ReplaceAll(hostileManifest, "{{net}}", "example.com")
	dir := e.capsuleDir("writer", man, hostileWasm)
	e.install(dir, capsulepkg.InstallOptions{})
	writer, _ := e.m.Capsule("writer")
	if err := os.MkdirAll(filepath.Join(e.ws, "scratch"), 0o755); err != nil {
		t.Fatal(err)
	}
	id := e.deferWrite(writer, "scratch/x.txt")
	// The installed manifest now declares no fs_write root (a narrower
	// grant needs no new install).
	inst := filepath.Join(e.home, "capsules", "writer", capsulepkg.ManifestFile)
	b, err := os.ReadFile(inst)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inst, []byte(strings.Replace(string(b), `fs_write = ["scratch"]`, "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Load(ctx, "writer"); err != nil {
		t.Fatal(err)
	}
	writer, _ = e.m.Capsule("writer")
	if _, err := e.core.Interceptor.Resolve(ctx, id, approval.Answer{Decision: approval.AllowOnce, By: "human"}); err != nil {
		t.Fatal(err)
	}
	got, err := e.callTool(writer, "deferred_result", map[string]string{"id": id})
	if err == nil || !strings.Contains(err.Error(), "fs_write") {
		t.Fatalf("deferred_result = %q, %v; want the grant's refusal", got, err)
	}
	if _, err := os.Stat(filepath.Join(e.ws, "scratch", "x.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the write ran outside the grant: %v", err)
	}
}

// TestDeferredRecordTampered: a recorded call changed to do something
// else than the approved action (another path) is refused and audited.
func TestDeferredRecordTampered(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	e.sess.Mode, e.sess.Asker = security.Safe, nil
	man := strings.ReplaceAll(hostileManifest, "{{net}}", "example.com")
	writer := e.install(e.capsuleDir("writer", man, hostileWasm), capsulepkg.InstallOptions{})
	if err := os.MkdirAll(filepath.Join(e.ws, "scratch"), 0o755); err != nil {
		t.Fatal(err)
	}
	id := e.deferWrite(writer, "scratch/approved.txt")
	raw, ok, err := e.m.kv.Get(ctx, capsulepkg.DeferredNS("writer"), id)
	if err != nil || !ok {
		t.Fatalf("no record: %v", err)
	}
	var rec deferredCall
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	rec.A = []byte("scratch/swapped.txt")
	raw, _ = json.Marshal(rec)
	if _, err := e.m.kv.Set(ctx, capsulepkg.DeferredNS("writer"), id, raw, maxDeferredBytes, maxDeferredCalls); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.Interceptor.Resolve(ctx, id, approval.Answer{Decision: approval.AllowOnce, By: "human"}); err != nil {
		t.Fatal(err)
	}
	seq := e.lastSeq()
	got, err := e.callTool(writer, "deferred_result", map[string]string{"id": id})
	if err == nil || !strings.Contains(err.Error(), "no longer matches the action approved") {
		t.Fatalf("deferred_result = %q, %v", got, err)
	}
	for _, f := range []string{"approved.txt", "swapped.txt"} {
		if _, err := os.Stat(filepath.Join(e.ws, "scratch", f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was written: %v", f, err)
		}
	}
	if e.denied(seq, "approved.txt", security.RuleDeferredChanged) == nil {
		t.Error("the refusal was not audited")
	}
	// The refusal used the approval up: it is no longer waiting to run.
	if d, err := e.core.DB.Deferred().GetDeferred(ctx, id); err != nil || d.Status == approval.Approved {
		t.Errorf("the refused approval is still %v (%v): it could run later", d.Status, err)
	}
}
