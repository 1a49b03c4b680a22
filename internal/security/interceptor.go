// Package security defines what an agent may propose (an Action) and the
// one gate every action passes: Interceptor.Intercept.
//
// # The five steps
//
// Intercept runs, in this order, and stops at the first "no":
//
//  1. Policy: the administrator's hard boundaries (package policy). Blocked
//     commands anywhere in a command line, denied paths after resolution,
//     $ASTRID_HOME, the workspace's .astrid directory for writes, denied
//     hosts and private/metadata addresses, argument size. Nothing
//     overrides a policy denial.
//  2. Authority: a signed capability token that covers the action (verified
//     on use), a recorded allowance (session or workspace), or the
//     workspace mode (see below).
//  3. Budget: the estimated cost is reserved against the per-action,
//     session and workspace limits.
//  4. Approval: if nothing in step 2 authorised the action, the session's
//     human is asked. No asker, an asker error, or no answer within the
//     approval timeout defers the action durably; it never runs silently
//     and is never silently dropped.
//  5. Audit: the decision (allowed with its proof, denied with its rule,
//     deferred) is appended to the audit log before anything runs. If the
//     append fails, the action is denied.
//
// Only a Permit lets an action run, and only Intercept makes one; its
// Finish appends the outcome entry linked to the decision and settles the
// budget. Run wraps the whole path for an Executor.
//
// # Workspace modes
//
//	safe        everything not covered by a token or allowance asks
//	guided      reads and listings inside the workspace run; the rest asks
//	autonomous  reads, writes and listings inside the workspace run,
//	            commands run without asking when the native sandbox is
//	            available; deletes ask when require_approval_for_delete,
//	            network actions when require_approval_for_network
//
// Outside the workspace, escape_policy decides: ask, or deny outright.
// auto_allow_read / auto_allow_write globs allow matching paths in any
// mode; never_allow globs make matching paths always ask (they turn off
// mode and auto-allow rules, not tokens or allowances a human granted).
// A dynamic command (see policy.AnalyzeShell) is never allowed by a mode or
// an allowance, and is covered only by a token that grants dynamic
// execution; a compound command line (several commands, pipes,
// substitutions) is covered only by a literal pattern, never by a glob
// such as "exec://git status*".
package security

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/policy"
	"github.com/astrid-runtime/astrid/internal/workspace"
)

// Steps, as named in denials and audit proofs.
const (
	StepValidate  = "validate"
	StepPolicy    = "policy"
	StepAuthority = "authority"
	StepBudget    = "budget"
	StepApproval  = "approval"
	StepAudit     = "audit"
	StepWorkspace = "workspace"
	// StepHook is a PreToolCall hook's refusal (Session.HookBlock).
	StepHook = "hook"
)

// DeniedError is returned when an action may not run. Step and Rule say
// which check refused it; Reason is safe to show to the model.
type DeniedError struct {
	Step   string
	Rule   string
	Reason string
}

func (e *DeniedError) Error() string {
	if e.Rule != "" {
		return fmt.Sprintf("denied by %s (%s): %s", e.Step, e.Rule, e.Reason)
	}
	return fmt.Sprintf("denied by %s: %s", e.Step, e.Reason)
}

// DeferredError is returned when nobody answered in time: the action is
// queued as deferred approval ID and will run only after a human approves it.
type DeferredError struct {
	ID     string
	Reason string
}

func (e *DeferredError) Error() string {
	return fmt.Sprintf("pending human approval (deferred %s): %s", e.ID, e.Reason)
}

// Auditor appends to the audit log; *audit.Log implements it. Append must
// return only once the entry is durable.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Receipt, error)
}

// WorkspaceRules are the [workspace] settings that modes consult.
type WorkspaceRules struct {
	// EscapeDeny refuses anything outside the workspace instead of asking.
	EscapeDeny bool
	// AutoAllowRead, AutoAllowWrite and NeverAllow are doublestar globs
	// over canonical paths.
	AutoAllowRead  []string
	AutoAllowWrite []string
	NeverAllow     []string
	// RequireApprovalForDelete and RequireApprovalForNetwork keep deletes
	// and network actions from being allowed by a mode or auto-allow rule.
	RequireApprovalForDelete  bool
	RequireApprovalForNetwork bool
	// SandboxAvailable says native processes run under Landlock; without
	// it, autonomous mode still asks before every command.
	SandboxAvailable bool
}

// Notice is something the interceptor tells the rest of the runtime
// (events for frontends): approval requested/resolved, budget warnings.
type Notice struct {
	// Kind is "approval_requested", "approval_resolved", "deferred",
	// "budget_warning", "decision" (a decision was audited: Decision set),
	// "budget_reserved" / "budget_exceeded" (Action and Amount set),
	// "capability_granted" (an "Allow Always" token: Decision.TokenID) or
	// "audit_entry" (an entry was appended: Seq).
	Kind     string
	Session  string
	Request  *approval.Request
	Answer   *approval.Answer
	Warning  *budget.Warning
	Deferred string
	Decision *DecisionNotice
	Amount   budget.Micros
	Seq      int64
	// Presented marks an approval_requested whose Asker puts the request
	// to the human itself (approval.Presenter): frontends must not prompt
	// for it, since no approval answer is awaited.
	Presented bool
}

