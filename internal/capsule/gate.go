package capsule

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/sdk"
)

// RuleGrant is the audit rule of a host call refused because the capsule
// did not declare, or the user did not grant, what it asked for.
const RuleGrant = "capsule_grant"

// RuleLimit is the audit rule of a host call refused by a size, count or
// rate limit of the capsule runtime.
const RuleLimit = "capsule_limit"

// StepCapsule names the capsule runtime in a *security.DeniedError.
const StepCapsule = "capsule"

// refuse records in the audit log a host call the capsule runtime refused
// before the interceptor (undeclared capability, path outside the granted
// roots, undeclared host, a limit) and returns the *security.DeniedError
// the guest sees. The refusal stands whether or not the entry could be
// appended.
//
// NOTE: these refusals never reach the interceptor, so nobody is asked:
// a capsule can only ever get what its manifest declared and the user
// granted at install. They are audited here, as decision entries with the
// same fields the interceptor writes, so that every refusal is in the log.
func (cs *callState) refuse(ctx context.Context, kind security.Kind, resource string, args []byte, rule, reason string) error {
	m := cs.c.m
	reason = fmt.Sprintf("capsule %s: %s", cs.c.id, reason)
	e := audit.Entry{
		Type:      audit.TypeDecision,
		Session:   audit.ClipUTF8(cs.sess.ID, audit.MaxSession),
		Principal: audit.ClipUTF8(cs.sess.Principal, audit.MaxPrincipal),
		Frontend:  audit.ClipUTF8(cs.sess.Frontend, audit.MaxFrontend),
		Action:    audit.Action{Kind: string(kind), Resource: audit.ClipUTF8(resource, audit.MaxResource), ArgsHash: audit.ActionHash(string(kind), resource, args)},
		Decision:  audit.Denied,
		Proof:     audit.Proof{Rule: rule},
		Text:      audit.ClipText(strings.ToValidUTF8(reason, "\uFFFD")),
	}
	if _, err := m.audit.Append(context.WithoutCancel(ctx), e); err != nil {
		m.log.Error("audit append failed for a capsule refusal", "capsule", cs.c.id, "err", err)
	}
	m.log.Warn("capsule host call refused", "capsule", cs.c.id, "session", cs.sess.ID, "rule", rule, "reason", reason)
	return &security.DeniedError{Step: StepCapsule, Rule: rule, Reason: reason}
}

// capsuleAction builds the action of a capsule-scoped host call (kv, ipc,
// uplink, cron, elicit) or entry point: kind capsule, resource
// capsule://<id>/<capability>.
func (cs *callState) capsuleAction(capability string, args any, summary string) (security.Action, error) {
	return capsuleAction(cs.c.id, cs.sess, capability, args, summary)
}

func capsuleAction(id string, s security.Session, capability string, args any, summary string) (security.Action, error) {
	uri, err := security.CapsuleURI(id, capability)
	if err != nil {
		return security.Action{}, err
	}
	var raw []byte
	switch v := args.(type) {
	case json.RawMessage:
		raw = append([]byte(nil), v...)
	default:
		if raw, err = json.Marshal(v); err != nil {
			return security.Action{}, err
		}
	}
	return security.Action{Kind: security.Capsule, Resource: uri, Args: raw, Session: s, Summary: "Capsule " + id + ": " + summary}, nil
}

// gated runs do as a capsule-scoped action through the interceptor, after
// checking the capability was declared and granted (declared false
// refuses without asking).
func (cs *callState) gated(ctx context.Context, capability string, declared bool, args any, summary string, do func(ctx context.Context) ([]byte, error)) ([]byte, error) {
	a, err := cs.capsuleAction(capability, args, summary)
	if err != nil {
		return nil, hostErrf(sdk.StatusInvalid, "%v", err)
	}
	if !declared {
		return nil, cs.refuse(ctx, a.Kind, a.Resource, a.Args, RuleGrant, capability+" was not declared in Capsule.toml or not granted at install")
	}
	return cs.run(ctx, a, security.ExecutorFunc(func(ctx context.Context, _ security.Action) ([]byte, error) {
		return do(ctx)
	}))
}
