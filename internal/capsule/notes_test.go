package capsule

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
)

// notesDir copies the example capsule with the freshly built module and
// its hash in the manifest.
func (e *env) notesDir() string {
	e.t.Helper()
	b, err := os.ReadFile("../../examples/notes/Capsule.toml")
	if err != nil {
		e.t.Fatal(err)
	}
	man := strings.Replace(string(b), `hash = ""`, `hash = "{{hash}}"`, 1)
	return e.capsuleDir("notes", man, notesWasm)
}

func TestNotesCapsule(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	e.install(e.notesDir(), capsulepkg.InstallOptions{By: "test"})

	// The tools are in the registry like built-in ones.
	var names []string
	for _, s := range e.reg.Specs() {
		if strings.HasPrefix(s.Name, "note_") {
			names = append(names, s.Name)
		}
	}
	if strings.Join(names, ",") != "note_add,note_list,note_read" {
		t.Fatalf("capsule tools = %v", names)
	}

	seq := e.lastSeq()
	if got := e.ok("note_add", map[string]string{"title": "Buy milk", "text": "two litres"}); got != "saved notes/buy-milk.md" {
		t.Fatalf("note_add = %q", got)
	}
	b, err := os.ReadFile(filepath.Join(e.ws, "notes", "buy-milk.md"))
	if err != nil || string(b) != "# Buy milk\n\ntwo litres\n" {
		t.Fatalf("note file: %q, %v", b, err)
	}
	// The tool call and every host call it made are in the audit log.
	var kinds []string
	for _, en := range e.entries(seq) {
		if en.Type == audit.TypeDecision {
			kinds = append(kinds, en.Action.Kind+" "+en.Action.Resource+" "+en.Decision.String())
		}
	}
	want := []string{
		"capsule capsule://notes/tool.note_add allowed",
		"file_write file://" + e.ws + "/notes allowed",
		"file_write file://" + e.ws + "/notes/buy-milk.md allowed",
		"capsule capsule://notes/kv allowed",
	}
	if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit decisions:\n%s\nwant:\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}

	e.ok("note_add", map[string]string{"title": "Call Bob", "text": "about the boat"})
	if got := e.ok("note_list", map[string]any{}); got != "buy-milk: Buy milk\ncall-bob: Call Bob\n" {
		t.Errorf("note_list = %q", got)
	}
	if got := e.ok("note_read", map[string]string{"slug": "call-bob"}); !strings.Contains(got, "about the boat") {
		t.Errorf("note_read = %q", got)
	}
	// Errors from the capsule reach the model as tool errors.
	if got := e.fail("note_read", map[string]string{"slug": "../../etc/passwd"}); !strings.Contains(got, "is not a note name") {
		t.Errorf("bad slug: %q", got)
	}
	if got := e.fail("note_add", map[string]string{"title": "x", "text": "y", "extra": "z"}); !strings.Contains(got, "unknown field") {
		t.Errorf("extra field: %q", got)
	}

	// The cron job runs in its own session, audited, with the capsule's
	// grant; it reads and writes kv.
	seq = e.lastSeq()
	var ran []string // OnCron: the runtime publishes capsule.cron_ran from it
	e.m.o.OnCron = func(id, job string, err error) { ran = append(ran, fmt.Sprint(id, " ", job, " ", err)) }
	now := time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC)
	e.m.Tick(ctx, now)                     // first sight: schedules 10:01
	e.m.Tick(ctx, now.Add(10*time.Second)) // not due
	if v, ok, _ := e.m.kv.Get(ctx, "notes", "stats:runs"); ok {
		t.Fatalf("cron ran early: %s", v)
	}
	e.m.Tick(ctx, now.Add(31*time.Second)) // 10:01:01: due
	e.m.Tick(ctx, now.Add(35*time.Second)) // not again
	if v, _, _ := e.m.kv.Get(ctx, "notes", "stats:runs"); string(v) != "1" {
		t.Fatalf("stats:runs = %q after one due tick", v)
	}
	if v, _, _ := e.m.kv.Get(ctx, "notes", "stats:count"); string(v) != "2" {
		t.Errorf("stats:count = %q", v)
	}
	var cron []string
	for _, en := range e.entries(seq) {
		if en.Action.Resource == "capsule://notes/cron.tally" {
			cron = append(cron, en.Type.String()+" "+en.Decision.String()+en.Status.String()+" "+en.Session)
		}
	}
	if strings.Join(cron, "|") != "decision allowed capsule:notes:cron|outcome success capsule:notes:cron" {
		t.Errorf("cron audit: %v", cron)
	}
	if !slices.Equal(ran, []string{"notes tally <nil>"}) {
		t.Errorf("OnCron calls: %q", ran)
	}

	// kv persists across unload and load; the tools go and come back.
	if err := e.m.Unload(ctx, "notes"); err != nil {
		t.Fatal(err)
	}
	if res := e.run("note_list", map[string]any{}); !res.IsError || !strings.Contains(res.Text, "unknown tool") {
		t.Errorf("after unload: %+v", res)
	}
	if _, err := e.m.Load(ctx, "notes"); err != nil {
		t.Fatal(err)
	}
	if got := e.ok("note_list", map[string]any{}); !strings.Contains(got, "call-bob") {
		t.Errorf("after reload: %q", got)
	}
	if l := e.m.List(); len(l) != 1 || l[0].State != "loaded" || l[0].Engine != "wasm" || l[0].Version != "0.1.0" {
		t.Errorf("List = %+v", l)
	}
}

func TestRescanAndDaemonAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	var events []string
	e.m.o.Notify = func(t api.EventType, in api.CapsuleInfo) { events = append(events, string(t)+" "+in.ID+" "+in.State) }

	// Installed by another process (the CLI) while the daemon runs: the
	// next rescan loads it.
	if _, err := e.m.Install(ctx, e.notesDir(), capsulepkg.InstallOptions{Approve: yes}); err != nil {
		t.Fatal(err)
	}
	e.m.Rescan(ctx)
	if r := e.m.ListCapsules(); len(r.Capsules) != 1 || r.Capsules[0].State != "loaded" {
		t.Fatalf("after rescan: %+v", r)
	}
	e.m.Rescan(ctx) // nothing changed: no reload
	if strings.Join(events, "|") != "capsule_loaded notes loaded" {
		t.Errorf("events = %v", events)
	}

	// A changed manifest is reloaded.
	man := filepath.Join(e.home, "capsules", "notes", capsulepkg.ManifestFile)
	b, _ := os.ReadFile(man)
	os.WriteFile(man, []byte(strings.Replace(string(b), `version = "0.1.0"`, `version = "0.1.1"`, 1)), 0o600)
	e.m.Rescan(ctx)
	if r := e.m.ListCapsules(); r.Capsules[0].Version != "0.1.1" {
		t.Errorf("not reloaded: %+v", r)
	}
	// A tampered module is refused; the verified one keeps running, and
	// the failure is not retried until the files change again.
	wasm := filepath.Join(e.home, "capsules", "notes", "notes.wasm")
	w, _ := os.ReadFile(wasm)
	w[len(w)/2] ^= 1
	os.WriteFile(wasm, w, 0o600)
	e.m.Rescan(ctx)
	e.m.Rescan(ctx)
	if r := e.m.ListCapsules(); r.Capsules[0].State != "loaded" || !strings.Contains(r.Capsules[0].Error, "hash does not match") {
		t.Errorf("after tampering: %+v", r)
	}
	if n := strings.Count(strings.Join(events, "|"), "capsule_failed"); n != 1 {
		t.Errorf("failed %d times: %v", n, events)
	}
	e.ok("note_list", map[string]any{})

	// The daemon API by path: only installed capsules.
	if _, err := e.m.LoadCapsule(ctx, api.LoadCapsuleParams{Path: e.dir}); !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("load by a foreign path: %v", err)
	}
	w[len(w)/2] ^= 1
	os.WriteFile(wasm, w, 0o600)
	if in, err := e.m.LoadCapsule(ctx, api.LoadCapsuleParams{Path: filepath.Join(e.home, "capsules", "notes")}); err != nil || in.State != "loaded" {
		t.Errorf("load by path: %+v %v", in, err)
	}
	if _, err := e.m.UnloadCapsule(ctx, api.UnloadCapsuleParams{ID: "notes"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.UnloadCapsule(ctx, api.UnloadCapsuleParams{ID: "notes"}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("second unload: %v", err)
	}
	if err := e.m.LoadInstalled(ctx); err != nil {
		t.Fatal(err)
	}
	// Removed on disk: the next rescan unloads it.
	os.Remove(filepath.Join(e.home, "capsules", "notes.grant.json"))
	e.m.Rescan(ctx)
	if r := e.m.ListCapsules(); len(r.Capsules) != 0 {
		t.Errorf("after removal: %+v", r)
	}
	if !strings.HasSuffix(strings.Join(events, "|"), "capsule_unloaded notes unloaded") {
		t.Errorf("events = %v", events)
	}
}