// DecisionNotice describes an audited decision.
type DecisionNotice struct {
	Allowed  bool
	Step     string // for a denial: the step that refused
	Rule     string
	TokenID  string // the token that authorised it, or was granted
	Kind     string
	Resource string
}

// Profile is the configuration that governs the actions of one workspace:
// the merged configuration layers, including that workspace's own
// (tighten-only) layer.
type Profile struct {
	Rules     *policy.Rules
	Workspace WorkspaceRules
	// Mode is the configured workspace mode. A session runs in the
	// stricter of its own mode and this one ("" means safe).
	Mode   Mode
	Limits budget.Limits
	// ApprovalTimeout bounds the wait for a human ([security]
	// approval_timeout_secs); 0 means 300 s.
	ApprovalTimeout time.Duration
	// TokenTTL is the lifetime of "Allow Always" tokens; 0 means 1 h.
	TokenTTL time.Duration
}

// Validate checks the profile's globs and limits.
func (p *Profile) Validate() error {
	if p == nil || p.Rules == nil {
		return errors.New("profile without policy rules")
	}
	for _, list := range [][]string{p.Workspace.AutoAllowRead, p.Workspace.AutoAllowWrite, p.Workspace.NeverAllow} {
		for _, g := range list {
			if !doublestar.ValidatePattern(g) {
				return fmt.Errorf("invalid workspace glob %q", g)
			}
		}
	}
	return p.Limits.Validate()
}

// Profiles returns the profile for a workspace root ("" for sessions
// without a workspace). Implementations cache; an error denies every
// action of that workspace.
type Profiles func(workspace string) (*Profile, error)

// Options configure an Interceptor. Every dependency is required except
// Notify, Logger and Now.
type Options struct {
	Profiles   Profiles
	Tokens     *capability.Service
	Allowances *approval.Allowances
	Budget     *budget.Tracker
	Deferred   approval.DeferredStore
	Audit      Auditor
	Notify     func(Notice)
	Logger     *slog.Logger
	Now        func() time.Time
}

// Interceptor is the single gate. It is safe for concurrent use.
type Interceptor struct {
	o Options
}

