package capsulepkg

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoEngine keeps the WebAssembly engine out of this package's
// dependencies, so that the CLI, which installs and inspects capsules,
// never links it.
func TestNoEngine(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "lukechampine.com/blake3") {
		t.Fatalf("go list output has no blake3:\n%s", out)
	}
	for _, heavy := range []string{"github.com/tetratelabs/wazero", "github.com/astrid-runtime/astrid/internal/capsule\n", "github.com/astrid-runtime/astrid/internal/runtime"} {
		if strings.Contains(string(out), heavy) {
			t.Errorf("package capsulepkg depends on %s", strings.TrimSpace(heavy))
		}
	}
}
