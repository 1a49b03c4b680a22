package config

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLayerOrder(t *testing.T) {
	res := layers{
		system: s("[budget]\nsession_max_usd = 50\nper_action_max_usd = 5\n[logging]\nlevel = \"warn\"\n"),
		user:   s("[budget]\nsession_max_usd = 70\n[security.policy]\nblocked_commands = [\"sudo\"]\n"),
	}.mustRun(t)
	c := res.Config
	if c.Budget.SessionMaxUSD != 70 || c.Budget.PerActionMaxUSD != 5 || c.Logging.Level != "warn" || c.Budget.WarnAtPercent != 80 {
		t.Errorf("budget %+v, logging %+v", c.Budget, c.Logging)
	}
	// A list set by a layer replaces the lower one.
	if diff := cmp.Diff([]string{"sudo"}, c.Security.Policy.BlockedCommands); diff != "" {
		t.Error(diff)
	}
	wantOrigins := map[string]Layer{
		"budget.session_max_usd":           LayerUser,
		"budget.per_action_max_usd":        LayerSystem,
		"logging.level":                    LayerSystem,
		"budget.warn_at_percent":           LayerDefault,
		"security.policy.blocked_commands": LayerUser,
	}
	for k, want := range wantOrigins {
		if got := res.Origins[k]; got != want {
			t.Errorf("origin of %s = %q, want %q", k, got, want)
		}
	}
	serverLeaves := 0
	for _, p := range leafPatterns(configType, nil) {
		if strings.HasPrefix(p, "servers.") {
			serverLeaves++
		}
	}
	if len(res.Origins) != len(leafPatterns(configType, nil))-serverLeaves {
		t.Errorf("%d origins; want one per leaf (no servers, one pricing entry)", len(res.Origins))
	}
	wantLayers := []LayerInfo{
		{Name: LayerDefault, Path: defaultsFile, Exists: true},
		{Name: LayerSystem, Path: sysFile, Exists: true},
		{Name: LayerUser, Path: userFile, Exists: true},
		{Name: LayerWorkspace, Path: wsFile},
	}
	if diff := cmp.Diff(wantLayers, res.Layers); diff != "" {
		t.Errorf("layers (-want +got):\n%s", diff)
	}
}