// New checks opts and returns an Interceptor.
func New(o Options) (*Interceptor, error) {
	switch {
	case o.Profiles == nil:
		return nil, errors.New("interceptor: no profiles")
	case o.Tokens == nil:
		return nil, errors.New("interceptor: no token service")
	case o.Allowances == nil:
		return nil, errors.New("interceptor: no allowances")
	case o.Budget == nil:
		return nil, errors.New("interceptor: no budget tracker")
	case o.Deferred == nil:
		return nil, errors.New("interceptor: no deferred queue")
	case o.Audit == nil:
		return nil, errors.New("interceptor: no audit log")
	}
	if o.Notify == nil {
		o.Notify = func(Notice) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Interceptor{o: o}, nil
}

// Permit is the right to run one intercepted action. Exactly one Finish
// records its outcome; a Permit that is never finished leaves its budget
// reserved, so callers always Finish (Run does).
type Permit struct {
	Action   Action
	Proof    audit.Proof
	Decision audit.Receipt
	ic       *Interceptor
	res      *budget.Reservation
	finished atomic.Bool
}

// judgement carries what the steps learned about one action.
type judgement struct {
	a        Action
	p        *Profile
	analysis *policy.ShellAnalysis // execute actions only
	inside   bool                  // the target is inside the workspace
	proof    audit.Proof
}

// Intercept runs the five steps for a. It returns a Permit when the action
// may run, a *DeniedError or *DeferredError when it may not, or another
// error (audit or store failure), which also means it may not.
func (ic *Interceptor) Intercept(ctx context.Context, a Action) (*Permit, error) {
	return ic.intercept(ctx, a, nil)
}

// HookDenial is the refusal of an action that a PreToolCall hook blocks
// (block is Session.HookBlock: "hook NAME: reason").
func HookDenial(block string) *DeniedError {
	return &DeniedError{Step: StepHook, Rule: "hook", Reason: "blocked by " + block}
}

// intercept is Intercept; a non-nil pre is a human's answer already given
// (a resolved deferred approval), which replaces steps 2 and 4.
func (ic *Interceptor) intercept(ctx context.Context, a Action, pre *approval.Answer) (*Permit, error) {
	if a.Session.HookAsk != "" {
		a.AlwaysAsk = true
	}
	j := &judgement{a: a}
	if a.Session.HookBlock != "" {
		// Refused before any other step, and audited like any denial.
		return nil, ic.deny(ctx, j, HookDenial(a.Session.HookBlock))
	}
	if err := ic.validate(j); err != nil {
		return nil, ic.deny(ctx, j, err)
	}
	if err := ic.profile(j); err != nil {
		return nil, ic.deny(ctx, j, err)
	}
	// 1. Policy.
	if err := ic.policy(j); err != nil {
		return nil, ic.deny(ctx, j, err)
	}
	// 2. Authority: token, allowance, or mode.
	authorized := false
	if pre == nil {
		var err error
		if authorized, err = ic.authority(ctx, j); err != nil {
			return nil, ic.deny(ctx, j, err)
		}
	}
	// 3. Budget.
	res, warns, err := ic.o.Budget.Reserve(j.p.Limits, a.Session.ID, a.Session.Workspace, a.Cost)
	if err != nil {
		var ee *budget.ExceededError
		rule := "budget"
		if errors.As(err, &ee) {
			rule = ee.Limit
		}
		ic.o.Notify(Notice{Kind: "budget_exceeded", Session: a.Session.ID, Amount: a.Cost, Decision: &DecisionNotice{Rule: rule, Kind: string(a.Kind), Resource: a.Resource}})
		return nil, ic.deny(ctx, j, &DeniedError{Step: StepBudget, Rule: rule, Reason: err.Error()})
	}
	ic.warn(a.Session.ID, warns)
	ic.o.Notify(Notice{Kind: "budget_reserved", Session: a.Session.ID, Amount: a.Cost, Decision: &DecisionNotice{Kind: string(a.Kind), Resource: a.Resource}})
	// 4. Approval.
	grant := pre
	if pre != nil {
		j.proof.Approval = string(pre.Decision)
	}
	if !authorized && pre == nil {
		ans, err := ic.ask(ctx, j)
		if err != nil {
			res.Release()
			var de *DeferredError
			if errors.As(err, &de) {
				return nil, err
			}
			return nil, ic.deny(ctx, j, err)
		}
		grant = ans
	}
	// 5. Audit the decision; nothing runs unless it is stored.
	rec, err := ic.o.Audit.Append(ctx, ic.entry(j, audit.Allowed, ""))
	if err != nil {
		res.Release()
		ic.o.Logger.Error("audit append failed; action denied", "session", a.Session.ID, "resource", a.Resource, "err", err)
		ic.o.Notify(Notice{Kind: "decision", Session: a.Session.ID, Decision: &DecisionNotice{Step: StepAudit, Kind: string(a.Kind), Resource: a.Resource}})
		return nil, &DeniedError{Step: StepAudit, Reason: "the audit log could not record the decision"}
	}
	ic.o.Notify(Notice{Kind: "audit_entry", Session: a.Session.ID, Seq: rec.Seq})
	ic.o.Notify(Notice{Kind: "decision", Session: a.Session.ID, Decision: &DecisionNotice{Allowed: true, Rule: j.proof.Rule, TokenID: j.proof.TokenID, Kind: string(a.Kind), Resource: a.Resource}})
	if grant != nil {
		if err := ic.remember(ctx, j, *grant, rec); err != nil {
			res.Release()
			ic.outcome(ctx, j.a, rec, audit.Failure, nil, "not run: could not record the approval: "+err.Error())
			return nil, &DeniedError{Step: StepApproval, Reason: "the approval could not be recorded"}
		}
	}
	return &Permit{Action: j.a, Proof: j.proof, Decision: rec, ic: ic, res: res}, nil
}

// validate checks the action is well-formed and fills Risk.
func (ic *Interceptor) validate(j *judgement) error {
	a := &j.a
	bad := func(format string, args ...any) error {
		return &DeniedError{Step: StepValidate, Reason: fmt.Sprintf(format, args...)}
	}
	if !a.Kind.Valid() {
		return bad("unknown action kind %q", a.Kind)
	}
	if a.Session.ID == "" {
		return bad("action without a session")
	}
	if a.Cost < 0 {
		return bad("negative cost estimate")
	}
	if ws := a.Session.Workspace; ws != "" && !strings.HasPrefix(ws, "/") {
		return bad("workspace root %q is not absolute", ws)
	}
	switch a.Kind {
	case FileRead, FileWrite, FileDelete, FileList:
		want, err := FileURI(a.Path)
		if err != nil || want != a.Resource {
			return bad("file action resource %q does not name its canonical path %q", a.Resource, a.Path)
		}
		j.inside = a.Session.Workspace != "" && workspace.Within(a.Session.Workspace, a.Path)
	case Execute:
		if a.Command == "" || ExecURI(a.Command) != a.Resource {
			return bad("execute action resource %q does not name its command", a.Resource)
		}
	case Network:
		want, err := NetURI(a.Host, a.Port)
		if err != nil || want != a.Resource {
			return bad("network action resource %q does not name host %q port %d", a.Resource, a.Host, a.Port)
		}
	}
	if _, err := capability.ParseResource(a.Resource); err != nil {
		return bad("resource: %v", err)
	}
	if a.Risk == 0 {
		a.Risk = ic.risk(j)
	}
	return nil
}

// profile finds the configuration governing the action's workspace.
func (ic *Interceptor) profile(j *judgement) error {
	p, err := ic.o.Profiles(j.a.Session.Workspace)
	if err == nil {
		err = p.Validate()
	}
	if err != nil {
		ic.o.Logger.Error("no valid configuration for the workspace; action denied", "workspace", j.a.Session.Workspace, "err", err)
		return &DeniedError{Step: StepPolicy, Rule: "configuration", Reason: "the workspace configuration is invalid: " + err.Error()}
	}
	cp := *p
	if cp.ApprovalTimeout <= 0 {
		cp.ApprovalTimeout = 300 * time.Second
	}
	if cp.TokenTTL <= 0 {
		cp.TokenTTL = time.Hour
	}
	j.p = &cp
	return nil
}

// risk starts from the kind and raises it for context.
func (ic *Interceptor) risk(j *judgement) Risk {
	r := j.a.Kind.BaseRisk()
	switch j.a.Kind {
	case FileRead, FileList, FileWrite:
		if !j.inside {
			r++
		}
	case FileDelete:
		if !j.inside {
			r = Critical
		}
	}
	return min(r, Critical)
}

// policy is step 1.
func (ic *Interceptor) policy(j *judgement) error {
	a := &j.a
	r := j.p.Rules
	var v *policy.Violation
	if v = r.Args(len(a.Args)); v == nil {
		switch a.Kind {
		case FileRead, FileList:
			v = r.Path(a.Path, false)
		case FileWrite, FileDelete:
			v = r.Path(a.Path, true)
		case Execute:
			j.analysis, v = r.Command(a.Command)
		case Network:
			v = r.Host(a.Host, a.Port, a.Addrs)
		}
	}
	if v != nil {
		j.proof.Rule = v.Rule
		return &DeniedError{Step: StepPolicy, Rule: v.Rule, Reason: v.Detail}
	}
	if a.Kind == Execute && j.analysis.IsDynamic() {
		a.Risk = max(a.Risk, High)
	}
	return nil
}

// authority is step 2. It returns true when a token, an allowance or the
// workspace mode authorises the action, false when a human must be asked,
// and an error when the action is refused (escape_policy deny) or a store
// failed.
func (ic *Interceptor) authority(ctx context.Context, j *judgement) (bool, error) {
	a := j.a
	if a.AlwaysAsk {
		// NOTE: an action that must always ask is authorised by nothing
		// recorded: not a token, not an allowance, not the mode.
		return false, nil
	}
	perm, err := capability.ParsePermissions(a.Kind.Permission())
	if err != nil {
		return false, err
	}
	dynamic := a.Kind == Execute && j.analysis.IsDynamic()
	compound := a.Kind == Execute && !simpleCommand(a.Command, j.analysis)
	c := capability.Context{Now: ic.o.Now(), SessionID: a.Session.ID, Workspace: a.Session.Workspace}
	tok, err := ic.o.Tokens.AuthorizeWhere(ctx, a.Resource, perm, c, func(t *capability.Token, p capability.Pattern) bool {
		return (!dynamic || t.AllowDynamic) && (!compound || p.Literal())
	})
	switch {
	case err == nil:
		j.proof.TokenID = tok.ID.String()
		return true, nil
	case !errors.Is(err, capability.ErrNotCovered):
		var ve *capability.VerifyError
		if !errors.As(err, &ve) {
			return false, fmt.Errorf("token store: %w", err)
		}
	}
	if !dynamic {
		al, err := ic.o.Allowances.Find(ctx, a.Session.ID, a.Session.Workspace, a.Resource, perm, func(p capability.Pattern) bool {
			return !compound || p.Literal()
		})
		if err != nil {
			return false, fmt.Errorf("allowance store: %w", err)
		}
		if al != nil {
			j.proof.AllowanceID = al.ID
			return true, nil
		}
	}
	return ic.mode(j, dynamic)
}

// simpleCommand reports whether a command line is one plain simple command
// (no lists, pipes, substitutions, redirections or wrappers), so that a glob
// pattern over its text means what it says.
func simpleCommand(line string, an *policy.ShellAnalysis) bool {
	if an == nil || an.IsDynamic() || len(an.Commands) != 1 || len(an.Commands[0].Via) > 0 {
		return false
	}
	return !strings.ContainsAny(line, ";&|<>()`$\n{}")
}

// mode applies the workspace mode and auto-allow rules.
func (ic *Interceptor) mode(j *judgement, dynamic bool) (bool, error) {
	a := j.a
	w := j.p.Workspace
	fileKind := a.Kind == FileRead || a.Kind == FileWrite || a.Kind == FileDelete || a.Kind == FileList
	if fileKind && !j.inside && w.EscapeDeny {
		j.proof.Rule = "escape_policy"
		return false, &DeniedError{Step: StepWorkspace, Rule: "escape_policy", Reason: fmt.Sprintf("%s is outside the workspace and escape_policy is deny", a.Path)}
	}
	mode := stricter(a.Session.Mode, j.p.Mode)
	if dynamic {
		return false, nil
	}
	if fileKind && matchAny(w.NeverAllow, a.Path) {
		return false, nil
	}
	switch a.Kind {
	case FileRead, FileList:
		if matchAny(w.AutoAllowRead, a.Path) {
			j.proof.Rule = "auto_allow_read"
			return true, nil
		}
	case FileWrite:
		if matchAny(w.AutoAllowWrite, a.Path) {
			j.proof.Rule = "auto_allow_write"
			return true, nil
		}
	}
	if fileKind && !j.inside {
		return false, nil
	}
	allow := false
	switch mode {
	case Guided:
		allow = a.Kind == FileRead || a.Kind == FileList
	case Autonomous:
		switch a.Kind {
		case FileRead, FileList, FileWrite:
			allow = true
		case FileDelete:
			allow = !w.RequireApprovalForDelete
		case Execute:
			allow = w.SandboxAvailable
		case Network:
			allow = !w.RequireApprovalForNetwork
		}
	}
	if allow {
		j.proof.Rule = "mode:" + string(mode)
	}
	return allow, nil
}

// stricter returns the stricter of two modes; "" and unknown modes count
// as safe.
func stricter(a, b Mode) Mode {
	rank := func(m Mode) int {
		switch m {
		case Guided:
			return 1
		case Autonomous:
			return 2
		}
		return 0
	}
	if rank(a) <= rank(b) {
		return orMode(a)
	}
	return orMode(b)
}

func matchAny(globs []string, p string) bool {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, p); ok {
			return true
		}
	}
	return false
}

