// Package auditview reads the audit log for people: it turns stored
// entries, checkpoints and the verifier's report into the API's views
// (package api), checking on the way that what it shows is what the log
// says. The daemon serves these views (astrid.listAudit, showAudit,
// auditStats, auditCheckpoint, verifyAudit) and the CLI builds the same
// ones from the store when no daemon runs, so both print alike.
//
// Errors: a log that disagrees with itself wraps api.ErrTampered, a missing
// entry or checkpoint api.ErrNotFound; any other error means the log could
// not be read.
package auditview

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/store"
)

// kindError is an error of one of the api sentinels whose text is the
// message alone (the sentinel's own text would only repeat it).
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func tampered(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: api.ErrTampered}
}

func notFound(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: api.ErrNotFound}
}

func hashOrEmpty(h tlog.Hash) string {
	if h == (tlog.Hash{}) {
		return ""
	}
	return h.String()
}

// Entry is the view of entry e whose record hash is h.
func Entry(e *audit.Entry, h tlog.Hash) api.AuditEntry {
	v := api.AuditEntry{
		Seq: e.Seq, Hash: h.String(), Time: e.Time.UTC(), Prev: e.Prev.String(), Type: e.Type.String(),
		Session: e.Session, Principal: e.Principal, Frontend: e.Frontend,
		Kind: e.Action.Kind, Resource: e.Action.Resource, ArgsHash: hashOrEmpty(e.Action.ArgsHash),
		Decision: e.Decision.String(), Rule: e.Proof.Rule, TokenID: e.Proof.TokenID,
		AllowanceID: e.Proof.AllowanceID, Approval: e.Proof.Approval,
		Status: e.Status.String(), OutputHash: hashOrEmpty(e.OutputHash), Text: e.Text,
	}
	if e.Type == audit.TypeOutcome {
		seq := e.Ref.Seq
		v.RefSeq, v.RefHash = &seq, e.Ref.Hash.String()
	}
	return v
}

// Decode decodes a stored entry and checks that its index columns agree
// with it, so that no listing shows what the entry does not say.
func Decode(se *audit.StoredEntry) (*audit.Entry, error) {
	e, err := audit.Decode(se.Data)
	if err != nil || e.Seq != se.Seq || audit.IndexOf(e) != se.Index {
		if err == nil {
			err = errors.New("stored columns disagree with the entry")
		}
		return nil, tampered("entry %d: %v; run astrid audit verify", se.Seq, err)
	}
	return e, nil
}

// Stored is the view of a stored entry, checked as Decode does.
func Stored(se *audit.StoredEntry) (api.AuditEntry, error) {
	e, err := Decode(se)
	if err != nil {
		return api.AuditEntry{}, err
	}
	return Entry(e, tlog.RecordHash(se.Data)), nil
}

