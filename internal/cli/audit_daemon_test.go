package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/keys"
)

// TestAuditViaDaemon runs every audit subcommand against a running daemon.
// The runtime key file is removed once the daemon has loaded it: reading
// the store directly would then fail to check signatures (exit 2), so
// every success here came from the daemon. Exit codes stay those of the
// direct path: 1 for a log found altered or a missing entry, 2 when the
// log cannot be checked.
func TestAuditViaDaemon(t *testing.T) {
	te := newTestEnv(t)
	h := home.Dir(te.vars["ASTRID_HOME"])
	if err := h.Ensure(); err != nil {
		t.Fatal(err)
	}
	k, err := keys.Dir(h.KeysDir()).Generate(keys.Runtime, false)
	if err != nil {
		t.Fatal(err)
	}
	appendEntries(t, h.StateDB(), k, 9)
	serveTestDaemon(t, te, func(context.Context, daemon.BackendDeps) (daemon.Backend, error) {
		return daemon.Unavailable{Reason: "test"}, nil
	})
	if err := os.Remove(keys.Dir(h.KeysDir()).File(keys.Runtime)); err != nil {
		t.Fatal(err)
	}

	out, stderr, code := te.run(t, "audit", "list")
	if code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 10 || !strings.Contains(out, "success (of 0)") {
		t.Fatalf("list: %d %q %q", code, out, stderr)
	}
	out, _, code = te.run(t, "--format", "json", "audit", "list", "--decision", "denied", "--limit", "0")
	var got []entryJSON
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 3 {
		t.Fatalf("json list: %d %s", code, out)
	}
	for _, e := range got {
		if e.Decision != "denied" || e.Kind != "bash" || e.Prev == "" || e.ArgsHash == "" {
			t.Errorf("denied filter returned %+v", e)
		}
	}
	if _, stderr, code := te.run(t, "audit", "list", "--decision", "maybe"); code != 1 || !strings.Contains(stderr, "--decision") {
		t.Errorf("bad --decision: %d %q", code, stderr)
	}

	out, stderr, code = te.run(t, "audit", "show", "4")
	for _, want := range []string{"seq:", "outcome", "decision entry:", "3 (", "proven in the tree of size 9"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show lacks %q: %d %q %q", want, code, out, stderr)
		}
	}
	if _, stderr, code := te.run(t, "audit", "show", "99"); code != 1 || !strings.Contains(stderr, "no entry 99") {
		t.Errorf("show 99: %d %q", code, stderr)
	}

	out, stderr, code = te.run(t, "audit", "stats")
	if code != 0 || !strings.Contains(out, "entries:     9") || !strings.Contains(out, "tree:        size 9") || !strings.Contains(out, "write_file") {
		t.Errorf("stats: %d %q %q", code, out, stderr)
	}
	out, _, code = te.run(t, "audit", "checkpoint")
	if code != 0 || !strings.HasPrefix(out, "astrid/"+k.ID()+"\n9\n") {
		t.Fatalf("checkpoint: %d %q", code, out)
	}
	kept := filepath.Join(t.TempDir(), "kept.note")
	if err := os.WriteFile(kept, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = te.run(t, "audit", "verify", "--checkpoint", kept)
	if code != 0 || !strings.HasPrefix(out, "ok: 9 entries, tree hash ") || !strings.Contains(out, "extends the kept checkpoint of size 9") {
		t.Errorf("verify: %d %q %q", code, out, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.note")
	os.WriteFile(bad, []byte("not a note"), 0o600)
	if _, stderr, code := te.run(t, "audit", "verify", "--checkpoint", bad); code != 2 || !strings.Contains(stderr, "kept checkpoint") {
		t.Errorf("malformed kept checkpoint: %d %q", code, stderr)
	}

	// Altered under the daemon: an index column, then an entry's content.
	tamper(t, string(h), `UPDATE audit_entries SET session = 's1' WHERE seq = 3`)
	if _, stderr, code := te.run(t, "audit", "list"); code != 1 || !strings.Contains(stderr, "entry 3") {
		t.Errorf("tampered list: %d %q", code, stderr)
	}
	tamper(t, string(h), `UPDATE audit_entries SET session = 's2' WHERE seq = 3`, flipLastByte(t, string(h), 5))
	out, stderr, code = te.run(t, "--format", "json", "audit", "verify")
	var rep struct {
		OK  bool  `json:"ok"`
		Seq int64 `json:"seq"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.OK || rep.Seq != 5 || !strings.Contains(stderr, "entry 5") {
		t.Errorf("verify of an altered log: %d %q %q", code, out, stderr)
	}
}