// ask is step 4: it asks the human and returns an allowing answer, a
// *DeniedError for a refusal, or a *DeferredError.
func (ic *Interceptor) ask(ctx context.Context, j *judgement) (*approval.Answer, error) {
	a := j.a
	req := ic.request(j)
	var ans approval.Answer
	decided := false
	if a.Session.PreApproval != nil {
		ans, decided = a.Session.PreApproval(ctx, req)
	}
	if !decided {
		var err error
		if ans, err = ic.askHuman(ctx, j, req); err != nil {
			return nil, err
		}
	}
	ic.o.Notify(Notice{Kind: "approval_resolved", Session: a.Session.ID, Request: &req, Answer: &ans})
	if !ans.Decision.Valid() {
		return nil, &DeniedError{Step: StepApproval, Rule: "invalid_answer", Reason: fmt.Sprintf("unknown answer %q", ans.Decision)}
	}
	j.proof.Approval = string(ans.Decision)
	if !ans.Decision.Allows() {
		reason := "the user denied it"
		if ans.Reason != "" {
			reason += ": " + ans.Reason
		}
		return nil, &DeniedError{Step: StepApproval, Rule: "user", Reason: reason}
	}
	return &ans, nil
}

// askHuman announces req and puts it to the session's Asker. The request
// is registered first when the Asker can hold an early answer
// (approval.Registrar). No Asker, no answer in time or an Asker error
// defers the action; a cancelled turn denies it.
func (ic *Interceptor) askHuman(ctx context.Context, j *judgement, req approval.Request) (approval.Answer, error) {
	a := j.a
	if reg, ok := a.Session.Asker.(approval.Registrar); ok {
		defer reg.Register(req)()
	}
	_, presented := a.Session.Asker.(approval.Presenter)
	ic.o.Notify(Notice{Kind: "approval_requested", Session: a.Session.ID, Request: &req, Presented: presented})
	if a.Session.Asker == nil {
		return approval.Answer{}, ic.deferAction(ctx, j, req, approval.ErrNoFrontend.Error())
	}
	actx, cancel := context.WithTimeout(ctx, j.p.ApprovalTimeout)
	ans, err := a.Session.Asker.Ask(actx, req)
	timedOut := actx.Err() != nil
	cancel()
	if ctx.Err() != nil {
		// The turn itself was cancelled: nobody is waiting for this action.
		return approval.Answer{}, &DeniedError{Step: StepApproval, Reason: "cancelled while waiting for approval"}
	}
	if err != nil || timedOut {
		reason := "no answer within the approval timeout"
		if err != nil && !timedOut {
			reason = "the frontend could not ask: " + err.Error()
		}
		return approval.Answer{}, ic.deferAction(ctx, j, req, reason)
	}
	return ans, nil
}

