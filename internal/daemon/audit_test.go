package daemon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/rpc"
)

// appendAudit appends n decisions alternating sessions a (allowed) and b
// (denied) to the daemon's log and returns the log's size after.
func appendAudit(t *testing.T, r *running, n int) int64 {
	t.Helper()
	var last int64
	for i := range n {
		e := audit.Entry{Type: audit.TypeDecision, Session: "a", Frontend: "test", Decision: audit.Allowed,
			Action: audit.Action{Kind: "read_file", Resource: fmt.Sprintf("file:///w/%d", i)}, Proof: audit.Proof{Rule: "workspace"}}
		if i%2 == 1 {
			e.Session, e.Decision, e.Text = "b", audit.Denied, "no"
		}
		rec, err := r.d.core.Audit.Append(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		last = rec.Seq
	}
	return last + 1
}

// sqlOn runs a statement on the daemon's state database as an attacker
// with write access to the file would.
func sqlOn(t *testing.T, r *running, stmt string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", r.h.home.StateDB())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// TestAuditMethods drives listAudit, showAudit, auditStats,
// auditCheckpoint and verifyAudit over a log the daemon writes, then over
// one altered under it.
func TestAuditMethods(t *testing.T) {
	h := newHome(t, "")
	r := start(t, h, h.options())
	c := dial(t, h)
	ctx := tctx(t)
	size := appendAudit(t, r, 7)

	all, err := c.ListAudit(ctx, api.ListAuditParams{}, 0)
	if err != nil || int64(len(all)) != size || all[0].Seq != 0 || all[len(all)-1].Seq != size-1 {
		t.Fatalf("ListAudit(all) = %d entries, %v; want %d in order", len(all), err, size)
	}
	// Pages of one, walked backwards with before_seq, give the same.
	var paged []api.AuditEntry
	for before := int64(0); ; {
		var res api.ListAuditResult
		if err := c.Call(ctx, api.MethodListAudit, api.ListAuditParams{Limit: 1, BeforeSeq: before}, &res); err != nil {
			t.Fatal(err)
		}
		paged = append(res.Entries, paged...)
		if len(res.Entries) == 0 || res.Entries[0].Seq == 0 {
			break
		}
		before = res.Entries[0].Seq
	}
	if len(paged) != len(all) || paged[3].Hash != all[3].Hash {
		t.Errorf("paged listing: %d entries, want %d", len(paged), len(all))
	}
	denied, err := c.ListAudit(ctx, api.ListAuditParams{Session: "b", Decision: "denied"}, 2)
	if err != nil || len(denied) != 2 || denied[0].Session != "b" || denied[1].Decision != "denied" || denied[1].Seq != all[len(all)-2].Seq {
		t.Errorf("ListAudit(b, denied, 2) = %+v, %v", denied, err)
	}
	for _, p := range []api.ListAuditParams{{Decision: "maybe"}, {Limit: 1001}, {BeforeSeq: -1}} {
		if err := c.Call(ctx, api.MethodListAudit, p, nil); !errors.Is(err, api.ErrInvalidParams) {
			t.Errorf("listAudit %+v = %v, want ErrInvalidParams", p, err)
		}
	}

	show, err := c.ShowAudit(ctx, 3)
	if err != nil || show.Entry.Seq != 3 || show.Entry.Hash != all[3].Hash || !show.Inclusion.Verified ||
		show.Inclusion.TreeSize != size || len(show.Inclusion.Proof) == 0 || show.Inclusion.SignedBy == "" {
		t.Fatalf("ShowAudit(3) = %+v, %v", show, err)
	}
	if _, err := c.ShowAudit(ctx, size+5); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("ShowAudit(past the end) = %v, want ErrNotFound", err)
	}
	if _, err := c.ShowAudit(ctx, -1); !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("ShowAudit(-1) = %v, want ErrInvalidParams", err)
	}

	st, err := c.AuditStats(ctx)
	if err != nil || st.Stats.Entries != size || st.TreeSize != size || st.Root == "" || len(st.Stats.BySession) != 2 {
		t.Errorf("AuditStats = %+v, %v", st, err)
	}
	cp, err := c.AuditCheckpoint(ctx)
	if err != nil || cp.TreeSize != size || !strings.HasPrefix(cp.Note, cp.Origin+"\n") || cp.Root != st.Root {
		t.Fatalf("AuditCheckpoint = %+v, %v", cp, err)
	}

	v, err := c.VerifyAudit(ctx, "")
	if err != nil || !v.OK || v.Entries != size || v.Checkpoints == 0 || v.KeptSize != nil {
		t.Errorf("VerifyAudit = %+v, %v", v, err)
	}
	appendAudit(t, r, 2)
	v, err = c.VerifyAudit(ctx, cp.Note)
	if err != nil || !v.OK || v.Entries != size+2 || v.KeptSize == nil || *v.KeptSize != size {
		t.Errorf("VerifyAudit(kept) = %+v, %v", v, err)
	}
	if _, err := c.VerifyAudit(ctx, "not a note"); code(err) != rpc.CodeInternal || !strings.Contains(err.Error(), "cannot verify the audit log: kept checkpoint") {
		t.Errorf("VerifyAudit(malformed kept) = %v, want an internal error saying why", err)
	}
	if _, err := c.VerifyAudit(ctx, strings.Repeat("x", audit.MaxCheckpointSize+1)); !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("VerifyAudit(oversized kept) = %v, want ErrInvalidParams", err)
	}

	// An index column no longer matches its entry: listings refuse it.
	sqlOn(t, r, `UPDATE audit_entries SET session = 'a' WHERE seq = 1`)
	if _, err := c.ListAudit(ctx, api.ListAuditParams{}, 0); code(err) != rpc.CodeTampered || !errors.Is(err, api.ErrTampered) || !strings.Contains(err.Error(), "entry 1") {
		t.Errorf("ListAudit over a tampered index = %v, want ErrTampered naming entry 1", err)
	}
	if _, err := c.ShowAudit(ctx, 1); !errors.Is(err, api.ErrTampered) {
		t.Errorf("ShowAudit of a tampered entry = %v, want ErrTampered", err)
	}
	// An entry's content altered: the verifier names it.
	sqlOn(t, r, `UPDATE audit_entries SET session = 'b' WHERE seq = 1`)
	rows, err := r.d.core.DB.Audit().ReadEntries(ctx, 4, 1)
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	data := rows[0].Data
	data[len(data)-1] ^= 1
	sqlOn(t, r, `UPDATE audit_entries SET data = ? WHERE seq = 4`, data)
	v, err = c.VerifyAudit(ctx, "")
	if err != nil || v.OK || v.Seq != 4 || v.Reason == "" {
		t.Errorf("VerifyAudit of an altered log = %+v, %v; want entry 4 named", v, err)
	}
}
