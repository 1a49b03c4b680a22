package tools

import (
	"os"
	"testing"

	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/sandbox/helper"
)

// TestMain lets the test binary serve as the sandbox helper, as astridd
// does in production.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.HelperArg {
		os.Exit(helper.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}