// request builds what the human sees.
func (ic *Interceptor) request(j *judgement) approval.Request {
	a := j.a
	reason := "no token or allowance covers it in " + string(stricter(a.Session.Mode, j.p.Mode)) + " mode"
	if a.Kind == Execute && j.analysis.IsDynamic() {
		reason = "the command cannot be fully checked: " + strings.Join(j.analysis.Dynamic, "; ")
	} else if !j.inside && a.Kind != Execute && a.Kind != Network && a.Kind != MCPTool && a.Kind != Capsule {
		reason = "it is outside the workspace"
	}
	if a.Session.HookAsk != "" {
		reason = "a hook asks for your decision: " + a.Session.HookAsk
	}
	return approval.Request{
		ID:        newID(),
		SessionID: a.Session.ID,
		Principal: a.Session.Principal,
		Workspace: a.Session.Workspace,
		Kind:      string(a.Kind),
		Resource:  a.Resource,
		Risk:      a.Risk.String(),
		Reason:    reason,
		Pattern:   a.Resource,
		Summary:   a.Summary,
		Dynamic:   a.Kind == Execute && j.analysis.IsDynamic(),
		CreatedAt: ic.o.Now().UTC(),
	}
}

func orMode(m Mode) Mode {
	if m == "" {
		return Safe
	}
	return m
}