// List returns the entries f selects, oldest first.
func List(ctx context.Context, a *store.AuditLog, f store.AuditFilter) ([]api.AuditEntry, error) {
	rows, err := a.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]api.AuditEntry, 0, len(rows))
	for i := range rows {
		v, err := Stored(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Latest reads and verifies the newest stored checkpoint; nil for an
// empty log.
func Latest(ctx context.Context, r audit.Reader, trusted keys.Trusted) (*audit.Checkpoint, error) {
	sc, ok, err := r.LatestCheckpoint(ctx)
	if err != nil || !ok {
		return nil, err
	}
	vs, err := audit.NewVerifiers(trusted)
	if err != nil {
		return nil, err
	}
	c, err := audit.OpenCheckpoint(sc.Note, vs)
	if err != nil {
		return nil, tampered("latest checkpoint: %v; run astrid audit verify", err)
	}
	if c.Tree.N != sc.Size {
		return nil, tampered("latest checkpoint is stored as size %d but signs size %d; run astrid audit verify", sc.Size, c.Tree.N)
	}
	return c, nil
}

// Show returns entry seq with its inclusion proof in the latest signed
// checkpoint, checked.
func Show(ctx context.Context, r audit.Reader, trusted keys.Trusted, seq int64) (api.ShowAuditResult, error) {
	rows, err := r.ReadEntries(ctx, seq, 1)
	if err != nil {
		return api.ShowAuditResult{}, err
	}
	if len(rows) == 0 || rows[0].Seq != seq {
		return api.ShowAuditResult{}, notFound("no entry %d", seq)
	}
	v, err := Stored(&rows[0])
	if err != nil {
		return api.ShowAuditResult{}, err
	}
	leaf := tlog.RecordHash(rows[0].Data)
	cp, err := Latest(ctx, r, trusted)
	if err != nil {
		return api.ShowAuditResult{}, err
	}
	if cp == nil || cp.Tree.N <= seq {
		return api.ShowAuditResult{}, tampered("entry %d is not covered by a signed checkpoint; run astrid audit verify", seq)
	}
	proof, err := tlog.ProveRecord(cp.Tree.N, seq, audit.HashReader(ctx, r))
	if err != nil {
		return api.ShowAuditResult{}, tampered("inclusion proof of entry %d: %v; run astrid audit verify", seq, err)
	}
	if err := tlog.CheckRecord(proof, cp.Tree.N, cp.Tree.Hash, seq, leaf); err != nil {
		return api.ShowAuditResult{}, tampered("entry %d is not in the signed tree of size %d: %v; run astrid audit verify", seq, cp.Tree.N, err)
	}
	ps := make([]string, len(proof))
	for i, h := range proof {
		ps[i] = h.String()
	}
	return api.ShowAuditResult{Entry: v, Inclusion: api.AuditInclusion{
		Proof: ps, Root: cp.Tree.Hash.String(), SignedBy: cp.Origin, TreeSize: cp.Tree.N, Verified: true,
	}}, nil
}

// Stats counts the entries and describes the latest signed checkpoint.
func Stats(ctx context.Context, a *store.AuditLog, trusted keys.Trusted) (api.AuditStatsResult, error) {
	st, err := a.Stats(ctx)
	if err != nil {
		return api.AuditStatsResult{}, err
	}
	cp, err := Latest(ctx, a, trusted)
	if err != nil {
		return api.AuditStatsResult{}, err
	}
	out := api.AuditStatsResult{Stats: *st}
	if cp != nil {
		out.TreeSize, out.Root, out.SignedBy = cp.Tree.N, cp.Tree.Hash.String(), cp.Origin
	}
	return out, nil
}

// Checkpoint returns the latest signed checkpoint, verified.
func Checkpoint(ctx context.Context, r audit.Reader, trusted keys.Trusted) (api.AuditCheckpoint, error) {
	cp, err := Latest(ctx, r, trusted)
	if err != nil {
		return api.AuditCheckpoint{}, err
	}
	if cp == nil {
		return api.AuditCheckpoint{}, notFound("the audit log is empty: no checkpoint yet")
	}
	return api.AuditCheckpoint{Note: string(cp.Note), Origin: cp.Origin, Root: cp.Tree.Hash.String(), TreeSize: cp.Tree.N}, nil
}

// Verify checks the whole log (audit.Verify), and that it extends kept
// when kept is not nil. A log found altered is a result with OK false; an
// error means it could not be checked.
func Verify(ctx context.Context, r audit.Reader, trusted keys.Trusted, kept []byte) (api.VerifyAuditResult, error) {
	rep, err := audit.Verify(ctx, r, trusted, kept)
	var bad *audit.Error
	switch {
	case errors.As(err, &bad):
		return api.VerifyAuditResult{OK: false, Seq: bad.Seq, Reason: bad.Reason}, nil
	case err != nil:
		return api.VerifyAuditResult{}, err
	}
	out := api.VerifyAuditResult{OK: true, Entries: rep.Tree.N, TreeHash: rep.Tree.Hash.String(), Checkpoints: rep.Checkpoints}
	if rep.Kept != nil {
		n := rep.Kept.Tree.N
		out.KeptSize = &n
	}
	return out, nil
}
