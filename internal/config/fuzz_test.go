package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzLoad feeds arbitrary bytes to the decoder, validator and merger as the
// user and the workspace layer. Nothing may panic; a result is either a
// config or a non-empty Errors; and a valid config written by WriteTOML
// loads back to the same config.
func FuzzLoad(f *testing.F) {
	tpl, err := WorkspaceTemplate()
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][2]string{
		{string(defaultsTOML), ""},
		{fullUser, string(tpl)},
		{"", "[budget]\nsession_max_usd = 5\n[workspace]\nmode = \"guided\"\n"},
		{"[workspace]\nmode = \"autonomous\"\nauto_allow_read = [\"src/**\"]\n", "[workspace]\nauto_allow_read = [\"**\"]\n"},
		{"[servers.a]\ntransport = \"stdio\"\ncommand = \"${X}\"\n", "[servers.a]\ntrusted = true\n[servers.b]\ntransport = \"streamable-http\"\nurl = \"https://${X}\"\n"},
		{"[model.pricing.\"a.b\"]\ninput_per_mtok = inf\n", "x = [[1], {a = 1}]\n"},
		{"[[servers]]\n[servers.x]\n", "a.b.c = 1\n[a]\n"},
		{"budget = { session_max_usd = 1e400 }\n", "\"\\u0000\" = 1\n"},
		{"$$ = \"$${\"\n[model]\nmodel = \"m$\"\n", "[security.policy]\nblocked_commands = [\"su\\u0000do\"]\n"},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	env := map[string]string{"X": "example.com", "HOME": "/home/u", "ANTHROPIC_API_KEY": "sk-ant-fuzz"}
	getenv := func(k string) string { return env[k] }
	f.Fuzz(func(t *testing.T, user, workspace []byte) {
		srcs := []source{
			{layer: LayerDefault, file: defaultsFile, data: defaultsTOML, exists: true},
			{layer: LayerUser, file: userFile, data: user, exists: true},
			{layer: LayerWorkspace, file: wsFile, data: workspace, exists: true},
		}
		res, err := resolve(srcs, getenv)
		if err != nil {
			var es Errors
			if res != nil || !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("res %v, err %T %v", res, err, err)
			}
			for _, e := range es {
				if e.Msg == "" || e.File == "" {
					t.Fatalf("incomplete error %#v", e)
				}
				if strings.Contains(e.Msg, "internal error") {
					t.Fatalf("internal error: %v", e)
				}
			}
			return
		}
		var b strings.Builder
		if err := res.Config.WriteTOML(&b, nil); err != nil {
			t.Fatal(err)
		}
		again, err := resolve([]source{
			{layer: LayerDefault, file: defaultsFile, data: defaultsTOML, exists: true},
			{layer: LayerUser, file: userFile, data: []byte(b.String()), exists: true},
		}, getenv)
		if err != nil {
			t.Fatalf("WriteTOML output does not load: %v\n%s", err, b.String())
		}
		if diff := cmp.Diff(res.Config, again.Config); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
