package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServersLogout: logout removes the stored tokens of a configured
// server; login and logout refuse a stdio server, an unknown one, and a
// server only the workspace defines (they read the user layers only).
func TestServersLogout(t *testing.T) {
	te := newTestEnv(t)
	te.write(t, "home/config.toml", "[servers.fs]\ntransport = \"stdio\"\ncommand = \"mcp-fs\"\n[servers.web]\ntransport = \"streamable-http\"\nurl = \"https://example.com/mcp\"\n")
	te.write(t, "repo/.astrid/config.toml", "[servers.ws]\ntransport = \"streamable-http\"\nurl = \"https://example.com/mcp\"\n")
	tokens := filepath.Join(te.tmp, "home", "mcp-oauth", "web.json")
	te.write(t, "home/mcp-oauth/web.json", `{"server_url":"https://example.com/mcp"}`)
	stdout, stderr, code := te.run(t, "servers", "logout", "web")
	if code != 0 || !strings.Contains(stdout, "logged out: web") {
		t.Fatalf("logout: exit %d, %s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(tokens); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token file after logout: %v", err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"servers", "login", "fs"}, "only for streamable-http"},
		{[]string{"servers", "login", "nope"}, "no such MCP server"},
		{[]string{"servers", "logout", "ws"}, "no such MCP server"},
	} {
		_, stderr, code := te.run(t, tt.args...)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tt.args, code, stderr, tt.want)
		}
	}
}
