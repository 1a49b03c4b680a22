package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/store"
)

// bareEnv returns an Env over a fresh ASTRID_HOME. A command that would
// start a daemon fails instead: a test binary counts as built from the
// source, and would otherwise build astridd and leave it running.
func bareEnv(t *testing.T) (*Env, home.Dir, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	h := home.Dir(filepath.Join(t.TempDir(), "astrid"))
	noDaemon := filepath.Join(t.TempDir(), "no-astridd")
	var stdout, stderr bytes.Buffer
	env := &Env{
		Stdin:  strings.NewReader(""),
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string {
			switch k {
			case home.EnvVar:
				return h.Path()
			case DaemonExeVar:
				return noDaemon
			}
			return ""
		},
		Dir: t.TempDir(),
	}
	return env, h, &stdout, &stderr
}

// seedTokens issues a parent, its child and an unrelated token with the
// home's runtime key.
func seedTokens(t *testing.T, h home.Dir) (parent, child, other *capability.Token) {
	t.Helper()
	ctx := context.Background()
	if err := h.Ensure(); err != nil {
		t.Fatal(err)
	}
	k, _, err := keys.Dir(h.KeysDir()).LoadOrGenerate(keys.Runtime)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, h.StateDB(), store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := capability.New(ctx, capability.Options{Store: store.NewTokenStore(db), Trusted: keys.Trusted{k.ID(): k.Public()}, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	parent, _, err = svc.Issue(ctx, capability.Grant{Principal: "alice", Resource: "file:///home/alice/project/**",
		Permissions: capability.Read | capability.Write, Scope: capability.ScopeWorkspace, Binding: "/home/alice/project"})
	if err != nil {
		t.Fatal(err)
	}
	child, _, err = svc.Attenuate(ctx, parent.ID, capability.Grant{Resource: "file:///home/alice/project/src/**", Permissions: capability.Read},
		capability.Context{Workspace: "/home/alice/project"})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err = svc.Issue(ctx, capability.Grant{Principal: "alice", Resource: "exec://git status*",
		Permissions: capability.Execute, Scope: capability.ScopeSession, Binding: "s1", SingleUse: true})
	if err != nil {
		t.Fatal(err)
	}
	return parent, child, other
}

func run(t *testing.T, env *Env, stdout *bytes.Buffer, args ...string) (string, error) {
	t.Helper()
	stdout.Reset()
	err := Run(context.Background(), env, args)
	return stdout.String(), err
}

func TestTokensEmptyHome(t *testing.T) {
	env, h, stdout, _ := bareEnv(t)
	out, err := run(t, env, stdout, "tokens", "list")
	if err != nil || strings.TrimSpace(out) != "no tokens" {
		t.Errorf("list = %q, %v", out, err)
	}
	out, err = run(t, env, stdout, "tokens", "list", "--format", "json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("list --format json = %q, %v", out, err)
	}
	if _, err := run(t, env, stdout, "tokens", "show", strings.Repeat("ab", 16)); err == nil {
		t.Error("show on an empty home succeeded")
	}
	if _, err := os.Lstat(h.StateDB()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("list and show created the state database (%v)", err)
	}
}

func TestTokensListShowRevoke(t *testing.T) {
	env, h, stdout, _ := bareEnv(t)
	parent, child, other := seedTokens(t, h)

	out, err := run(t, env, stdout, "tokens", "list", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var views []api.TokenInfo
	if err := json.Unmarshal([]byte(out), &views); err != nil {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	ids := func(vs []api.TokenInfo) []string {
		var s []string
		for _, v := range vs {
			s = append(s, v.ID+":"+v.Status)
		}
		return s
	}
	if diff := cmp.Diff([]string{parent.ID.String() + ":active", child.ID.String() + ":active", other.ID.String() + ":active"}, ids(views)); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if views[1].Parent != parent.ID.String() || !cmp.Equal(views[1].Permissions, []string{"read"}) {
		t.Errorf("child view = %+v", views[1])
	}

	out, err = run(t, env, stdout, "tokens", "list")
	if err != nil || !strings.Contains(out, "exec://git status*") || !strings.Contains(out, "session:s1 (once)") {
		t.Errorf("list pretty = %q, %v", out, err)
	}

	out, err = run(t, env, stdout, "tokens", "show", child.ID.String(), "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v api.TokenInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Verified == nil || !*v.Verified || v.VerifyError != "" {
		t.Errorf("show child: verified=%v error=%q", v.Verified, v.VerifyError)
	}

	// Revocation goes through a daemon: it audits it.
	te := &testEnv{tmp: t.TempDir(), vars: map[string]string{home.EnvVar: h.Path()}}
	serveTestDaemon(t, te, nil)
	env.Getenv = func(k string) string { return te.vars[k] }
	out, err = run(t, env, stdout, "tokens", "revoke", parent.ID.String(), "--reason", "project closed")
	if err != nil || !strings.Contains(out, "and 1 descendant") {
		t.Errorf("revoke = %q, %v", out, err)
	}
	out, err = run(t, env, stdout, "tokens", "revoke", parent.ID.String())
	if err != nil || !strings.Contains(out, "already revoked") {
		t.Errorf("second revoke = %q, %v", out, err)
	}

	out, err = run(t, env, stdout, "tokens", "show", child.ID.String())
	if err != nil || !strings.Contains(out, "no: capability token "+child.ID.String()+": token revoked") {
		t.Errorf("show revoked child = %q, %v", out, err)
	}

	out, err = run(t, env, stdout, "tokens", "list")
	if err != nil || strings.Contains(out, parent.ID.String()) || !strings.Contains(out, other.ID.String()) {
		t.Errorf("list after revoke = %q, %v", out, err)
	}
	out, err = run(t, env, stdout, "tokens", "list", "--all", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	views = nil
	if err := json.Unmarshal([]byte(out), &views); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{parent.ID.String() + ":revoked", child.ID.String() + ":revoked", other.ID.String() + ":active"}, ids(views)); diff != "" {
		t.Errorf("list --all (-want +got):\n%s", diff)
	}
	if views[0].RevokeReason != "project closed" {
		t.Errorf("reason = %q", views[0].RevokeReason)
	}
	out, err = run(t, env, stdout, "--format", "json", "audit", "list")
	if err != nil || !strings.Contains(out, "capability_revoke") || !strings.Contains(out, "token://"+parent.ID.String()) {
		t.Errorf("the revocation is not in the audit log: %v\n%s", err, out)
	}
}

func TestTokensShowWithOtherKey(t *testing.T) {
	env, h, stdout, _ := bareEnv(t)
	_, _, other := seedTokens(t, h)
	// Replace the runtime key: tokens it signed no longer verify.
	if _, err := keys.Dir(h.KeysDir()).Generate(keys.Runtime, true); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, env, stdout, "tokens", "show", other.ID.String())
	if err != nil || !strings.Contains(out, "issuer key is not trusted") {
		t.Errorf("show = %q, %v", out, err)
	}
}

func TestTokensBadInput(t *testing.T) {
	env, h, stdout, _ := bareEnv(t)
	seedTokens(t, h)
	// Revoking goes through a daemon, which refuses an unknown token.
	te := &testEnv{tmp: t.TempDir(), vars: map[string]string{home.EnvVar: h.Path()}}
	serveTestDaemon(t, te, nil)
	env.Getenv = func(k string) string { return te.vars[k] }
	for _, args := range [][]string{
		{"tokens", "show", "nothex"},
		{"tokens", "show", strings.Repeat("cd", 16)},
		{"tokens", "revoke", strings.Repeat("cd", 16)},
		{"tokens", "revoke"},
	} {
		if out, err := run(t, env, stdout, args...); err == nil {
			t.Errorf("%v succeeded: %q", args, out)
		}
	}
}
