package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/store"
)

// Exit codes of the audit commands.
const (
	exitTampered  = 1 // the log is not intact
	exitCannotRun = 2 // no database, unreadable, no key
)

func newAuditCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Inspect and verify the tamper-evident audit log",
		Long: `The audit log records every decision the runtime takes on an action and
the outcome of every action it runs. Entries are leaves of a Merkle tree
whose root the runtime signs after every write; "astrid audit verify"
recomputes everything and names the first entry that was altered.

Keep the output of "astrid audit checkpoint" somewhere else from time to
time: "astrid audit verify --checkpoint FILE" then also proves that nothing
was removed or rewritten since.`,
	}
	cmd.AddCommand(newAuditListCmd(env), newAuditShowCmd(env), newAuditStatsCmd(env),
		newAuditCheckpointCmd(env), newAuditVerifyCmd(env))
	return cmd
}

// cannotRun marks err as "the command could not run" (exit 2).
func cannotRun(err error) error { return &ExitError{Code: exitCannotRun, Err: err} }

// openAudit opens the state database read-only and loads the keys whose
// checkpoints are trusted. Every failure exits with 2.
func (e *Env) openAudit(ctx context.Context) (*store.DB, keys.Trusted, error) {
	h, err := e.home()
	if err != nil {
		return nil, nil, cannotRun(err)
	}
	if _, err := os.Stat(h.StateDB()); err != nil {
		return nil, nil, cannotRun(fmt.Errorf("no audit log: %w", err))
	}
	db, _, err := e.openStore(ctx, true)
	if err != nil {
		return nil, nil, cannotRun(err)
	}
	trusted, err := e.trusted()
	if err != nil {
		db.Close()
		return nil, nil, cannotRun(err)
	}
	return db, trusted, nil
}

// entryJSON is the JSON form of an entry.
type entryJSON struct {
	Seq         int64     `json:"seq"`
	Hash        string    `json:"hash"`
	Time        time.Time `json:"time"`
	Prev        string    `json:"prev"`
	Type        string    `json:"type"`
	Session     string    `json:"session"`
	Principal   string    `json:"principal,omitempty"`
	Frontend    string    `json:"frontend,omitempty"`
	Kind        string    `json:"kind,omitempty"`
	Resource    string    `json:"resource,omitempty"`
	ArgsHash    string    `json:"args_hash,omitempty"`
	Decision    string    `json:"decision,omitempty"`
	Rule        string    `json:"rule,omitempty"`
	TokenID     string    `json:"token_id,omitempty"`
	AllowanceID string    `json:"allowance_id,omitempty"`
	Approval    string    `json:"approval,omitempty"`
	RefSeq      *int64    `json:"ref_seq,omitempty"`
	RefHash     string    `json:"ref_hash,omitempty"`
	Status      string    `json:"status,omitempty"`
	OutputHash  string    `json:"output_hash,omitempty"`
	Text        string    `json:"text,omitempty"`
}

func hashOrEmpty(h tlog.Hash) string {
	if h == (tlog.Hash{}) {
		return ""
	}
	return h.String()
}

func toJSON(e *audit.Entry, h tlog.Hash) entryJSON {
	j := entryJSON{
		Seq: e.Seq, Hash: h.String(), Time: e.Time, Prev: e.Prev.String(), Type: e.Type.String(),
		Session: e.Session, Principal: e.Principal, Frontend: e.Frontend,
		Kind: e.Action.Kind, Resource: e.Action.Resource, ArgsHash: hashOrEmpty(e.Action.ArgsHash),
		Decision: e.Decision.String(), Rule: e.Proof.Rule, TokenID: e.Proof.TokenID,
		AllowanceID: e.Proof.AllowanceID, Approval: e.Proof.Approval,
		Status: e.Status.String(), OutputHash: hashOrEmpty(e.OutputHash), Text: e.Text,
	}
	if e.Type == audit.TypeOutcome {
		seq := e.Ref.Seq
		j.RefSeq, j.RefHash = &seq, e.Ref.Hash.String()
	}
	return j
}

