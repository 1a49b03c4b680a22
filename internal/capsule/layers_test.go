package capsule

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/tools"
)

const vaultManifest = `[package]
name = "{{name}}"
version = "1.0.0"

[component]
entrypoint = "{{name}}.wasm"
hash = "{{hash}}"

[env.TOKEN]
type = "secret"

[env.REGION]
type = "string"
default = "eu"

[[tool]]
name = "config"
description = "read a config value"
`

func TestSecretsSealedAndTamperRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	seq := e.lastSeq()
	const secret = "s3cret-token-value"
	e.install(e.capsuleDir("vault", vaultManifest, hostileWasm), capsulepkg.InstallOptions{Env: map[string]string{"TOKEN": secret}})
	// The capsule reads it through get_config.
	if got := e.ok("config", map[string]string{"name": "TOKEN"}); got != secret {
		t.Fatalf("config TOKEN = %q", got)
	}
	if got := e.ok("config", map[string]string{"name": "REGION"}); got != "eu" {
		t.Fatalf("config REGION = %q", got)
	}
	// Not on disk in clear, not in the audit log.
	grant := filepath.Join(e.home, "capsules", "vault.grant.json")
	b, err := os.ReadFile(grant)
	if err != nil || bytes.Contains(b, []byte(secret)) {
		t.Fatalf("grant file holds the secret: %s %v", b, err)
	}
	for _, en := range e.entries(seq) {
		raw, _ := json.Marshal(en)
		if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString([]byte(secret)))) {
			t.Errorf("audit entry %d holds the secret", en.Seq)
		}
	}
	info, err := e.m.Info("vault")
	if err != nil || info.Grant.Env["TOKEN"] != "" || !strings.HasPrefix(info.Grant.Secrets["TOKEN"], "v1:") {
		t.Errorf("Info: %+v %v", info, err)
	}

	// A tampered ciphertext: the capsule does not load, with a clear
	// error, and the refusal is audited.
	var g capsulepkg.Grant
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(g.Secrets["TOKEN"], "v1:"))
	raw[20] ^= 0x40
	g.Secrets["TOKEN"] = "v1:" + base64.StdEncoding.EncodeToString(raw)
	nb, _ := json.Marshal(g)
	if err := os.WriteFile(grant, nb, 0o600); err != nil {
		t.Fatal(err)
	}
	// (A reload that fails keeps the running version; a fresh load is
	// what a restart does.)
	if err := e.m.Unload(ctx, "vault"); err != nil {
		t.Fatal(err)
	}
	seq = e.lastSeq()
	_, err = e.m.Load(ctx, "vault")
	if !errors.Is(err, capsulepkg.ErrSecretTampered) || !strings.Contains(err.Error(), "secret TOKEN of capsule vault") {
		t.Fatalf("tampered load: %v", err)
	}
	if _, ok := e.m.Capsule("vault"); ok {
		t.Error("the capsule with a tampered secret stayed loaded")
	}
	if e.denied(seq, "capsule://vault/load", RuleHash) == nil {
		t.Error("the refused load is not audited")
	}
}

// scopedSink is a tools.Registry per workspace, like the runtime's.
type scopedSink struct {
	*tools.Registry
	scoped map[string]string
}

func (s *scopedSink) ReplaceIn(ws string, old []string, new []tools.Tool) error {
	for _, t := range new {
		s.scoped[t.Spec().Name] = ws
	}
	return s.Replace(old, new)
}

func TestWorkspaceCapsules(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	sink := &scopedSink{Registry: e.reg, scoped: map[string]string{}}
	e.m.o.Tools = sink
	st := e.m.WorkspaceStore(e.ws)
	in, err := st.Install(ctx, e.notesDir(), capsulepkg.InstallOptions{Approve: yes, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(in.ID, "notes.ws-") || in.Layer != "workspace" {
		t.Fatalf("installed %+v", in)
	}
	// Not trusted: nothing loads.
	if err := e.m.LoadWorkspace(ctx, e.ws); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("untrusted: %v", err)
	}
	if _, ok := e.m.Capsule(in.ID); ok {
		t.Fatal("an untrusted workspace's capsule loaded")
	}
	trust := hooks.NewTrust(e.home)
	e.m.o.Trust = trust
	if _, err := trust.Trust(e.ws); err != nil {
		t.Fatal(err)
	}
	if err := e.m.LoadWorkspace(ctx, e.ws); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.m.Capsule(in.ID); !ok || sink.scoped["note_add"] != e.ws {
		t.Fatalf("not loaded, or its tools not scoped: %v", sink.scoped)
	}
	all, err := e.m.InstalledCapsules()
	if err != nil || len(all) != 1 || all[0].Layer != "workspace" {
		t.Errorf("InstalledCapsules: %+v %v", all, err)
	}
	if got := e.ok("note_add", map[string]string{"title": "ws", "text": "from the workspace"}); !strings.Contains(got, "ws") {
		t.Errorf("note_add: %q", got)
	}
	// A session of another workspace cannot use it.
	other := e.sess
	other.Workspace = e.outside
	if res, err := e.reg.Run(ctx, e.core.Interceptor, other, "note_list", json.RawMessage(`{}`)); err != nil || !res.IsError || !strings.Contains(res.Text, "belongs to workspace") {
		t.Errorf("other workspace: %+v %v", res, err)
	}

	// The repository swaps the module and re-pins the manifest: the
	// install grant pinned the old hash, so it no longer loads.
	dir := st.CapsuleDir("notes")
	hb, err := os.ReadFile(hostileWasm)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "notes.wasm"), hb, 0o644)
	man, _ := os.ReadFile(filepath.Join(dir, capsulepkg.ManifestFile))
	newMan, err := capsulepkg.SetManifestHash("Capsule.toml", man, capsulepkg.Hash(hb))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, capsulepkg.ManifestFile), newMan, 0o644)
	seq := e.lastSeq()
	if _, err := e.m.Load(ctx, in.ID); !errors.Is(err, capsulepkg.ErrHashMismatch) || !strings.Contains(err.Error(), "install it again") {
		t.Fatalf("swapped module: %v", err)
	}
	if e.denied(seq, "capsule://"+in.ID+"/load", RuleHash) == nil {
		t.Error("the refused load is not audited")
	}

	// Trust revoked: the next rescan unloads what is loaded.
	os.WriteFile(filepath.Join(dir, "notes.wasm"), mustRead(t, notesWasm), 0o644)
	os.WriteFile(filepath.Join(dir, capsulepkg.ManifestFile), man, 0o644)
	if _, err := e.m.Load(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if err := trust.Revoke(e.ws); err != nil {
		t.Fatal(err)
	}
	e.m.Rescan(ctx)
	if _, ok := e.m.Capsule(in.ID); ok {
		t.Error("still loaded after trust was revoked")
	}
	if _, err := e.m.Load(ctx, in.ID); !errors.Is(err, ErrUntrusted) {
		t.Errorf("load after revoke: %v", err)
	}
	if err := e.m.Remove(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("files left: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
