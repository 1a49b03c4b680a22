package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/astrid-runtime/astrid"

// forbidden are the packages the thin CLI must not link (issue 7): the
// terminal UI libraries (astrid-tui has them), the runtime, the
// interceptor, wazero, the MCP library and the provider SDKs. Each is a
// prefix of import paths.
var forbidden = []string{
	"charm.land/bubbletea",
	"charm.land/glamour",
	"charm.land/huh",
	"github.com/alecthomas/chroma",
	"github.com/yuin/goldmark",
	"github.com/microcosm-cc/bluemonday",
	"github.com/tetratelabs/wazero",
	module + "/internal/runtime",
	module + "/internal/core",
	module + "/internal/security",
	module + "/internal/tui",
	module + "/internal/capsule",
	module + "/internal/tools",
	module + "/internal/mcp",
	"github.com/mark3labs/mcp-go",
	"github.com/modelcontextprotocol/go-sdk",
	"github.com/anthropics/anthropic-sdk-go",
	"github.com/openai/openai-go",
}

// TestCLIStaysThin fails when cmd/astrid links a forbidden package, naming
// the chain of imports that brings it in.
func TestCLIStaysThin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list; skipped with -short")
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderrOf(err))
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	root := module + "/cmd/astrid"
	if _, ok := imports[root]; !ok {
		t.Fatalf("go list did not list %s", root)
	}
	// Breadth-first from the CLI.
	via := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range imports[p] {
			if _, seen := via[q]; seen {
				continue
			}
			via[q] = p
			queue = append(queue, q)
		}
	}
	for p := range via {
		for _, f := range forbidden {
			if p == f || strings.HasPrefix(p, f+"/") {
				chain := []string{p}
				for q := via[p]; q != ""; q = via[q] {
					chain = append(chain, q)
				}
				for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
					chain[i], chain[j] = chain[j], chain[i]
				}
				t.Errorf("astrid links %s: %s", p, strings.Join(chain, " -> "))
			}
		}
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