// decodeStored decodes a stored entry and checks that its index columns
// agree with it, so that no listing shows what the entry does not say.
func decodeStored(se *audit.StoredEntry) (*audit.Entry, error) {
	e, err := audit.Decode(se.Data)
	if err != nil || e.Seq != se.Seq || audit.IndexOf(e) != se.Index {
		if err == nil {
			err = errors.New("stored columns disagree with the entry")
		}
		return nil, &ExitError{Code: exitTampered, Err: fmt.Errorf("entry %d: %v; run astrid audit verify", se.Seq, err)}
	}
	return e, nil
}

// verdict is the decision of a decision entry or the status of an outcome.
func verdict(e *audit.Entry) string {
	if e.Type == audit.TypeOutcome {
		return e.Status.String() + " (of " + strconv.FormatInt(e.Ref.Seq, 10) + ")"
	}
	return e.Decision.String()
}

// parseSince accepts an RFC 3339 time, a date, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time, a date (2006-01-02) or a duration (24h)", s)
}

func newAuditListCmd(env *Env) *cobra.Command {
	var f store.AuditFilter
	var since, decision string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit entries, oldest first (the newest --limit of them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = t
			}
			if decision != "" {
				d, err := audit.ParseDecision(decision)
				if err != nil {
					return fmt.Errorf("--decision: %w", err)
				}
				f.Decision = d.String()
			}
			if f.Limit < 0 {
				return errors.New("--limit must be 0 (no limit) or more")
			}
			db, _, err := env.openAudit(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			rows, err := db.Audit().List(ctx, f)
			if err != nil {
				return cannotRun(err)
			}
			out := make([]entryJSON, 0, len(rows))
			tab := [][]string{{"SEQ", "TIME", "SESSION", "TYPE", "VERDICT", "KIND", "RESOURCE"}}
			for i := range rows {
				e, err := decodeStored(&rows[i])
				if err != nil {
					return err
				}
				out = append(out, toJSON(e, tlog.RecordHash(rows[i].Data)))
				tab = append(tab, []string{strconv.FormatInt(e.Seq, 10), e.Time.Local().Format(time.DateTime),
					e.Session, e.Type.String(), verdict(e), e.Action.Kind, clip(e.Action.Resource, 60)})
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, out)
			}
			if len(out) == 0 {
				_, err := fmt.Fprintln(env.Stdout, "no entries")
				return err
			}
			return table(env.Stdout, tab)
		},
	}
	cmd.Flags().StringVar(&f.Session, "session", "", "only entries of this session")
	cmd.Flags().StringVar(&since, "since", "", "only entries at or after this time (RFC 3339, date, or duration such as 24h)")
	cmd.Flags().StringVar(&decision, "decision", "", "only decisions with this verdict: allowed, denied or deferred")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "show at most the newest N matching entries (0: all)")
	return cmd
}

// clip shortens s for a table cell and makes control characters visible.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// latestCheckpoint reads and verifies the newest stored checkpoint.
func latestCheckpoint(ctx context.Context, r audit.Reader, trusted keys.Trusted) (*audit.Checkpoint, error) {
	sc, ok, err := r.LatestCheckpoint(ctx)
	if err != nil {
		return nil, cannotRun(err)
	}
	if !ok {
		return nil, nil
	}
	vs, err := audit.NewVerifiers(trusted)
	if err != nil {
		return nil, cannotRun(err)
	}
	c, err := audit.OpenCheckpoint(sc.Note, vs)
	if err != nil {
		return nil, &ExitError{Code: exitTampered, Err: fmt.Errorf("latest checkpoint: %w; run astrid audit verify", err)}
	}
	if c.Tree.N != sc.Size {
		return nil, &ExitError{Code: exitTampered, Err: fmt.Errorf("latest checkpoint is stored as size %d but signs size %d; run astrid audit verify", sc.Size, c.Tree.N)}
	}
	return c, nil
}

func newAuditShowCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one entry with its inclusion proof in the latest signed checkpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			seq, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || seq < 0 {
				return fmt.Errorf("SEQ %q: want a sequence number (0, 1, ...)", args[0])
			}
			db, trusted, err := env.openAudit(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			r := db.Audit()
			rows, err := r.ReadEntries(ctx, seq, 1)
			if err != nil {
				return cannotRun(err)
			}
			if len(rows) == 0 || rows[0].Seq != seq {
				return fmt.Errorf("no entry %d", seq)
			}
			e, err := decodeStored(&rows[0])
			if err != nil {
				return err
			}
			leaf := tlog.RecordHash(rows[0].Data)
			cp, err := latestCheckpoint(ctx, r, trusted)
			if err != nil {
				return err
			}
			if cp == nil || cp.Tree.N <= seq {
				return &ExitError{Code: exitTampered, Err: fmt.Errorf("entry %d is not covered by a signed checkpoint; run astrid audit verify", seq)}
			}
			proof, err := tlog.ProveRecord(cp.Tree.N, seq, audit.HashReader(ctx, r))
			if err != nil {
				return &ExitError{Code: exitTampered, Err: fmt.Errorf("inclusion proof of entry %d: %w; run astrid audit verify", seq, err)}
			}
			if err := tlog.CheckRecord(proof, cp.Tree.N, cp.Tree.Hash, seq, leaf); err != nil {
				return &ExitError{Code: exitTampered, Err: fmt.Errorf("entry %d is not in the signed tree of size %d: %w; run astrid audit verify", seq, cp.Tree.N, err)}
			}
			if env.jsonOutput() {
				ps := make([]string, len(proof))
				for i, h := range proof {
					ps[i] = h.String()
				}
				return printJSON(env.Stdout, map[string]any{
					"entry": toJSON(e, leaf),
					"inclusion": map[string]any{
						"verified": true, "tree_size": cp.Tree.N, "root": cp.Tree.Hash.String(),
						"signed_by": cp.Origin, "proof": ps,
					},
				})
			}
			j := toJSON(e, leaf)
			kv := [][]string{
				{"seq", strconv.FormatInt(j.Seq, 10)}, {"hash", j.Hash}, {"time", j.Time.Format(time.RFC3339Nano)},
				{"prev", j.Prev}, {"type", j.Type}, {"session", j.Session}, {"principal", j.Principal},
				{"frontend", j.Frontend}, {"kind", j.Kind}, {"resource", j.Resource}, {"args hash", j.ArgsHash},
			}
			if e.Type == audit.TypeDecision {
				kv = append(kv, []string{"decision", j.Decision}, []string{"rule", j.Rule}, []string{"token", j.TokenID},
					[]string{"allowance", j.AllowanceID}, []string{"approval", j.Approval}, []string{"reason", j.Text})
			} else {
				kv = append(kv, []string{"decision entry", fmt.Sprintf("%d (%s)", e.Ref.Seq, j.RefHash)},
					[]string{"status", j.Status}, []string{"output hash", j.OutputHash}, []string{"message", j.Text})
			}
			kv = append(kv, []string{"inclusion", fmt.Sprintf("proven in the tree of size %d, root %s, signed by %s (%d proof hashes)",
				cp.Tree.N, cp.Tree.Hash, cp.Origin, len(proof))})
			lines := kv[:0]
			for _, r := range kv {
				if r[1] != "" { // fields that took no part are left out
					lines = append(lines, []string{r[0] + ":", clip(r[1], 4096)})
				}
			}
			return table(env.Stdout, lines)
		},
	}
}

func newAuditStatsCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Count entries per decision, kind and session; show the tree size and last checkpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, trusted, err := env.openAudit(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := db.Audit().Stats(ctx)
			if err != nil {
				return cannotRun(err)
			}
			cp, err := latestCheckpoint(ctx, db.Audit(), trusted)
			if err != nil {
				return err
			}
			var treeSize int64
			var root, origin string
			if cp != nil {
				treeSize, root, origin = cp.Tree.N, cp.Tree.Hash.String(), cp.Origin
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, map[string]any{
					"stats": st, "tree_size": treeSize, "root": root, "signed_by": origin,
				})
			}
			w := env.Stdout
			fmt.Fprintf(w, "entries:     %d\ncheckpoints: %d\n", st.Entries, st.Checkpoints)
			if cp != nil {
				fmt.Fprintf(w, "tree:        size %d, root %s, signed by %s\n", treeSize, root, origin)
			}
			for _, g := range []struct {
				title string
				rows  []store.AuditCount
			}{{"type", st.ByType}, {"decision", st.ByDecision}, {"kind", st.ByKind}, {"session", st.BySession}} {
				if len(g.rows) == 0 {
					continue
				}
				fmt.Fprintln(w)
				tab := [][]string{{strings.ToUpper(g.title), "COUNT"}}
				for _, c := range g.rows {
					tab = append(tab, []string{clip(c.Key, 60), strconv.FormatInt(c.Count, 10)})
				}
				if err := table(w, tab); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func newAuditCheckpointCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint",
		Short: "Print the latest signed checkpoint; keep it elsewhere to detect truncation later",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, trusted, err := env.openAudit(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			cp, err := latestCheckpoint(ctx, db.Audit(), trusted)
			if err != nil {
				return err
			}
			if cp == nil {
				return errors.New("the audit log is empty: no checkpoint yet")
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, map[string]any{
					"origin": cp.Origin, "tree_size": cp.Tree.N, "root": cp.Tree.Hash.String(), "note": string(cp.Note),
				})
			}
			_, err = env.Stdout.Write(cp.Note)
			return err
		},
	}
}

func newAuditVerifyCmd(env *Env) *cobra.Command {
	var keptFile string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the whole audit log; exit 1 if it was altered, 2 if it cannot be checked",
		Long: `Recomputes every entry hash, the chain links, the Merkle tree against every
signed checkpoint, and every checkpoint signature. With --checkpoint FILE (the
output of "astrid audit checkpoint" kept earlier) it also proves that the log
still extends that checkpoint: nothing was truncated or rewritten.

Exit status: 0 intact, 1 altered (the first bad entry is named), 2 could not
run (no database, unreadable, no key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var kept []byte
			if keptFile != "" {
				b, err := readBounded(keptFile, audit.MaxCheckpointSize)
				if err != nil {
					return cannotRun(fmt.Errorf("--checkpoint: %w", err))
				}
				kept = b
			}
			db, trusted, err := env.openAudit(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			rep, err := audit.Verify(ctx, db.Audit(), trusted, kept)
			var bad *audit.Error
			switch {
			case errors.As(err, &bad):
				if env.jsonOutput() {
					if err := printJSON(env.Stdout, map[string]any{"ok": false, "seq": bad.Seq, "reason": bad.Reason}); err != nil {
						return err
					}
				}
				return &ExitError{Code: exitTampered, Err: err}
			case err != nil:
				return cannotRun(fmt.Errorf("cannot verify the audit log: %w", err))
			}
			if env.jsonOutput() {
				out := map[string]any{"ok": true, "entries": rep.Tree.N, "tree_hash": rep.Tree.Hash.String(), "checkpoints": rep.Checkpoints}
				if rep.Kept != nil {
					out["kept_checkpoint_size"] = rep.Kept.Tree.N
				}
				return printJSON(env.Stdout, out)
			}
			fmt.Fprintf(env.Stdout, "ok: %d entries, tree hash %s, %d signed checkpoints\n", rep.Tree.N, rep.Tree.Hash, rep.Checkpoints)
			if rep.Kept != nil {
				fmt.Fprintf(env.Stdout, "ok: the log extends the kept checkpoint of size %d\n", rep.Kept.Tree.N)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keptFile, "checkpoint", "", "a checkpoint kept earlier (from astrid audit checkpoint) that the log must still extend")
	return cmd
}

// readBounded reads a file of at most max bytes.
func readBounded(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return b, nil
}
