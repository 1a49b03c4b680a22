package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseMCPServers: the common format in, servers out in file order;
// every bad entry is reported with its JSON path.
func TestParseMCPServers(t *testing.T) {
	got, warns, err := ParseMCPServers([]byte(`{"mcpServers": {
		"fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"], "env": {"PRICE": "$5"}, "autoApprove": ["read_file"]},
		"api": {"type": "http", "url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"}}
	}, "otherKey": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []ImportedServer{
		{Name: "fs", Server: Server{Transport: "stdio", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-filesystem", "/tmp"}, Env: map[string]string{"PRICE": "$5"}}},
		{Name: "api", Server: Server{Transport: "streamable-http", URL: "https://example.com/mcp", Env: map[string]string{"HEADER_Authorization": "Bearer x"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `mcpServers["fs"].autoApprove: not imported`) {
		t.Errorf("warnings = %q", warns)
	}
	// Rendered, the servers load back as they were ($ taken literally).
	data := RenderServers(got)
	if !strings.Contains(data, `env = { PRICE = "$$5" }`) || !strings.Contains(data, "[servers.api]\n") {
		t.Errorf("rendered:\n%s", data)
	}

	for _, tc := range []struct{ doc, want string }{
		{`[]`, `$: not a JSON object`},
		{`{"servers": {}}`, `$: no "mcpServers" object`},
		{`{"mcpServers": {}}`, `mcpServers: no servers`},
		{`{"mcpServers": {"a": {"command": "x"}, "a": {"command": "y"}}}`, `"a" given twice`},
		{`{"mcpServers": {"my.server": {"command": "x"}}}`, `mcpServers["my.server"]: server name must be`},
		{`{"mcpServers": {"a": {"command": "x", "args": "-v"}}}`, `mcpServers["a"].args: want an array of strings`},
		{`{"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}`, `mcpServers["a"].env: want an object of strings`},
		{`{"mcpServers": {"a": {"command": "x", "url": "https://e"}}}`, `mcpServers["a"]: has both command and url`},
		{`{"mcpServers": {"a": {"url": "https://e", "type": "sse"}}}`, `mcpServers["a"].type: the legacy SSE transport is not supported`},
		{`{"mcpServers": {"a": {"url": "ftp://e"}}}`, `mcpServers["a"].url: want an http(s) URL`},
		{`{"mcpServers": {"a": {"url": "https://e", "headers": {"Bad Name": "x"}}}}`, `mcpServers["a"].headers["Bad Name"]: want a header name`},
		{`{"mcpServers": {"a": {"args": ["x"]}}}`, `mcpServers["a"]: want a command (stdio) or a url`},
		{`{"mcpServers": {"a": {"command": "x", "trusted": true}}}`, `mcpServers["a"].trusted: unknown key`},
		{`{"mcpServers": {"a": {"command": "x"}, "b": 3}}`, `mcpServers["b"]: want a JSON object`},
	} {
		_, _, err := ParseMCPServers([]byte(tc.doc))
		var ie *ImportError
		if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.doc, err, tc.want)
		}
	}
}

// TestRemoveServerTables: a server's table and sub-tables go; comments
// and other tables stay.
func TestRemoveServerTables(t *testing.T) {
	in := "# top\n[model]\nprovider = \"x\" # keep\n\n[servers.fs]\ncommand = \"a\"\n[servers.fs.env]\nK = \"v\"\n\n[servers.fsx]\ncommand = \"b\"\n# tail\n"
	out, found := RemoveServerTables([]byte(in), "fs")
	want := "# top\n[model]\nprovider = \"x\" # keep\n\n[servers.fsx]\ncommand = \"b\"\n# tail\n"
	if !found || string(out) != want {
		t.Errorf("found=%v\n%s", found, out)
	}
	if _, found := RemoveServerTables([]byte(in), "nope"); found {
		t.Error("found a server that is not there")
	}
}
