package daemon

import (
	"context"
	"fmt"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/auditview"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/rpc"
	"github.com/astrid-runtime/astrid/internal/store"
)

// The audit log methods: `astrid audit` goes through them while a daemon
// runs. They read the log the daemon writes; package auditview makes the
// views, the same the CLI makes from the store when no daemon runs.

func (d *Daemon) listAudit(ctx context.Context, c *clientConn, p api.ListAuditParams) (api.ListAuditResult, error) {
	limit := p.Limit
	if limit == 0 {
		limit = 100
	}
	es, err := auditview.List(ctx, d.core.DB.Audit(), store.AuditFilter{
		Session: p.Session, Since: p.Since, Decision: p.Decision, Limit: limit, BeforeSeq: p.BeforeSeq,
	})
	return api.ListAuditResult{Entries: es}, err
}

func (d *Daemon) showAudit(ctx context.Context, c *clientConn, p api.ShowAuditParams) (api.ShowAuditResult, error) {
	return auditview.Show(ctx, d.core.DB.Audit(), d.core.Trusted, p.Seq)
}

func (d *Daemon) auditStats(ctx context.Context, c *clientConn, _ api.Empty) (api.AuditStatsResult, error) {
	return auditview.Stats(ctx, d.core.DB.Audit(), d.core.Trusted)
}

func (d *Daemon) auditCheckpoint(ctx context.Context, c *clientConn, _ api.Empty) (api.AuditCheckpoint, error) {
	return auditview.Checkpoint(ctx, d.core.DB.Audit(), d.core.Trusted)
}

// verifyAudit runs the streaming verifier here, for as long as the call
// lasts: it stops when the caller goes away. Why the log could not be
// checked is the caller's to read.
func (d *Daemon) verifyAudit(ctx context.Context, c *clientConn, p api.VerifyAuditParams) (api.VerifyAuditResult, error) {
	if len(p.Checkpoint) > audit.MaxCheckpointSize {
		return api.VerifyAuditResult{}, fmt.Errorf("%w: checkpoint is larger than %d bytes", api.ErrInvalidParams, audit.MaxCheckpointSize)
	}
	var kept []byte
	if p.Checkpoint != "" {
		kept = []byte(p.Checkpoint)
	}
	res, err := auditview.Verify(ctx, d.core.DB.Audit(), d.core.Trusted, kept)
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, fmt.Errorf("%w: cannot verify the audit log: %v", rpc.ErrInternal, err)
	}
	return res, nil
}

// auditAction appends a decision entry of an administrative action a
// caller took (Decision allowed, Principal and Frontend theirs) and
// publishes it. Callers act first and audit after: a failed append must
// not undo the action, so it is the method's error, telling the caller
// (with done, what was done) that the log lacks the entry.
func (d *Daemon) auditAction(ctx context.Context, c *clientConn, done string, e audit.Entry) error {
	e.Type, e.Decision = audit.TypeDecision, audit.Allowed
	e.Principal = audit.Clip(c.caller.User, audit.MaxPrincipal)
	e.Frontend = audit.Clip(c.caller.Frontend, audit.MaxFrontend)
	e.Text = audit.ClipText(e.Text)
	rec, err := d.core.Audit.Append(context.WithoutCancel(ctx), e)
	if err != nil {
		d.log.Error("an action was taken but its audit entry failed", "kind", e.Action.Kind, "resource", e.Action.Resource, "err", err)
		return fmt.Errorf("%s, but its audit entry could not be written: %w", done, err)
	}
	if d.bus != nil {
		d.bus.Publish(events.AuditEntryCreated, "", events.Audit{Seq: rec.Seq})
	}
	return nil
}
