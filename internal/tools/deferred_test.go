package tools

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
)

// deferCall runs a call with nobody to ask and returns the id of the
// deferred approval it made, approved by a human.
func (e *env) deferCall(name string, args any, approve bool) string {
	e.t.Helper()
	ctx := context.Background()
	sess := e.sess
	sess.Asker = nil
	raw, _ := json.Marshal(args)
	res, err := e.reg.Run(ctx, e.core.Interceptor, sess, name, raw)
	if err != nil || !res.IsError || !res.Refused {
		e.t.Fatalf("%s with nobody to ask: %+v, %v; want a deferral", name, res, err)
	}
	ds, err := e.core.DB.Deferred().ListDeferred(ctx, approval.Pending)
	if err != nil || len(ds) == 0 {
		e.t.Fatalf("no pending approval: %v", err)
	}
	d := ds[len(ds)-1]
	var a security.Action
	if err := json.Unmarshal(d.Action, &a); err != nil || a.Tool != name {
		e.t.Fatalf("deferred action %+v (%v): the tool is not recorded", a, err)
	}
	dec := approval.Deny
	if approve {
		dec = approval.AllowOnce
	}
	if _, err := e.core.Interceptor.Resolve(ctx, d.ID, approval.Answer{Decision: dec, By: "tester"}); err != nil {
		e.t.Fatal(err)
	}
	return d.ID
}

func (e *env) result(id string) approval.Deferred {
	e.t.Helper()
	d, err := e.core.DB.Deferred().GetDeferred(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// TestRunDeferred: an approved deferred call runs once, when asked to by
// any number of racing runners, from the approved arguments.
func TestRunDeferred(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	target := filepath.Join(e.outside, "later.txt")
	id := e.deferCall("write_file", map[string]any{"file_path": target, "content": "approved"}, true)
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the deferred write ran before anyone ran it")
	}
	var wg sync.WaitGroup
	var ran, lost atomic.Int32
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.reg.RunDeferred(ctx, e.core.Interceptor, e.sess, id)
			switch {
			case errors.Is(err, approval.ErrAlreadyResolved):
				lost.Add(1)
			case err != nil || res.IsError:
				t.Errorf("run: %+v %v", res, err)
			default:
				ran.Add(1)
			}
		}()
	}
	wg.Wait()
	if ran.Load() != 1 || lost.Load() != 5 {
		t.Fatalf("ran %d times, %d runners lost the claim", ran.Load(), lost.Load())
	}
	if got := e.read(target); got != "approved" {
		t.Errorf("file = %q", got)
	}
	if d := e.result(id); d.Status != approval.Done || d.Result != "done" {
		t.Errorf("record %s %q", d.Status, d.Result)
	}
	// A denied one is not run.
	denied := e.deferCall("write_file", map[string]any{"file_path": filepath.Join(e.outside, "no.txt"), "content": "x"}, false)
	if _, err := e.reg.RunDeferred(ctx, e.core.Interceptor, e.sess, denied); !errors.Is(err, approval.ErrAlreadyResolved) {
		t.Fatalf("running a denied call: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.outside, "no.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a denied write ran")
	}
}

// TestRunDeferredRefusesWhatChanged: a call that would now do something
// else than what was approved (a symlink re-pointed), whose tool is gone,
// or that is run in another session is refused, audited, and never runs.
func TestRunDeferredRefusesWhatChanged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := filepath.Join(e.outside, "a"), filepath.Join(e.outside, "b")
	for _, d := range []string{a, b} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(e.ws, "out")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	moved := e.deferCall("write_file", map[string]any{"file_path": "out/f.txt", "content": "x"}, true)
	os.Remove(link)
	if err := os.Symlink(b, link); err != nil {
		t.Fatal(err)
	}
	res, err := e.reg.RunDeferred(ctx, e.core.Interceptor, e.sess, moved)
	if err != nil || !res.IsError || !res.Refused {
		t.Fatalf("re-pointed write: %+v %v", res, err)
	}
	mustContain(t, res.Text, "write_file was not run: denied by approval (deferred_changed): the call would now be file_write file://"+b+"/f.txt, not the approved file_write file://"+a+"/f.txt")
	for _, d := range []string{a, b} {
		if _, err := os.Stat(filepath.Join(d, "f.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused write ran in %s", d)
		}
	}
	if d := e.result(moved); d.Status != approval.Done || d.Result == "done" {
		t.Errorf("record %s %q", d.Status, d.Result)
	}
	if _, err := e.reg.RunDeferred(ctx, e.core.Interceptor, e.sess, moved); !errors.Is(err, approval.ErrAlreadyResolved) {
		t.Errorf("a refused call could be run again: %v", err)
	}

	other := e.deferCall("write_file", map[string]any{"file_path": filepath.Join(e.outside, "o.txt"), "content": "x"}, true)
	s2 := e.sess
	s2.ID = "s2"
	res, err = e.reg.RunDeferred(ctx, e.core.Interceptor, s2, other)
	if err != nil || !res.Refused {
		t.Fatalf("another session's call: %+v %v", res, err)
	}
	mustContain(t, res.Text, "another session or workspace")

	gone := e.deferCall("write_file", map[string]any{"file_path": filepath.Join(e.outside, "g.txt"), "content": "x"}, true)
	e.reg.Unregister("write_file")
	res, err = e.reg.RunDeferred(ctx, e.core.Interceptor, e.sess, gone)
	if err != nil || !res.Refused {
		t.Fatalf("a gone tool: %+v %v", res, err)
	}
	mustContain(t, res.Text, `the tool "write_file" is no longer available`)
	for _, f := range []string{"o.txt", "g.txt"} {
		if _, err := os.Stat(filepath.Join(e.outside, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("refused %s was written", f)
		}
	}
	// Each refusal is a denial in the audit log.
	stored, err := e.core.DB.Audit().List(ctx, store.AuditFilter{Decision: "denied"})
	if err != nil {
		t.Fatal(err)
	}
	refusals := 0
	for _, se := range stored {
		ae, err := audit.Decode(se.Data)
		if err != nil {
			t.Fatal(err)
		}
		if ae.Proof.Rule == security.RuleDeferredChanged {
			refusals++
		}
	}
	if refusals != 3 {
		t.Errorf("%d refusals audited, want 3", refusals)
	}
}
