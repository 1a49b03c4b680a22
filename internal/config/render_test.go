package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const fullUser = `[model]
provider = "openai"
model = "gpt-4.1"
api_key = "sk-proj-0123456789abcdef"
[model.pricing."gpt-4.1"]
input_per_mtok = 2
output_per_mtok = 8
[security.policy]
allowed_hosts = ["api.github.com", "[::1]:8080"]
[servers.gh]
transport = "stdio"
command = "gh-mcp"
args = ["--read-only", "quote\"d"]
env = { GITHUB_TOKEN = "ghp_secret", "LOG" = "1" }
binary_hash = "blake3:0000000000000000000000000000000000000000000000000000000000000000"
[telegram]
bot_token = "123456:ABCDEFGHIJ"
allowed_user_ids = [42, 7]
[discord]
bot_token = "short"
`

func TestWriteTOMLRoundTrip(t *testing.T) {
	res := layers{user: s(fullUser)}.mustRun(t)
	var b strings.Builder
	if err := res.Config.WriteTOML(&b, func(k string) string { return "from " + string(res.Origins[k]) }); err != nil {
		t.Fatal(err)
	}
	// The output, used as the only file layer, gives back the same config.
	again := layers{user: s(b.String())}.mustRun(t)
	if diff := cmp.Diff(res.Config, again.Config); diff != "" {
		t.Errorf("round trip (-want +got):\n%s\n%s", diff, b.String())
	}
	for _, want := range []string{
		`api_key = "sk-proj-0123456789abcdef"  # from user`,
		`[model.pricing."gpt-4.1"]`,
		`env = { GITHUB_TOKEN = "ghp_secret", LOG = "1" }  # from user`,
		`restart_policy = "never"  # from default`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRedacted(t *testing.T) {
	res := layers{user: s(fullUser)}.mustRun(t)
	r := res.Config.Redacted()
	got := []string{r.Model.APIKey, r.Telegram.BotToken, r.Discord.BotToken, r.Servers["gh"].Env["GITHUB_TOKEN"], r.Servers["gh"].Env["LOG"]}
	want := []string{"sk-p…(masked)", "1234…(masked)", "********", "********", "********"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The original is untouched.
	if res.Config.Model.APIKey != "sk-proj-0123456789abcdef" || res.Config.Servers["gh"].Env["GITHUB_TOKEN"] != "ghp_secret" {
		t.Error("Redacted modified the original")
	}
	var b strings.Builder
	if err := r.WriteTOML(&b, nil); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"0123456789abcdef", "ghp_secret", "ABCDEFGHIJ", "short"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("redacted output contains %q", secret)
		}
	}
	if diff := cmp.Diff(r, r.Redacted()); diff != "" {
		t.Errorf("masking is not idempotent:\n%s", diff)
	}
	if empty := defaultConfig(t).Redacted(); empty.Model.APIKey != "" {
		t.Errorf("empty key masked as %q", empty.Model.APIKey)
	}
}