// deferAction stores the action in the deferred queue and audits it. The
// returned error is a *DeferredError, or a *DeniedError if it could not be
// stored (then it is simply refused).
func (ic *Interceptor) deferAction(ctx context.Context, j *judgement, req approval.Request, reason string) error {
	a := j.a
	blob, err := json.Marshal(a)
	if err == nil {
		err = ic.o.Deferred.PutDeferred(ctx, approval.Deferred{ID: req.ID, SessionID: a.Session.ID, Request: req, Action: blob, CreatedAt: req.CreatedAt})
	}
	if err != nil {
		ic.o.Logger.Error("could not defer an approval; action denied", "session", a.Session.ID, "err", err)
		return &DeniedError{Step: StepApproval, Reason: "nobody answered and the action could not be queued"}
	}
	j.proof.Approval = "deferred:" + req.ID
	if r, err := ic.o.Audit.Append(ctx, ic.entry(j, audit.Deferred, reason)); err == nil {
		ic.o.Notify(Notice{Kind: "audit_entry", Session: a.Session.ID, Seq: r.Seq})
	} else {
		ic.o.Logger.Error("audit append failed for a deferred action", "id", req.ID, "err", err)
	}
	ic.o.Notify(Notice{Kind: "deferred", Session: a.Session.ID, Request: &req, Deferred: req.ID})
	return &DeferredError{ID: req.ID, Reason: reason}
}

// remember turns an allowing answer into an allowance or a token.
func (ic *Interceptor) remember(ctx context.Context, j *judgement, ans approval.Answer, rec audit.Receipt) error {
	a := j.a
	if a.AlwaysAsk {
		return nil // the answer covers this call only
	}
	if a.Kind == Execute && j.analysis.IsDynamic() && ans.Decision != approval.AllowOnce && ans.Decision != approval.AllowAlways {
		// NOTE: allowances never cover dynamic commands; the answer
		// allows this one run only.
		return nil
	}
	perm, err := capability.ParsePermissions(a.Kind.Permission())
	if err != nil {
		return err
	}
	approvalHash := hex.EncodeToString(rec.Hash[:])
	switch ans.Decision {
	case approval.AllowSession, approval.AllowWorkspace:
		al := approval.Allowance{ID: newID(), Scope: approval.ScopeSession, Binding: a.Session.ID, Pattern: a.Resource,
			Permission: perm, CreatedAt: ic.o.Now().UTC(), Approval: approvalHash}
		if ans.Decision == approval.AllowWorkspace {
			if a.Session.Workspace == "" {
				return errors.New("allow workspace: the session has no workspace")
			}
			al.Scope, al.Binding = approval.ScopeWorkspace, a.Session.Workspace
		}
		return ic.o.Allowances.Add(ctx, al)
	case approval.AllowAlways:
		tok, _, err := ic.o.Tokens.Issue(ctx, capability.Grant{
			Principal:    a.Session.Principal,
			Resource:     a.Resource,
			Permissions:  perm,
			TTL:          j.p.TokenTTL,
			Scope:        capability.ScopePersistent,
			AllowDynamic: a.Kind == Execute && j.analysis.IsDynamic(),
			Approval:     rec.Hash[:],
		})
		if err == nil {
			ic.o.Notify(Notice{Kind: "capability_granted", Session: a.Session.ID, Decision: &DecisionNotice{Allowed: true, TokenID: tok.ID.String(), Kind: string(a.Kind), Resource: tok.Resource}})
		}
		return err
	}
	return nil
}

