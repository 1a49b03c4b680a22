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

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/auditview"
	"github.com/astrid-runtime/astrid/internal/client"
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
	db, _, err := e.openStore(ctx)
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

// entryJSON is the JSON form of an entry, the API's.
type entryJSON = api.AuditEntry

// auditErr gives an error of an audit command its exit status: 1 for a
// log found altered (api.ErrTampered) and for what the user asked wrong
// (no such entry, no checkpoint yet), 2 for a log that could not be read.
// Errors that carry a status already keep it.
func auditErr(err error) error {
	var ee *ExitError
	switch {
	case err == nil, errors.As(err, &ee):
		return err
	case errors.Is(err, api.ErrTampered):
		return &ExitError{Code: exitTampered, Err: err}
	case errors.Is(err, api.ErrNotFound):
		return err
	}
	return cannotRun(err)
}

// viaAudit runs daemon with a client of the running daemon, or local with
// the store opened read-only and the trusted keys when none runs; the
// error is given its exit status (auditErr).
func (e *Env) viaAudit(ctx context.Context, daemon func(*client.Client) error, local func(*store.DB, keys.Trusted) error) error {
	return auditErr(e.viaDaemon(ctx, daemon, func() error {
		db, trusted, err := e.openAudit(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		return local(db, trusted)
	}))
}

// verdict is the decision of a decision entry or the status of an outcome.
func verdict(e *api.AuditEntry) string {
	if e.RefSeq != nil {
		return e.Status + " (of " + strconv.FormatInt(*e.RefSeq, 10) + ")"
	}
	return e.Decision
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
			var out []api.AuditEntry
			err := env.viaAudit(ctx, func(c *client.Client) (err error) {
				out, err = c.ListAudit(ctx, api.ListAuditParams{Session: f.Session, Since: f.Since, Decision: f.Decision}, f.Limit)
				return err
			}, func(db *store.DB, _ keys.Trusted) (err error) {
				out, err = auditview.List(ctx, db.Audit(), f)
				return err
			})
			if err != nil {
				return err
			}
			if out == nil {
				out = []api.AuditEntry{}
			}
			tab := [][]string{{"SEQ", "TIME", "SESSION", "TYPE", "VERDICT", "KIND", "RESOURCE"}}
			for i := range out {
				e := &out[i]
				tab = append(tab, []string{strconv.FormatInt(e.Seq, 10), e.Time.Local().Format(time.DateTime),
					e.Session, e.Type, verdict(e), e.Kind, clip(e.Resource, 60)})
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
			var res api.ShowAuditResult
			if err := env.viaAudit(ctx, func(c *client.Client) (err error) {
				res, err = c.ShowAudit(ctx, seq)
				return err
			}, func(db *store.DB, trusted keys.Trusted) (err error) {
				res, err = auditview.Show(ctx, db.Audit(), trusted, seq)
				return err
			}); err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, res)
			}
			j, in := res.Entry, res.Inclusion
			kv := [][]string{
				{"seq", strconv.FormatInt(j.Seq, 10)}, {"hash", j.Hash}, {"time", j.Time.Format(time.RFC3339Nano)},
				{"prev", j.Prev}, {"type", j.Type}, {"session", j.Session}, {"principal", j.Principal},
				{"frontend", j.Frontend}, {"kind", j.Kind}, {"resource", j.Resource}, {"args hash", j.ArgsHash},
			}
			if j.RefSeq == nil {
				kv = append(kv, []string{"decision", j.Decision}, []string{"rule", j.Rule}, []string{"token", j.TokenID},
					[]string{"allowance", j.AllowanceID}, []string{"approval", j.Approval}, []string{"reason", j.Text})
			} else {
				kv = append(kv, []string{"decision entry", fmt.Sprintf("%d (%s)", *j.RefSeq, j.RefHash)},
					[]string{"status", j.Status}, []string{"output hash", j.OutputHash}, []string{"message", j.Text})
			}
			kv = append(kv, []string{"inclusion", fmt.Sprintf("proven in the tree of size %d, root %s, signed by %s (%d proof hashes)",
				in.TreeSize, in.Root, in.SignedBy, len(in.Proof))})
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
			var res api.AuditStatsResult
			if err := env.viaAudit(ctx, func(c *client.Client) (err error) {
				res, err = c.AuditStats(ctx)
				return err
			}, func(db *store.DB, trusted keys.Trusted) (err error) {
				res, err = auditview.Stats(ctx, db.Audit(), trusted)
				return err
			}); err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, res)
			}
			w, st := env.Stdout, &res.Stats
			fmt.Fprintf(w, "entries:     %d\ncheckpoints: %d\n", st.Entries, st.Checkpoints)
			if res.SignedBy != "" {
				fmt.Fprintf(w, "tree:        size %d, root %s, signed by %s\n", res.TreeSize, res.Root, res.SignedBy)
			}
			for _, g := range []struct {
				title string
				rows  []api.AuditCount
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
			var res api.AuditCheckpoint
			if err := env.viaAudit(ctx, func(c *client.Client) (err error) {
				res, err = c.AuditCheckpoint(ctx)
				return err
			}, func(db *store.DB, trusted keys.Trusted) (err error) {
				res, err = auditview.Checkpoint(ctx, db.Audit(), trusted)
				return err
			}); err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, res)
			}
			_, err := io.WriteString(env.Stdout, res.Note)
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
			var res api.VerifyAuditResult
			if err := env.viaAudit(ctx, func(c *client.Client) (err error) {
				res, err = c.VerifyAudit(ctx, string(kept))
				return err
			}, func(db *store.DB, trusted keys.Trusted) (err error) {
				if res, err = auditview.Verify(ctx, db.Audit(), trusted, kept); err != nil {
					return fmt.Errorf("cannot verify the audit log: %w", err)
				}
				return nil
			}); err != nil {
				return err
			}
			if !res.OK {
				if env.jsonOutput() {
					if err := printJSON(env.Stdout, map[string]any{"ok": false, "seq": res.Seq, "reason": res.Reason}); err != nil {
						return err
					}
				}
				return &ExitError{Code: exitTampered, Err: &audit.Error{Seq: res.Seq, Reason: res.Reason}}
			}
			if env.jsonOutput() {
				out := map[string]any{"ok": true, "entries": res.Entries, "tree_hash": res.TreeHash, "checkpoints": res.Checkpoints}
				if res.KeptSize != nil {
					out["kept_checkpoint_size"] = *res.KeptSize
				}
				return printJSON(env.Stdout, out)
			}
			fmt.Fprintf(env.Stdout, "ok: %d entries, tree hash %s, %d signed checkpoints\n", res.Entries, res.TreeHash, res.Checkpoints)
			if res.KeptSize != nil {
				fmt.Fprintf(env.Stdout, "ok: the log extends the kept checkpoint of size %d\n", *res.KeptSize)
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
