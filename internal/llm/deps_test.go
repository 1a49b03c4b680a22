package llm

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoSDKImports keeps the provider SDKs out of this package's
// dependencies, so that code needing only the types (the CLI) never links
// them.
func TestNoSDKImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := string(out)
	if !strings.Contains(deps, "github.com/astrid-runtime/astrid/internal/budget") {
		t.Fatalf("go list output has no budget package:\n%s", deps)
	}
	for _, sdk := range []string{"github.com/anthropics/", "github.com/openai/"} {
		if strings.Contains(deps, sdk) {
			t.Errorf("package llm depends on %s…", sdk)
		}
	}
}