func TestMapsMergeByName(t *testing.T) {
	res := layers{
		system: s("[servers.fs]\ntransport = \"stdio\"\ncommand = \"fs-mcp\"\nargs = [\"/srv\"]\n[model.pricing.\"gpt-4.1\"]\ninput_per_mtok = 2\n"),
		user:   s("[servers.fs]\nauto_start = true\n[servers.web]\ntransport = \"streamable-http\"\nurl = \"https://mcp.example.com/\"\ntrusted = true\n"),
	}.mustRun(t)
	want := map[string]Server{
		"fs":  {Transport: "stdio", Command: "fs-mcp", Args: []string{"/srv"}, Env: map[string]string{}, AutoStart: true, RestartPolicy: "never", OAuth: ServerOAuth{Scopes: []string{}}},
		"web": {Transport: "streamable-http", URL: "https://mcp.example.com/", Args: []string{}, Env: map[string]string{}, Trusted: true, RestartPolicy: "never", OAuth: ServerOAuth{Scopes: []string{}}},
	}
	if diff := cmp.Diff(want, res.Config.Servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if got := res.Config.Model.Pricing["gpt-4.1"]; got != (Pricing{InputPerMTok: 2}) {
		t.Errorf("pricing = %+v", got)
	}
	if len(res.Config.Model.Pricing) != 2 {
		t.Errorf("pricing has %d models, want the default one plus gpt-4.1", len(res.Config.Model.Pricing))
	}
	if o := res.Origins[`servers.fs.auto_start`]; o != LayerUser {
		t.Errorf("origin %q", o)
	}
	if o := res.Origins[`servers.fs.restart_policy`]; o != LayerDefault {
		t.Errorf("origin %q", o)
	}
	if o := res.Origins[`model.pricing."gpt-4.1".input_per_mtok`]; o != LayerSystem {
		t.Errorf("origin %q", o)
	}
}

func TestEnvFill(t *testing.T) {
	keys := map[string]string{
		"ANTHROPIC_API_KEY":  "sk-ant-1",
		"ANTHROPIC_BASE_URL": "https://anthropic.proxy",
		"OPENAI_API_KEY":     "sk-oai-1",
		"OPENAI_BASE_URL":    "https://openai.proxy/v1",
		"ZAI_API_KEY":        "zai-1",
		"TELEGRAM_BOT_TOKEN": "123:abc",
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range keys {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	type want struct {
		provider, model, key, url string
		origins                   map[string]Layer
	}
	tests := []struct {
		name string
		l    layers
		want want
	}{
		{"defaults pick anthropic", layers{env: keys}, want{"anthropic", "claude-sonnet-4-5", "sk-ant-1", "https://anthropic.proxy",
			map[string]Layer{"model.provider": LayerDefault, "model.api_key": "env:ANTHROPIC_API_KEY", "model.api_url": "env:ANTHROPIC_BASE_URL", "telegram.bot_token": "env:TELEGRAM_BOT_TOKEN"}}},
		{"env provider selects its key", layers{env: with(map[string]string{"ASTRID_MODEL_PROVIDER": "openai", "ASTRID_MODEL": "gpt-4.1"})}, want{"openai", "gpt-4.1", "sk-oai-1", "https://openai.proxy/v1",
			map[string]Layer{"model.provider": "env:ASTRID_MODEL_PROVIDER", "model.model": "env:ASTRID_MODEL", "model.api_key": "env:OPENAI_API_KEY"}}},
		{"file provider selects its key", layers{user: s("[model]\nprovider = \"zai\"\nmodel = \"glm-4.6\"\n"), env: with(map[string]string{"ASTRID_MODEL_PROVIDER": "openai", "ASTRID_MODEL": "gpt-4.1"})}, want{"zai", "glm-4.6", "zai-1", "",
			map[string]Layer{"model.provider": LayerUser, "model.model": LayerUser, "model.api_key": "env:ZAI_API_KEY", "model.api_url": LayerDefault}}},
		{"files win over env", layers{system: s("[model]\napi_key = \"from-file\"\napi_url = \"https://file.example\"\n[telegram]\nbot_token = \"9:file\"\n"), env: keys}, want{"anthropic", "claude-sonnet-4-5", "from-file", "https://file.example",
			map[string]Layer{"model.api_key": LayerSystem, "telegram.bot_token": LayerSystem}}},
		{"claude alias", layers{user: s("[model]\nprovider = \"claude\"\n"), env: keys}, want{"claude", "claude-sonnet-4-5", "sk-ant-1", "https://anthropic.proxy", nil}},
		{"replay takes no key", layers{user: s("[model]\nprovider = \"replay\"\n"), env: keys}, want{"replay", "claude-sonnet-4-5", "", "", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.l.mustRun(t)
			m := res.Config.Model
			got := want{m.Provider, m.Model, m.APIKey, m.APIURL, nil}
			w := tt.want
			w.origins = nil
			if diff := cmp.Diff(w, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for k, o := range tt.want.origins {
				if res.Origins[k] != o {
					t.Errorf("origin of %s = %q, want %q", k, res.Origins[k], o)
				}
			}
		})
	}

	_, errs := layers{env: map[string]string{"ASTRID_MODEL_PROVIDER": "gemini", "ANTHROPIC_BASE_URL": "not a url"}}.run(t)
	wantErrs := Errors{
		{File: "env:ASTRID_MODEL_PROVIDER", Key: "model.provider", Msg: `"gemini" is not one of anthropic, claude, openai, zai, replay`},
		{File: "env:ANTHROPIC_BASE_URL", Key: "model.api_url", Msg: "URL scheme must be http or https"},
	}
	if diff := cmp.Diff(wantErrs, errs); diff != "" {
		t.Errorf("env errors (-want +got):\n%s", diff)
	}
	_, errs = layers{env: map[string]string{"ANTHROPIC_API_KEY": "sk ant\nX-Injected: 1"}}.run(t)
	if len(errs) != 1 || errs[0].File != "env:ANTHROPIC_API_KEY" || strings.Contains(errs[0].Error(), "Injected") {
		t.Errorf("bad env api key: %v", errs)
	}
}

// wsCase is a workspace trying to change one key over a base config.
type wsCase struct {
	name      string
	user      string // base user layer, optional
	workspace string
	wantErr   string // substring of the one expected error; "" means success
	check     func(t *testing.T, c *Config)
}

func runWSCases(t *testing.T, cases []wsCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			l := layers{workspace: s(tt.workspace)}
			if tt.user != "" {
				l.user = s(tt.user)
			}
			res, errs := l.run(t)
			if tt.wantErr == "" {
				if errs != nil {
					t.Fatalf("unexpected errors:\n%v", errs)
				}
				if tt.check != nil {
					tt.check(t, res.Config)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr) {
				t.Fatalf("errors = %v\nwant one containing %q", errs, tt.wantErr)
			}
			if errs[0].File != wsFile || errs[0].Line == 0 {
				t.Errorf("error %v does not point into the workspace file", errs[0])
			}
		})
	}
}

func TestWorkspaceLower(t *testing.T) {
	runWSCases(t, []wsCase{
		{name: "lower session budget", workspace: "[budget]\nsession_max_usd = 20\n",
			check: func(t *testing.T, c *Config) {
				if c.Budget.SessionMaxUSD != 20 {
					t.Errorf("session_max_usd = %v", c.Budget.SessionMaxUSD)
				}
			}},
		{name: "equal is fine", workspace: "[budget]\nsession_max_usd = 100.0\n"},
		{name: "raise session budget", workspace: "[budget]\nsession_max_usd = 500\n",
			wantErr: "budget.session_max_usd: 500.0 is higher than 100.0 from the defaults: the workspace layer can only lower it"},
		{name: "raise over the user value", user: "[budget]\nper_action_max_usd = 2\n", workspace: "[budget]\nper_action_max_usd = 3\n",
			wantErr: "budget.per_action_max_usd: 3.0 is higher than 2.0 from user config " + userFile},
		{name: "workspace budget over unlimited base", workspace: "[budget]\nworkspace_max_usd = 25\n",
			check: func(t *testing.T, c *Config) {
				if c.Budget.WorkspaceMaxUSD != 25 {
					t.Errorf("workspace_max_usd = %v", c.Budget.WorkspaceMaxUSD)
				}
			}},
		{name: "workspace budget to unlimited", user: "[budget]\nworkspace_max_usd = 25\n", workspace: "[budget]\nworkspace_max_usd = 0\n",
			wantErr: "0 (unlimited) would loosen 25.0"},
		{name: "workspace budget raised", user: "[budget]\nworkspace_max_usd = 25\n", workspace: "[budget]\nworkspace_max_usd = 30\n",
			wantErr: "30.0 is higher than 25.0"},
		{name: "rate limit from unlimited", workspace: "[rate_limits]\nrequests_per_minute = 60\n"},
		{name: "rate limit to unlimited", user: "[rate_limits]\ntool_calls_per_minute = 10\n", workspace: "[rate_limits]\ntool_calls_per_minute = 0\n",
			wantErr: "rate_limits.tool_calls_per_minute: 0 (unlimited) would loosen 10"},
		{name: "approval timeout up", workspace: "[security]\napproval_timeout_secs = 301\n", wantErr: "301 is higher than 300"},
		{name: "allow always ttl up", workspace: "[security]\nallow_always_ttl_secs = 7200\n", wantErr: "7200 is higher than 3600"},
		{name: "allow always ttl down", workspace: "[security]\nallow_always_ttl_secs = 60\n",
			check: func(t *testing.T, c *Config) {
				if c.Security.AllowAlwaysTTLSecs != 60 {
					t.Errorf("ttl = %d", c.Security.AllowAlwaysTTLSecs)
				}
			}},
		{name: "capsule memory up", user: "[capsules]\nmax_memory_mb = 32\n", workspace: "[capsules]\nmax_memory_mb = 64\n", wantErr: "64 is higher than 32"},
	})
}

// TestWorkspaceLowerEveryKey raises every lower-only key by one over its
// default and expects exactly that error, then lowers it and expects it to
// stick.
func TestWorkspaceLowerEveryKey(t *testing.T) {
	base := defaultConfig(t)
	for _, pat := range sortedKeys(fields) {
		f := fields[pat]
		if f.ws != wsLower {
			continue
		}
		t.Run(pat, func(t *testing.T) {
			cur := lookup(t, base, pat)
			// Use a base value of 4 (or 0.5) set by the user so that both a
			// higher and a lower value stay within the key's range.
			var baseVal, up, down, least string
			switch cur.(type) {
			case int64:
				baseVal, up, down, least = "4", "5", "3", "1"
			case float64:
				baseVal, up, down, least = "0.5", "0.75", "0.25", "0.1"
			}
			user := fmt.Sprintf("%s = %s\n", pat, baseVal)
			// Keep limits that must stay below this one out of the way.
			for _, p := range limitPairs {
				if p.upper == pat {
					user += fmt.Sprintf("%s = %s\n", p.lower, least)
				}
			}
			ws := fmt.Sprintf("%s = %s\n", pat, up)
			_, errs := layers{user: s(user), workspace: s(ws)}.run(t)
			if len(errs) != 1 || errs[0].Key != pat || !strings.Contains(errs[0].Msg, "can only lower it") {
				t.Fatalf("raising %s: %v", pat, errs)
			}
			r := layers{user: s(user), workspace: s(fmt.Sprintf("%s = %s\n", pat, down))}.mustRun(t)
			if got := fmt.Sprint(lookup(t, r.Config, pat)); got != strings.TrimSuffix(down, ".0") {
				t.Errorf("lowered %s = %s, want %s", pat, got, down)
			}
			if r.Origins[pat] != LayerWorkspace {
				t.Errorf("origin %q", r.Origins[pat])
			}
		})
	}
}

// lookup returns the value of a non-map leaf key in c.
func lookup(t *testing.T, c *Config, pat string) any {
	t.Helper()
	var found any
	for _, e := range configEntries(t, c) {
		if e.key == pat {
			found = e.val
		}
	}
	if found == nil {
		t.Fatalf("no key %s", pat)
	}
	return found
}

// configEntries round-trips c through WriteTOML and the decoder.
func configEntries(t *testing.T, c *Config) []*entry {
	t.Helper()
	var b strings.Builder
	if err := c.WriteTOML(&b, nil); err != nil {
		t.Fatal(err)
	}
	var errs errorList
	doc := decodeLayer(LayerUser, "x", []byte(b.String()), expandEnv, nil, &errs)
	if len(errs.errs) > 0 {
		t.Fatalf("WriteTOML output does not decode: %v", errs.errs)
	}
	return doc.entries
}

func TestWorkspaceUnion(t *testing.T) {
	runWSCases(t, []wsCase{
		{name: "blocked commands grow", workspace: "[security.policy]\nblocked_commands = [\"curl\", \"sudo\"]\n",
			check: func(t *testing.T, c *Config) {
				got := c.Security.Policy.BlockedCommands
				if got[0] != "sudo" || got[len(got)-1] != "curl" || strings.Count(strings.Join(got, " "), "sudo") != 1 {
					t.Errorf("blocked_commands = %v", got)
				}
			}},
		{name: "empty list cannot remove sudo", workspace: "[security.policy]\nblocked_commands = []\n",
			check: func(t *testing.T, c *Config) {
				if diff := cmp.Diff(defaultConfig(t).Security.Policy.BlockedCommands, c.Security.Policy.BlockedCommands); diff != "" {
					t.Errorf("blocked_commands changed:\n%s", diff)
				}
			}},
		{name: "denied paths grow", user: "[security.policy]\ndenied_paths = [\"/etc/**\"]\n", workspace: "[security.policy]\ndenied_paths = [\"~/.ssh/**\"]\n",
			check: func(t *testing.T, c *Config) {
				if diff := cmp.Diff([]string{"/etc/**", "~/.ssh/**"}, c.Security.Policy.DeniedPaths); diff != "" {
					t.Error(diff)
				}
			}},
		{name: "denied hosts grow", user: "[security.policy]\ndenied_hosts = [\"a.example\"]\n", workspace: "[security.policy]\ndenied_hosts = [\"b.example\"]\n",
			check: func(t *testing.T, c *Config) {
				if diff := cmp.Diff([]string{"a.example", "b.example"}, c.Security.Policy.DeniedHosts); diff != "" {
					t.Error(diff)
				}
			}},
		{name: "never allow grows", user: "[workspace]\nnever_allow = [\".env\"]\n", workspace: "[workspace]\nnever_allow = [\"secrets/**\"]\n",
			check: func(t *testing.T, c *Config) {
				if diff := cmp.Diff([]string{".env", "secrets/**"}, c.Workspace.NeverAllow); diff != "" {
					t.Error(diff)
				}
			}},
	})
}

func TestWorkspaceSubset(t *testing.T) {
	base := "[security.policy]\nallowed_hosts = [\"api.github.com\", \"pypi.org\"]\n[workspace]\nauto_allow_read = [\"src/**\", \"docs/**\"]\nauto_allow_write = [\"src/**\"]\n"
	runWSCases(t, []wsCase{
		{name: "allowed hosts shrink", user: base, workspace: "[security.policy]\nallowed_hosts = [\"pypi.org\"]\n",
			check: func(t *testing.T, c *Config) {
				if diff := cmp.Diff([]string{"pypi.org"}, c.Security.Policy.AllowedHosts); diff != "" {
					t.Error(diff)
				}
			}},
		{name: "allowed hosts grow", user: base, workspace: "[security.policy]\nallowed_hosts = [\"pypi.org\", \"evil.example\"]\n",
			wantErr: `security.policy.allowed_hosts: "evil.example" not in the list from user config`},
		{name: "allowed hosts over an empty base", workspace: "[security.policy]\nallowed_hosts = [\"evil.example\"]\n",
			wantErr: `"evil.example" not in the list from the defaults`},
		{name: "hook hosts grow", workspace: "[hooks]\nallowed_hosts = [\"evil.example\"]\n",
			wantErr: `hooks.allowed_hosts: "evil.example" not in the list from the defaults`},
		{name: "hook hosts shrink", user: "[hooks]\nallowed_hosts = [\"a.example\", \"b.example\"]\n", workspace: "[hooks]\nallowed_hosts = [\"b.example\"]\n",
			check: func(t *testing.T, c *Config) {
				if diff := cmp.Diff([]string{"b.example"}, c.Hooks.AllowedHosts); diff != "" {
					t.Error(diff)
				}
			}},
		{name: "auto allow read shrinks", user: base, workspace: "[workspace]\nauto_allow_read = [\"docs/**\"]\n",
			check: func(t *testing.T, c *Config) {
				if diff := cmp.Diff([]string{"docs/**"}, c.Workspace.AutoAllowRead); diff != "" {
					t.Error(diff)
				}
			}},
		{name: "auto allow read widens", user: base, workspace: "[workspace]\nauto_allow_read = [\"**\"]\n", wantErr: `workspace.auto_allow_read: "**" not in the list`},
		{name: "auto allow write widens", user: base, workspace: "[workspace]\nauto_allow_write = [\"src/**\", \"/home/**\"]\n", wantErr: `workspace.auto_allow_write: "/home/**" not in the list`},
		{name: "auto allow write emptied", user: base, workspace: "[workspace]\nauto_allow_write = []\n",
			check: func(t *testing.T, c *Config) {
				if len(c.Workspace.AutoAllowWrite) != 0 {
					t.Errorf("auto_allow_write = %v", c.Workspace.AutoAllowWrite)
				}
			}},
	})
}

func TestWorkspaceStricter(t *testing.T) {
	runWSCases(t, []wsCase{
		{name: "autonomous to guided", user: "[workspace]\nmode = \"autonomous\"\n", workspace: "[workspace]\nmode = \"guided\"\n",
			check: func(t *testing.T, c *Config) {
				if c.Workspace.Mode != "guided" {
					t.Errorf("mode %q", c.Workspace.Mode)
				}
			}},
		{name: "guided to safe", user: "[workspace]\nmode = \"guided\"\n", workspace: "[workspace]\nmode = \"safe\"\n"},
		{name: "safe to autonomous", workspace: "[workspace]\nmode = \"autonomous\"\n",
			wantErr: `workspace.mode: "autonomous" is looser than "safe" from the defaults`},
		{name: "guided to autonomous", user: "[workspace]\nmode = \"guided\"\n", workspace: "[workspace]\nmode = \"autonomous\"\n",
			wantErr: `"autonomous" is looser than "guided"`},
		{name: "ask to deny", workspace: "[workspace]\nescape_policy = \"deny\"\n",
			check: func(t *testing.T, c *Config) {
				if c.Workspace.EscapePolicy != "deny" {
					t.Errorf("escape_policy %q", c.Workspace.EscapePolicy)
				}
			}},
		{name: "deny to ask", user: "[workspace]\nescape_policy = \"deny\"\n", workspace: "[workspace]\nescape_policy = \"ask\"\n",
			wantErr: `workspace.escape_policy: "ask" is looser than "deny"`},
	})
}

func TestWorkspaceBooleans(t *testing.T) {
	runWSCases(t, []wsCase{
		{name: "require delete approval on", user: "[security.policy]\nrequire_approval_for_delete = false\n", workspace: "[security.policy]\nrequire_approval_for_delete = true\n",
			check: func(t *testing.T, c *Config) {
				if !c.Security.Policy.RequireApprovalForDelete {
					t.Error("still off")
				}
			}},
		{name: "require delete approval off", workspace: "[security.policy]\nrequire_approval_for_delete = false\n",
			wantErr: "security.policy.require_approval_for_delete: cannot turn off what the defaults turned on"},
		{name: "require network approval off", workspace: "[security.policy]\nrequire_approval_for_network = false\n",
			wantErr: "security.policy.require_approval_for_network: cannot turn off"},
		{name: "require network approval stays on", workspace: "[security.policy]\nrequire_approval_for_network = true\n"},
		{name: "git push off", user: "[git]\nallow_push = true\n", workspace: "[git]\nallow_push = false\n",
			check: func(t *testing.T, c *Config) {
				if c.Git.AllowPush {
					t.Error("still on")
				}
			}},
		{name: "git push on", workspace: "[git]\nallow_push = true\n", wantErr: "git.allow_push: cannot turn on what the defaults turned off"},
		{name: "git force push on", workspace: "[git]\nallow_force_push = true\n", wantErr: "git.allow_force_push: cannot turn on"},
	})
}

// TestWorkspaceDenyEveryKey sets every key the workspace may not touch, to
// its current value (not even a no-op is allowed), and expects one error per
// key.
func TestWorkspaceDenyEveryKey(t *testing.T) {
	base := defaultConfig(t)
	var denied []string
	for _, pat := range sortedKeys(fields) {
		if fields[pat].ws == wsDeny {
			denied = append(denied, pat)
		}
	}
	byTable := map[string][]string{}
	for _, e := range configEntries(t, base) {
		if fields[e.pattern].ws != wsDeny {
			continue
		}
		table := joinKey(e.path[:len(e.path)-1])
		byTable[table] = append(byTable[table], joinKey(e.path[len(e.path)-1:])+" = "+formatValue(e.val))
	}
	var ws strings.Builder
	for _, table := range sortedKeys(byTable) {
		fmt.Fprintf(&ws, "[%s]\n%s\n", table, strings.Join(byTable[table], "\n"))
	}
	_, errs := layers{workspace: s(ws.String())}.run(t)
	var got []string
	for _, e := range errs {
		if e.File != wsFile || e.Line == 0 || !strings.Contains(e.Msg, "the workspace layer cannot set this key") {
			t.Errorf("unexpected error %v", e)
		}
		p := e.Key
		if strings.HasPrefix(p, "model.pricing.") {
			p = "model.pricing.*." + p[strings.LastIndex(p, ".")+1:]
		}
		got = append(got, p)
	}
	sort.Strings(got)
	if diff := cmp.Diff(denied, got); diff != "" {
		t.Errorf("denied keys (-want +got):\n%s", diff)
	}
	for _, must := range []string{"model.api_key", "model.api_url", "keys.trusted_issuers", "capsules.allow_unhashed", "gateway.listen_addr", "telegram.bot_token", "discord.bot_token"} {
		if fields[must].ws != wsDeny {
			t.Errorf("%s must not be settable by the workspace", must)
		}
	}
}

func TestWorkspaceServers(t *testing.T) {
	user := "[servers.gh]\ntransport = \"stdio\"\ncommand = \"gh-mcp\"\ntrusted = true\nauto_start = true\n"
	runWSCases(t, []wsCase{
		{name: "add a server", user: user, workspace: "[servers.local]\ntransport = \"stdio\"\ncommand = \"./tools/mcp\"\nargs = [\"--ro\"]\ntrusted = false\n",
			check: func(t *testing.T, c *Config) {
				want := Server{Transport: "stdio", Command: "./tools/mcp", Args: []string{"--ro"}, Env: map[string]string{}, RestartPolicy: "never", OAuth: ServerOAuth{Scopes: []string{}}}
				if diff := cmp.Diff(want, c.Servers["local"]); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				if !c.Servers["gh"].Trusted {
					t.Error("user server lost its trust")
				}
			}},
		{name: "trusted server", workspace: "[servers.local]\ntransport = \"stdio\"\ncommand = \"x\"\ntrusted = true\n",
			wantErr: "servers.local.trusted: servers added by the workspace layer are never trusted"},
		{name: "auto-started server", workspace: "[servers.local]\ntransport = \"stdio\"\ncommand = \"x\"\nauto_start = true\n",
			wantErr: "servers.local.auto_start: servers added by the workspace layer are never trusted and never auto-started"},
		{name: "modify a user server", user: user, workspace: "[servers.gh]\ncommand = \"./evil\"\n",
			wantErr: `servers.gh.command: server "gh" is defined by user config ` + userFile + `: the workspace layer cannot modify it`},
		{name: "modify a user server harmlessly", user: user, workspace: "[servers.gh]\nrestart_policy = \"never\"\n",
			wantErr: `server "gh" is defined by user config`},
		{name: "oauth client secret", workspace: "[servers.web]\ntransport = \"streamable-http\"\nurl = \"https://mcp.example.com/\"\n[servers.web.oauth]\nclient_id = \"astrid\"\nclient_secret = \"s3cret\"\n",
			wantErr: "servers.web.oauth.client_secret: the workspace layer cannot set a client secret"},
		{name: "oauth private key", workspace: "[servers.web]\ntransport = \"streamable-http\"\nurl = \"https://mcp.example.com/\"\n[servers.web.oauth]\nclient_id = \"astrid\"\ngrant = \"client_credentials\"\nprivate_key_file = \"/home/u/.ssh/id_ecdsa\"\n",
			wantErr: "servers.web.oauth.private_key_file: the workspace layer cannot name a private key"},
		{name: "oauth of a user server", user: "[servers.web]\ntransport = \"streamable-http\"\nurl = \"https://mcp.example.com/\"\n", workspace: "[servers.web.oauth]\nclient_id = \"evil\"\n",
			wantErr: `servers.web.oauth.client_id: server "web" is defined by user config`},
		{name: "oauth public client", workspace: "[servers.web]\ntransport = \"streamable-http\"\nurl = \"https://mcp.example.com/\"\n[servers.web.oauth]\nclient_id = \"astrid\"\nscopes = [\"read\"]\n",
			check: func(t *testing.T, c *Config) {
				if got := c.Servers["web"].OAuth; got.ClientID != "astrid" || len(got.Scopes) != 1 || c.Servers["web"].Trusted {
					t.Errorf("oauth %+v trusted %v", got, c.Servers["web"].Trusted)
				}
			}},
	})
	res := layers{workspace: s("[servers.local]\ntransport = \"streamable-http\"\nurl = \"http://127.0.0.1:9000/mcp\"\n")}.mustRun(t)
	for _, k := range []string{"servers.local.trusted", "servers.local.auto_start", "servers.local.url"} {
		if res.Origins[k] != LayerWorkspace {
			t.Errorf("origin of %s = %q", k, res.Origins[k])
		}
	}
}

func TestWorkspaceLoweringClamps(t *testing.T) {
	res := layers{workspace: s("[budget]\nsession_max_usd = 5\n[model]\ncontext_window = 1000\n")}.mustRun(t)
	b := res.Config.Budget
	if b.SessionMaxUSD != 5 || b.PerActionMaxUSD != 5 {
		t.Errorf("budget %+v: lowering the session budget must cap the per-action budget", b)
	}
	if got := res.Config.Runtime.MaxContextTokens; got != 1000 {
		t.Errorf("max_context_tokens = %d, want capped at the context window", got)
	}
	if res.Origins["budget.per_action_max_usd"] != LayerWorkspace {
		t.Errorf("origin %q", res.Origins["budget.per_action_max_usd"])
	}
	// The same pair in the user layer is an error, not a clamp.
	_, errs := layers{user: s("[budget]\nsession_max_usd = 5\n")}.run(t)
	if len(errs) != 1 || errs[0].Key != "budget.per_action_max_usd" || errs[0].File != defaultsFile {
		t.Errorf("errors %v", errs)
	}
}

func TestWorkspaceCollectsEveryError(t *testing.T) {
	_, errs := layers{workspace: s(`[model]
api_key = "sk-mine"
[budget]
session_max_usd = 1000
[workspace]
mode = "autonomous"
auto_allow_write = ["**"]
[security.policy]
require_approval_for_delete = false
[capsules]
allow_unhashed = true
`)}.run(t)
	var keys []string
	for _, e := range errs {
		keys = append(keys, fmt.Sprintf("%d:%s", e.Line, e.Key))
	}
	want := []string{"2:model.api_key", "4:budget.session_max_usd", "6:workspace.mode", "7:workspace.auto_allow_write", "9:security.policy.require_approval_for_delete", "11:capsules.allow_unhashed"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
