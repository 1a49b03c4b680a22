package approval

import "github.com/astrid-runtime/astrid/internal/api"

// API is the request as the daemon's API carries it.
func (r Request) API() api.ApprovalRequest {
	return api.ApprovalRequest{
		ID: r.ID, Session: r.SessionID, Principal: r.Principal, Workspace: r.Workspace, Kind: r.Kind,
		Resource: r.Resource, Risk: r.Risk, Reason: r.Reason, Pattern: r.Pattern, Summary: r.Summary,
		Dynamic: r.Dynamic, CreatedAt: r.CreatedAt,
	}
}

// API is the answer as the daemon's API carries it.
func (a Answer) API() api.ApprovalAnswer {
	return api.ApprovalAnswer{Decision: string(a.Decision), Reason: a.Reason, By: a.By, Frontend: a.Frontend}
}

// API is the deferred action as the daemon's API carries it (times in
// UTC), for the daemon and for the CLI reading the store when no daemon
// runs.
func (x Deferred) API() api.DeferredApproval {
	v := api.DeferredApproval{ID: x.ID, Status: string(x.Status), Request: x.Request.API(), CreatedAt: x.CreatedAt.UTC(), Result: x.Result}
	if x.Answer != nil {
		a := x.Answer.API()
		v.Answer = &a
	}
	if !x.ResolvedAt.IsZero() {
		t := x.ResolvedAt.UTC()
		v.ResolvedAt = &t
	}
	return v
}
