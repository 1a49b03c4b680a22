package config

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// leafPatterns lists every leaf of t as a field pattern.
func leafPatterns(t reflect.Type, prefix []string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		p := append(prefix[:len(prefix):len(prefix)], tagName(f))
		switch {
		case f.Type.Kind() == reflect.Struct:
			out = append(out, leafPatterns(f.Type, p)...)
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
			out = append(out, leafPatterns(f.Type.Elem(), append(p, "*"))...)
		default:
			out = append(out, strings.Join(p, "."))
		}
	}
	return out
}

func TestFieldsCoverConfig(t *testing.T) {
	got := sortedKeys(fields)
	want := leafPatterns(configType, nil)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields table and Config differ (-Config +fields):\n%s", diff)
	}
	for pat, f := range fields {
		if f.check == nil {
			t.Errorf("%s has no check", pat)
		}
		if f.ws == wsStricter && len(f.order) < 2 {
			t.Errorf("%s is wsStricter without an order", pat)
		}
		if f.zeroUnlimited && f.ws != wsLower {
			t.Errorf("%s: zeroUnlimited only applies to wsLower", pat)
		}
	}
}

// TestDefaultsSetEveryKey checks that the embedded defaults set every key
// except those inside maps, so every key has an origin and a base value for
// the workspace rules.
func TestDefaultsSetEveryKey(t *testing.T) {
	var errs errorList
	doc := decodeLayer(LayerDefault, defaultsFile, defaultsTOML, expandEnv, nil, &errs)
	if len(errs.errs) > 0 {
		t.Fatalf("defaults do not validate:\n%v", errs.errs)
	}
	got := map[string]bool{}
	for _, e := range doc.entries {
		got[e.pattern] = true
	}
	for pat := range fields {
		if !got[pat] && !strings.Contains(pat, "*") {
			t.Errorf("defaults.toml does not set %s", pat)
		}
	}
}

// TestWorkspaceRules pins the workspace rule of every key to the list in
// the package documentation. Changing a rule must change both.
func TestWorkspaceRules(t *testing.T) {
	want := map[rule][]string{
		wsLower: {
			"model.max_tokens", "model.context_window",
			"runtime.max_context_tokens", "runtime.max_turn_iterations",
			"security.approval_timeout_secs", "security.allow_always_ttl_secs",
			"security.token_clock_skew_secs", "security.policy.max_argument_size",
			"budget.session_max_usd", "budget.per_action_max_usd", "budget.workspace_max_usd", "budget.warn_at_percent",
			"rate_limits.requests_per_minute", "rate_limits.tool_calls_per_minute",
			"audit.checkpoint_interval_secs", "hooks.timeout_secs",
			"timeouts.tool_secs", "timeouts.shell_secs", "timeouts.llm_request_secs", "timeouts.mcp_request_secs",
			"subagents.max_concurrent", "subagents.max_depth", "subagents.timeout_secs",
			"retry.max_attempts", "capsules.max_memory_mb", "capsules.timeout_secs",
		},
		wsUnion: {
			"security.policy.blocked_commands", "security.policy.denied_paths",
			"security.policy.denied_hosts", "workspace.never_allow",
		},
		wsSubset: {
			"security.policy.allowed_hosts", "workspace.auto_allow_read", "workspace.auto_allow_write", "hooks.allowed_hosts",
		},
		wsStricter:  {"workspace.mode", "workspace.escape_policy"},
		wsTrueOnly:  {"security.policy.require_approval_for_delete", "security.policy.require_approval_for_network"},
		wsFalseOnly: {"git.allow_push", "git.allow_force_push"},
	}
	got := map[rule][]string{}
	for _, pat := range sortedKeys(fields) {
		r := fields[pat].ws
		if r == wsDeny || r == wsServer {
			continue
		}
		got[r] = append(got[r], pat)
	}
	for r := range want {
		sort.Strings(want[r])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("workspace rules changed (-documented +fields):\n%s", diff)
	}
	for _, pat := range sortedKeys(fields) {
		if strings.HasPrefix(pat, "servers.") != (fields[pat].ws == wsServer) {
			t.Errorf("%s: only server fields use wsServer", pat)
		}
	}
	if r := fields["workspace.mode"].order; !cmp.Equal(r, []string{"autonomous", "guided", "safe"}) {
		t.Errorf("workspace.mode order = %v", r)
	}
	if r := fields["workspace.escape_policy"].order; !cmp.Equal(r, []string{"ask", "deny"}) {
		t.Errorf("workspace.escape_policy order = %v", r)
	}
	for _, pat := range []string{"budget.workspace_max_usd", "rate_limits.requests_per_minute", "rate_limits.tool_calls_per_minute"} {
		if !fields[pat].zeroUnlimited {
			t.Errorf("%s: 0 means unlimited", pat)
		}
	}
}
