package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The end-to-end tests build the real binaries once per test binary, on
// first use, into a temporary directory that TestMain removes.
var bins struct {
	once    sync.Once
	dir     string
	astridd string
	astrid  string
	err     error
}

func binaries(t testing.TB) (astridd, astrid string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds binaries")
	}
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "astrid-e2e-")
		if bins.err != nil {
			return
		}
		bins.astridd = filepath.Join(bins.dir, "astridd")
		bins.astrid = filepath.Join(bins.dir, "astrid")
		out, err := exec.Command("go", "build", "-o", bins.dir+"/", "github.com/astrid-runtime/astrid/cmd/astridd", "github.com/astrid-runtime/astrid/cmd/astrid").CombinedOutput()
		if err != nil {
			bins.err = &buildError{out: string(out), err: err}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.astridd, bins.astrid
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

func cleanupBinaries() {
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
}