// deny audits a refusal and returns the error to give the caller. If the
// audit append fails the action stays denied; the error says so.
func (ic *Interceptor) deny(ctx context.Context, j *judgement, err error) error {
	var de *DeniedError
	text := err.Error()
	if errors.As(err, &de) && j.proof.Rule == "" && de.Rule != "" {
		j.proof.Rule = de.Rule
	}
	if !errors.As(err, &de) {
		// A store or other internal failure: the model sees a generic
		// reason, the log the detail.
		ic.o.Logger.Error("interceptor failure; action denied", "session", j.a.Session.ID, "resource", j.a.Resource, "err", err)
		de = &DeniedError{Step: StepAuthority, Reason: "internal error while checking authority"}
		err = de
	}
	if rec, aerr := ic.o.Audit.Append(ctx, ic.entry(j, audit.Denied, text)); aerr != nil {
		ic.o.Logger.Error("audit append failed for a denial", "session", j.a.Session.ID, "err", aerr)
	} else {
		ic.o.Notify(Notice{Kind: "audit_entry", Session: j.a.Session.ID, Seq: rec.Seq})
	}
	ic.o.Notify(Notice{Kind: "decision", Session: j.a.Session.ID, Decision: &DecisionNotice{Step: de.Step, Rule: de.Rule, Kind: string(j.a.Kind), Resource: j.a.Resource}})
	return err
}

// entry builds a decision entry.
func (ic *Interceptor) entry(j *judgement, d audit.Decision, text string) audit.Entry {
	a := j.a
	for _, note := range []string{a.Session.HookNote, hookAskNote(a.Session.HookAsk)} {
		if note == "" {
			continue
		}
		if text != "" {
			text += "; "
		}
		text += note
	}
	e := baseEntry(a, audit.TypeDecision, text)
	e.Decision, e.Proof = d, j.proof
	return e
}

// hookAskNote is the audit text of a hook's question ("" for none).
func hookAskNote(ask string) string {
	if ask == "" {
		return ""
	}
	return "the human was asked because " + ask
}

// baseEntry fills the fields every entry about an action has, each cut to
// its bound (argsHash still binds the whole action).
func baseEntry(a Action, t audit.Type, text string) audit.Entry {
	return audit.Entry{
		Type:      t,
		Session:   audit.Clip(a.Session.ID, audit.MaxSession),
		Principal: audit.Clip(a.Session.Principal, audit.MaxPrincipal),
		Frontend:  audit.Clip(a.Session.Frontend, audit.MaxFrontend),
		Action:    audit.Action{Kind: audit.Clip(string(a.Kind), audit.MaxKind), Resource: audit.Clip(a.Resource, audit.MaxResource), ArgsHash: argsHash(a)},
		Text:      audit.ClipText(text),
	}
}

// argsHash binds the full action (kind, resource, arguments) to the entry,
// so a clipped resource still names exactly one action.
func argsHash(a Action) [32]byte {
	return audit.ActionHash(string(a.Kind), a.Resource, a.Args)
}

func (ic *Interceptor) warn(session string, warns []budget.Warning) {
	for i := range warns {
		ic.o.Notify(Notice{Kind: "budget_warning", Session: session, Warning: &warns[i]})
	}
}

// outcome appends the outcome entry of a decision.
func (ic *Interceptor) outcome(ctx context.Context, a Action, rec audit.Receipt, st audit.Status, output []byte, text string) error {
	e := baseEntry(a, audit.TypeOutcome, text)
	e.Ref, e.Status = audit.Ref{Seq: rec.Seq, Hash: rec.Hash}, st
	if output != nil {
		e.OutputHash = audit.HashBytes(output)
	}
	r, err := ic.o.Audit.Append(ctx, e)
	if err == nil {
		ic.o.Notify(Notice{Kind: "audit_entry", Session: a.Session.ID, Seq: r.Seq})
	}
	return err
}

// Finish records the outcome of the permitted action: runErr nil means it
// succeeded with output; cost is the real cost to charge (negative charges
// the reservation). It returns an error only if the outcome could not be
// audited. Calls after the first do nothing.
func (p *Permit) Finish(ctx context.Context, runErr error, output []byte, cost budget.Micros) error {
	if !p.finished.CompareAndSwap(false, true) {
		return nil
	}
	warns := p.res.Commit(cost)
	p.ic.warn(p.Action.Session.ID, warns)
	st, text := audit.Success, ""
	if runErr != nil {
		st, text = audit.Failure, runErr.Error()
	}
	// The outcome must reach the log even if the turn was cancelled.
	return p.ic.outcome(context.WithoutCancel(ctx), p.Action, p.Decision, st, output, text)
}

