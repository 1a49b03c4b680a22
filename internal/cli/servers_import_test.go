package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/home"
)

const claudeDesktop = `{
  "mcpServers": {
    "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"]},
    "remote": {"url": "https://mcp.example.com/mcp", "headers": {"X-Api-Key": "k$ey"}}
  }
}`

// TestServersImport: servers from a Claude Desktop file land in the user
// configuration next to what was there (comments kept), load back equal,
// are untrusted; a second import clashes unless --force, which replaces
// the table; --workspace writes the workspace layer; bad entries are
// reported with their JSON path and nothing is written.
func TestServersImport(t *testing.T) {
	te := newTestEnv(t)
	user := "# my settings\n[model]\nprovider = \"anthropic\" # the provider\n\n[servers.fs]\ntransport = \"stdio\"\ncommand = \"mcp-fs\"\n"
	te.write(t, "home/config.toml", user)
	te.write(t, "repo/claude.json", claudeDesktop)

	stdout, stderr, code := te.run(t, "servers", "import", "claude.json")
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "imported 2 MCP server(s)") || !strings.Contains(stdout, "filesystem, remote") {
		t.Errorf("stdout = %q", stdout)
	}
	cfgPath := filepath.Join(te.tmp, "home", "config.toml")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), user) {
		t.Errorf("the existing file was changed:\n%s", data)
	}
	res, err := config.Load(config.LoadOptions{Home: home.Dir(filepath.Join(te.tmp, "home")), SystemFile: filepath.Join(te.tmp, "etc", "none.toml")})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Config.Servers
	want := map[string]config.Server{
		"fs":         got["fs"],
		"filesystem": {Transport: "stdio", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"}, RestartPolicy: got["filesystem"].RestartPolicy},
		"remote":     {Transport: "streamable-http", URL: "https://mcp.example.com/mcp", Env: map[string]string{"HEADER_X_Api_Key": "k$ey"}, RestartPolicy: got["remote"].RestartPolicy},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("servers after import (-want +got):\n%s", diff)
	}

	// Again: a clash, refused, nothing written.
	_, stderr, code = te.run(t, "servers", "import", "claude.json")
	if code == 0 || !strings.Contains(stderr, `mcp server "filesystem" is already defined by user config`) || !strings.Contains(stderr, "--force") {
		t.Errorf("second import: exit %d: %s", code, stderr)
	}
	if after, _ := os.ReadFile(cfgPath); string(after) != string(data) {
		t.Error("a refused import changed the file")
	}
	// --force replaces the tables: each server once, comments kept.
	te.write(t, "repo/claude.json", strings.Replace(claudeDesktop, "/Users/me/Desktop", "/srv", 1))
	if _, stderr, code = te.run(t, "servers", "import", "--force", "claude.json"); code != 0 {
		t.Fatalf("forced import: exit %d: %s", code, stderr)
	}
	after, _ := os.ReadFile(cfgPath)
	if n := strings.Count(string(after), "[servers.filesystem]"); n != 1 || !strings.Contains(string(after), `"/srv"`) || !strings.HasPrefix(string(after), user) {
		t.Errorf("after --force (%d tables):\n%s", n, after)
	}

	// The workspace layer: a name the user layer has is refused even with
	// --force; a new one is written there.
	te.write(t, "repo/one.json", `{"mcpServers": {"fs": {"command": "evil"}}}`)
	_, stderr, code = te.run(t, "servers", "import", "--workspace", "--force", "one.json")
	if code == 0 || !strings.Contains(stderr, "defined by user config") {
		t.Errorf("workspace clash: exit %d: %s", code, stderr)
	}
	te.write(t, "repo/two.json", `{"mcpServers": {"repo-tool": {"command": "./tool", "cwd": "/w"}}}`)
	if _, stderr, code = te.run(t, "servers", "import", "--workspace", "two.json"); code != 0 {
		t.Fatalf("workspace import: exit %d: %s", code, stderr)
	}
	ws, err := os.ReadFile(filepath.Join(te.tmp, "repo", ".astrid", "config.toml"))
	if err != nil || !strings.Contains(string(ws), "[servers.repo-tool]") || strings.Contains(string(ws), "trusted") {
		t.Errorf("workspace file: %v\n%s", err, ws)
	}

	// Bad entries: each named by its JSON path; nothing written.
	te.write(t, "repo/bad.json", `{"mcpServers": {"ok": {"command": "x"}, "b": {"command": "x", "args": [1]}, "c": {"url": "https://e", "type": "sse"}}}`)
	before, _ := os.ReadFile(cfgPath)
	_, stderr, code = te.run(t, "servers", "import", "bad.json")
	if code == 0 || !strings.Contains(stderr, `mcpServers["b"].args: want an array of strings`) || !strings.Contains(stderr, `mcpServers["c"].type`) {
		t.Errorf("bad file: exit %d: %s", code, stderr)
	}
	if after, _ := os.ReadFile(cfgPath); string(after) != string(before) {
		t.Error("a bad file changed the configuration")
	}
	// A server the configuration refuses (here: a relative command with no
	// cwd is fine for config, but an invalid URL scheme is caught by the
	// parser); a missing file says which.
	_, stderr, code = te.run(t, "servers", "import", "missing.json")
	if code == 0 || !strings.Contains(stderr, "missing.json") {
		t.Errorf("missing file: exit %d: %s", code, stderr)
	}
}
