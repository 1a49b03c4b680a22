package cli

import (
	"strings"
	"testing"
)

// TestServersWithoutDaemon: list shows the configured servers (user and
// workspace layers), stopped; running, start, stop and tools need the
// daemon and exit 3 saying so.
func TestServersWithoutDaemon(t *testing.T) {
	te := newTestEnv(t)
	te.write(t, "home/config.toml", "[servers.fs]\ntransport = \"stdio\"\ncommand = \"mcp-fs\"\n")
	te.write(t, "repo/.astrid/config.toml", "[servers.web]\ntransport = \"streamable-http\"\nurl = \"https://example.com/mcp\"\n")
	stdout, stderr, code := te.run(t, "servers", "list")
	if code != 0 {
		t.Fatalf("list: exit %d, %s", code, stderr)
	}
	for _, want := range []string{"NAME", "fs", "stdio", "web", "streamable-http", "stopped"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, code = te.run(t, "servers", "list", "--format", "json")
	if code != 0 || !strings.Contains(stdout, `"name": "fs"`) || !strings.Contains(stdout, `"state": "stopped"`) {
		t.Errorf("list json: exit %d\n%s", code, stdout)
	}
	for _, args := range [][]string{{"servers", "running"}, {"servers", "start", "fs"}, {"servers", "stop", "fs"}, {"servers", "tools"}} {
		_, stderr, code := te.run(t, args...)
		if code != 3 || !strings.Contains(stderr, "astridd is not running") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