// Executor runs an action that has a Permit. Implementations are the only
// code that touches files, processes, the network or plugins, and they are
// reached only through Interceptor.Run.
type Executor interface {
	Execute(ctx context.Context, a Action) ([]byte, error)
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(ctx context.Context, a Action) ([]byte, error)

// Execute calls f.
func (f ExecutorFunc) Execute(ctx context.Context, a Action) ([]byte, error) { return f(ctx, a) }

// Run intercepts a and, if permitted, executes it and records the outcome.
// The error is the interceptor's refusal (*DeniedError, *DeferredError), or
// the executor's error.
func (ic *Interceptor) Run(ctx context.Context, a Action, ex Executor) ([]byte, error) {
	return ic.run(ctx, a, nil, ex)
}

func (ic *Interceptor) run(ctx context.Context, a Action, pre *approval.Answer, ex Executor) ([]byte, error) {
	p, err := ic.intercept(ctx, a, pre)
	if err != nil {
		return nil, err
	}
	out, runErr := ex.Execute(ctx, p.Action)
	if ferr := p.Finish(ctx, runErr, out, -1); ferr != nil && runErr == nil {
		ic.o.Logger.Error("audit append of an outcome failed", "session", a.Session.ID, "err", ferr)
	}
	return out, runErr
}

// Resolve records a human's late answer to a deferred action, from any
// frontend or the CLI. Only the first answer counts; later ones get
// approval.ErrAlreadyResolved. The answer is audited.
func (ic *Interceptor) Resolve(ctx context.Context, id string, ans approval.Answer) (approval.Deferred, error) {
	if !ans.Decision.Valid() {
		return approval.Deferred{}, fmt.Errorf("unknown answer %q", ans.Decision)
	}
	d, err := ic.o.Deferred.ResolveDeferred(ctx, id, ans, ic.o.Now().UTC())
	if err != nil {
		return d, err
	}
	var a Action
	if err := json.Unmarshal(d.Action, &a); err != nil {
		return d, fmt.Errorf("deferred %s: bad action record: %w", id, err)
	}
	j := &judgement{a: a, proof: audit.Proof{Approval: "deferred:" + id + ":" + string(ans.Decision)}}
	dec := audit.Denied
	if ans.Decision.Allows() {
		dec = audit.Deferred // approved, not yet run: the run is its own decision
	}
	rec, err := ic.o.Audit.Append(ctx, ic.entry(j, dec, "deferred approval answered by "+ans.By))
	if err != nil {
		return d, fmt.Errorf("audit: %w", err)
	}
	ic.o.Notify(Notice{Kind: "audit_entry", Session: d.SessionID, Seq: rec.Seq})
	ic.o.Notify(Notice{Kind: "approval_resolved", Session: d.SessionID, Request: &d.Request, Answer: &ans, Deferred: id})
	return d, nil
}

// RunDeferred runs an approved deferred action exactly once: it claims it
// (a second call, from any process, gets approval.ErrAlreadyResolved),
// judges it again under the current policy and budget, with the human's
// answer in place of steps 2 and 4, executes it and records the result.
func (ic *Interceptor) RunDeferred(ctx context.Context, id string, ex Executor) ([]byte, error) {
	return ic.ReplayDeferred(ctx, id, func(Action) (Executor, error) { return ex, nil })
}

// RuleDeferredChanged is the audit rule of an approved deferred action
// that was refused because it can no longer be run as it was approved
// (see ReplayDeferred).
const RuleDeferredChanged = "deferred_changed"

// ReplayDeferred is RunDeferred for a runner that makes the call again:
// once it has claimed approved action id, it hands the stored action to
// prepare, which returns the executor of that very action, or an error
// saying why it cannot run it as approved (the tool is gone, or preparing
// the call again gives another action). Such a refusal is audited as a
// denial (StepApproval, RuleDeferredChanged, or the *DeniedError prepare
// returned) and recorded as the action's result; nothing runs, then or
// later, and the *DeniedError is returned.
func (ic *Interceptor) ReplayDeferred(ctx context.Context, id string, prepare func(Action) (Executor, error)) ([]byte, error) {
	d, err := ic.o.Deferred.ClaimDeferred(ctx, id)
	if err != nil {
		return nil, err
	}
	var a Action
	if err := json.Unmarshal(d.Action, &a); err != nil {
		ic.finishDeferred(ctx, id, "not run: bad action record")
		return nil, fmt.Errorf("deferred %s: bad action record: %w", id, err)
	}
	if d.Answer == nil {
		ic.finishDeferred(ctx, id, "not run: no answer recorded")
		return nil, fmt.Errorf("deferred %s: approved without an answer", id)
	}
	ex, err := prepare(a)
	if err == nil && ex == nil {
		err = errors.New("no executor")
	}
	if err != nil {
		ic.finishDeferred(ctx, id, "not run: "+err.Error())
		j := &judgement{a: a, proof: audit.Proof{Approval: "deferred:" + id + ":" + string(d.Answer.Decision)}}
		de := &DeniedError{Step: StepApproval, Rule: RuleDeferredChanged, Reason: err.Error()}
		errors.As(err, &de) // prepare's own refusal (a hook's block) stands as it is
		return nil, ic.deny(context.WithoutCancel(ctx), j, de)
	}
	out, err := ic.run(ctx, a, d.Answer, ex)
	result := "done"
	if err != nil {
		result = "error: " + err.Error()
	}
	ic.finishDeferred(ctx, id, result)
	return out, err
}

func (ic *Interceptor) finishDeferred(ctx context.Context, id, result string) {
	if err := ic.o.Deferred.FinishDeferred(context.WithoutCancel(ctx), id, result); err != nil {
		ic.o.Logger.Error("could not record the result of a deferred action", "id", id, "err", err)
	}
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never returns an error on Linux
	}
	return hex.EncodeToString(b[:])
}
