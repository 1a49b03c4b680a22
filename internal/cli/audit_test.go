package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/store"
)

// runCLI runs one astrid command line against the state directory dir and
// returns its output and exit code.
func runCLI(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Dir: dir,
		Getenv: func(k string) string {
			if k == home.EnvVar {
				return dir
			}
			return ""
		}}
	code = ExitCode(env, Run(context.Background(), env, args))
	return out.String(), errb.String(), code
}

// auditHome creates a state directory whose audit log holds n entries:
// per round, an allowed decision and its outcome, then a denied decision,
// alternating sessions s1 and s2. It returns the directory.
func auditHome(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "astrid")
	h := home.Dir(dir)
	if err := h.Ensure(); err != nil {
		t.Fatal(err)
	}
	k, err := keys.Dir(h.KeysDir()).Generate(keys.Runtime, false)
	if err != nil {
		t.Fatal(err)
	}
	appendEntries(t, h.StateDB(), k, n)
	return dir
}

func appendEntries(t *testing.T, dbPath string, k *keys.Key, n int) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dbPath, store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, err := audit.Open(ctx, db.Audit(), k, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < n; {
		sess := fmt.Sprintf("s%d", 1+i%2)
		d := audit.Entry{Type: audit.TypeDecision, Session: sess, Principal: "user:alice", Frontend: "cli",
			Action:   audit.Action{Kind: "write_file", Resource: "file:///w/f.txt", ArgsHash: audit.HashBytes([]byte("args"))},
			Decision: audit.Allowed, Proof: audit.Proof{Rule: "workspace"}}
		if i%3 == 2 {
			d.Decision, d.Action.Kind, d.Action.Resource, d.Text = audit.Denied, "bash", "exec://sudo ls", "blocked command sudo"
		}
		r, err := l.Append(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		i++
		if d.Decision == audit.Allowed && i < n {
			o := audit.Entry{Type: audit.TypeOutcome, Session: sess, Frontend: "cli", Ref: audit.Ref{Seq: r.Seq, Hash: r.Hash},
				Status: audit.Success, OutputHash: audit.HashBytes([]byte("ok")), Text: "wrote 3 bytes"}
			if _, err := l.Append(ctx, o); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
}

// tamper runs SQL statements on the state database directly, as an
// attacker with write access to the file would.
func tamper(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// flipLastByte returns a statement that stores entry seq's data with its
// last byte changed.
func flipLastByte(t *testing.T, dir string, seq int) string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var data []byte
	if err := db.QueryRow(`SELECT data FROM audit_entries WHERE seq = ?`, seq).Scan(&data); err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0x01
	return fmt.Sprintf(`UPDATE audit_entries SET data = X'%x' WHERE seq = %d`, data, seq)
}

func keepCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	out, errs, code := runCLI(t, dir, "audit", "checkpoint")
	if code != 0 {
		t.Fatalf("audit checkpoint: %d %s", code, errs)
	}
	p := filepath.Join(t.TempDir(), "kept.note")
	if err := os.WriteFile(p, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuditVerifyIntact(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after every other cleanup
	dir := auditHome(t, 12)
	kept := keepCheckpoint(t, dir)
	appendEntries(t, filepath.Join(dir, "state.db"), mustRuntimeKey(t, dir), 5)
	out, errs, code := runCLI(t, dir, "audit", "verify", "--checkpoint", kept)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}
	if !strings.HasPrefix(out, "ok: 17 entries, tree hash ") || !strings.Contains(out, "extends the kept checkpoint of size 12") {
		t.Errorf("verify output:\n%s", out)
	}
	out, _, code = runCLI(t, dir, "--format", "json", "audit", "verify")
	var rep struct {
		OK      bool  `json:"ok"`
		Entries int64 `json:"entries"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || rep.Entries != 17 {
		t.Errorf("json verify: %d %s", code, out)
	}
}

func mustRuntimeKey(t *testing.T, dir string) *keys.Key {
	t.Helper()
	k, err := keys.Dir(home.Dir(dir).KeysDir()).Load(keys.Runtime)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAuditVerifyCatchesTampering alters the real SQLite file in every way
// the issue lists; each must make `audit verify` exit 1 and name the first
// bad entry.
func TestAuditVerifyCatchesTampering(t *testing.T) {
	const n = 12
	tests := []struct {
		name string
		// kept: verify with the checkpoint kept before tampering.
		kept   bool
		stmts  func(t *testing.T, dir string) []string
		seq    string // "entry N:" expected in the message
		reason string
	}{
		{name: "one byte of an entry", seq: "entry 4:", reason: "stored tree hash 0",
			stmts: func(t *testing.T, dir string) []string {
				// Flip the last byte of entry 4's data (the outcome text).
				return []string{flipLastByte(t, dir, 4)}
			}},
		{name: "a stored hash", seq: "entry 7:", reason: "stored tree hash",
			stmts: func(*testing.T, string) []string {
				return []string{`UPDATE audit_entries SET hashes = zeroblob(length(hashes)) WHERE seq = 7`}
			}},
		{name: "delete an entry", seq: "entry 5:", reason: "missing",
			stmts: func(*testing.T, string) []string { return []string{`DELETE FROM audit_entries WHERE seq = 5`} }},
		{name: "swap two entries", seq: "entry 2:", reason: "moved, swapped or reordered",
			stmts: func(*testing.T, string) []string {
				return []string{
					`UPDATE audit_entries SET seq = 1000 WHERE seq = 2`,
					`UPDATE audit_entries SET seq = 2 WHERE seq = 8`,
					`UPDATE audit_entries SET seq = 8 WHERE seq = 1000`,
				}
			}},
		{name: "reorder", seq: "entry 1:", reason: "moved, swapped or reordered",
			stmts: func(*testing.T, string) []string {
				// Rotate entries 1, 2, 3 to 2, 3, 1 and patch the index.
				return []string{
					`UPDATE audit_entries SET seq = seq + 100 WHERE seq IN (1, 2, 3)`,
					`UPDATE audit_entries SET seq = 2 WHERE seq = 101`,
					`UPDATE audit_entries SET seq = 3 WHERE seq = 102`,
					`UPDATE audit_entries SET seq = 1 WHERE seq = 103`,
				}
			}},
		{name: "relabel a denial in the index", seq: "entry 2:", reason: "index columns",
			stmts: func(*testing.T, string) []string {
				return []string{`UPDATE audit_entries SET decision = 'allowed' WHERE seq = 2`}
			}},
		{name: "drop the last entries", seq: "entry 9:", reason: "were removed",
			stmts: func(*testing.T, string) []string { return []string{`DELETE FROM audit_entries WHERE seq >= 9`} }},
		{name: "drop the last entries and their checkpoints", kept: true, seq: "entry 9:", reason: "truncated",
			stmts: func(*testing.T, string) []string {
				return []string{`DELETE FROM audit_entries WHERE seq >= 9`, `DELETE FROM audit_checkpoints WHERE size > 9`}
			}},
		{name: "unsigned entries", seq: "entry 10:", reason: "not covered by any signed checkpoint",
			stmts: func(*testing.T, string) []string {
				return []string{`DELETE FROM audit_checkpoints WHERE size > 10`}
			}},
		{name: "forge a checkpoint", seq: "entry 5:", reason: "checkpoint of size 6",
			stmts: func(*testing.T, string) []string {
				// Claim another root for size 6, keeping the signature.
				return []string{`UPDATE audit_checkpoints SET note = CAST(replace(CAST(note AS TEXT), char(10) || '6' || char(10), char(10) || '6' || char(10) || 'A') AS BLOB) WHERE size = 6`}
			}},
		{name: "replace the log, another key", seq: "entry 0:", reason: "not trusted",
			stmts: replaceLog},
		{name: "replace the log, another key, kept", kept: true, seq: "entry 0:", reason: "not trusted",
			stmts: replaceLog},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := auditHome(t, n)
			if out, errs, code := runCLI(t, dir, "audit", "verify"); code != 0 {
				t.Fatalf("before tampering: %d %s%s", code, out, errs)
			}
			kept := keepCheckpoint(t, dir)
			tamper(t, dir, tc.stmts(t, dir)...)
			args := []string{"audit", "verify"}
			if tc.kept {
				args = append(args, "--checkpoint", kept)
			}
			out, errs, code := runCLI(t, dir, args...)
			if code != 1 {
				t.Fatalf("verify after tampering: exit %d, want 1\n%s%s", code, out, errs)
			}
			t.Log(strings.TrimSpace(errs))
			if !strings.Contains(errs, tc.seq) || !strings.Contains(errs, tc.reason) {
				t.Errorf("verify said %q; want %q and %q", errs, tc.seq, tc.reason)
			}
		})
	}
}

// replaceLog swaps in a complete, internally consistent log written by
// another runtime key.
func replaceLog(t *testing.T, dir string) []string {
	other := auditHome(t, 15)
	src := filepath.Join(other, "state.db")
	return []string{
		`ATTACH DATABASE '` + src + `' AS other`,
		`DELETE FROM audit_entries`, `DELETE FROM audit_checkpoints`,
		`INSERT INTO audit_entries SELECT * FROM other.audit_entries`,
		`INSERT INTO audit_checkpoints SELECT * FROM other.audit_checkpoints`,
	}
}

// TestAuditVerifyKeptCatchesRewriteWithTheKey: even the runtime key's
// holder cannot rewrite history unnoticed by a kept checkpoint.
func TestAuditVerifyKeptCatchesRewriteWithTheKey(t *testing.T) {
	dir := auditHome(t, 6)
	kept := keepCheckpoint(t, dir)
	tamper(t, dir, `DELETE FROM audit_entries`, `DELETE FROM audit_checkpoints`)
	appendEntries(t, filepath.Join(dir, "state.db"), mustRuntimeKey(t, dir), 9) // a different history
	if _, errs, code := runCLI(t, dir, "audit", "verify"); code != 0 {
		t.Fatalf("rewritten log does not verify on its own: %s", errs)
	}
	// The rewritten log differs from the original in entry timestamps, so
	// the tree of its first 6 entries is not the kept one.
	_, errs, code := runCLI(t, dir, "audit", "verify", "--checkpoint", kept)
	if code != 1 || !strings.Contains(errs, "entry 5:") || !strings.Contains(errs, "does not extend the kept checkpoint") {
		t.Errorf("verify --checkpoint: exit %d: %s", code, errs)
	}
}

func TestAuditVerifyCannotRun(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "astrid")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCLI(t, empty, "audit", "verify")
	if code != 2 || !strings.Contains(errs, "no audit log") {
		t.Errorf("no database: exit %d %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(empty, "state.db")); err == nil {
		t.Error("verify created a database")
	}

	garbage := filepath.Join(t.TempDir(), "astrid")
	os.Mkdir(garbage, 0o700)
	os.WriteFile(filepath.Join(garbage, "state.db"), bytes.Repeat([]byte("not a database "), 100), 0o600)
	if _, errs, code := runCLI(t, garbage, "audit", "verify"); code != 2 {
		t.Errorf("unreadable database: exit %d %s", code, errs)
	}

	dir := auditHome(t, 3)
	if _, errs, code := runCLI(t, dir, "audit", "verify", "--checkpoint", filepath.Join(dir, "nope")); code != 2 {
		t.Errorf("missing kept file: exit %d %s", code, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not a note"), 0o600)
	if _, errs, code := runCLI(t, dir, "audit", "verify", "--checkpoint", bad); code != 2 {
		t.Errorf("malformed kept file: exit %d %s", code, errs)
	}
	os.Remove(keys.Dir(home.Dir(dir).KeysDir()).File(keys.Runtime))
	if _, errs, code := runCLI(t, dir, "audit", "verify"); code != 2 || !strings.Contains(errs, "key") {
		t.Errorf("no runtime key: exit %d %s", code, errs)
	}
}

func TestAuditKeptCheckpointOfReplacedKey(t *testing.T) {
	// The runtime key was replaced and the log rewritten with it: the kept
	// checkpoint, signed by the old key, is no longer trusted. That is a
	// finding (exit 1), not an inability to run.
	dir := auditHome(t, 4)
	kept := keepCheckpoint(t, dir)
	h := home.Dir(dir)
	k, err := keys.Dir(h.KeysDir()).Generate(keys.Runtime, true)
	if err != nil {
		t.Fatal(err)
	}
	tamper(t, dir, `DELETE FROM audit_entries`, `DELETE FROM audit_checkpoints`)
	appendEntries(t, h.StateDB(), k, 4)
	_, errs, code := runCLI(t, dir, "audit", "verify", "--checkpoint", kept)
	if code != 1 || !strings.Contains(errs, "runtime key replaced") {
		t.Errorf("exit %d: %s", code, errs)
	}
}

func TestAuditList(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after every other cleanup
	dir := auditHome(t, 12)
	out, errs, code := runCLI(t, dir, "audit", "list")
	if code != 0 {
		t.Fatalf("list: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 13 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Errorf("list: %d lines:\n%s", len(lines), out)
	}
	out, _, code = runCLI(t, dir, "--format", "json", "audit", "list", "--decision", "denied")
	var got []entryJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("json list: %v %s", err, out)
	}
	if len(got) == 0 {
		t.Fatal("no denied entries listed")
	}
	for _, e := range got {
		if e.Decision != "denied" || e.Kind != "bash" || e.Text == "" {
			t.Errorf("denied filter returned %+v", e)
		}
	}
	out, _, _ = runCLI(t, dir, "--format", "json", "audit", "list", "--session", "s2", "--limit", "2")
	got = nil
	json.Unmarshal([]byte(out), &got)
	if len(got) != 2 || got[0].Session != "s2" || got[1].Seq <= got[0].Seq {
		t.Errorf("session+limit: %+v", got)
	}
	if out, _, _ := runCLI(t, dir, "audit", "list", "--since", "2999-01-01"); !strings.Contains(out, "no entries") {
		t.Errorf("since future: %s", out)
	}
	if out, _, _ := runCLI(t, dir, "audit", "list", "--since", "1h"); strings.Contains(out, "no entries") {
		t.Errorf("since 1h: %s", out)
	}
	if _, _, code := runCLI(t, dir, "audit", "list", "--decision", "maybe"); code != 1 {
		t.Errorf("bad --decision: exit %d", code)
	}
	// A tampered index column is refused, not shown.
	tamper(t, dir, `UPDATE audit_entries SET session = 's1' WHERE seq = 3`)
	if _, errs, code := runCLI(t, dir, "audit", "list"); code != 1 || !strings.Contains(errs, "entry 3") {
		t.Errorf("tampered list: exit %d %s", code, errs)
	}
}

func TestAuditShow(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after every other cleanup
	dir := auditHome(t, 9)
	out, errs, code := runCLI(t, dir, "audit", "show", "4")
	if code != 0 {
		t.Fatalf("show: %d %s", code, errs)
	}
	for _, want := range []string{"seq:", "4", "outcome", "decision entry:", "3 (", "proven in the tree of size 9"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runCLI(t, dir, "--format", "json", "audit", "show", "2")
	var v struct {
		Entry     entryJSON `json:"entry"`
		Inclusion struct {
			Verified bool     `json:"verified"`
			TreeSize int64    `json:"tree_size"`
			Proof    []string `json:"proof"`
		} `json:"inclusion"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
		t.Fatalf("json show: %v %s", err, out)
	}
	if v.Entry.Seq != 2 || v.Entry.Decision != "denied" || !v.Inclusion.Verified || v.Inclusion.TreeSize != 9 || len(v.Inclusion.Proof) == 0 {
		t.Errorf("json show: %+v", v)
	}
	if _, _, code := runCLI(t, dir, "audit", "show", "99"); code != 1 {
		t.Errorf("show 99: exit %d", code)
	}
	if _, _, code := runCLI(t, dir, "audit", "show", "x"); code != 1 {
		t.Errorf("show x: exit %d", code)
	}
	// A stored hash on the entry's proof path no longer matches: the proof fails.
	tamper(t, dir, `UPDATE audit_entries SET hashes = zeroblob(length(hashes)) WHERE seq = 3`)
	if _, errs, code := runCLI(t, dir, "audit", "show", "2"); code != 1 || !strings.Contains(errs, "not in the signed tree") {
		t.Errorf("show with a broken proof: exit %d %s", code, errs)
	}
}

func TestAuditStatsAndCheckpoint(t *testing.T) {
	dir := auditHome(t, 9)
	out, errs, code := runCLI(t, dir, "audit", "stats")
	if code != 0 {
		t.Fatalf("stats: %d %s", code, errs)
	}
	for _, want := range []string{"entries:     9", "checkpoints:", "tree:        size 9", "DECISION", "denied", "SESSION", "s1", "KIND", "write_file"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runCLI(t, dir, "--format", "json", "audit", "stats")
	var st struct {
		Stats    store.AuditStats `json:"stats"`
		TreeSize int64            `json:"tree_size"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Stats.Entries != 9 || st.TreeSize != 9 {
		t.Errorf("json stats: %v %s", err, out)
	}
	out, _, code = runCLI(t, dir, "audit", "checkpoint")
	k := mustRuntimeKey(t, dir)
	if code != 0 || !strings.HasPrefix(out, "astrid/"+k.ID()+"\n9\n") || !strings.Contains(out, "\n\n— astrid/"+k.ID()+" ") {
		t.Errorf("checkpoint:\n%s", out)
	}
}
