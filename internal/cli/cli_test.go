package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// testEnv is an Env over buffers with ASTRID_HOME in a fresh temp dir.
type testEnv struct {
	*Env
	home   string
	vars   map[string]string
	stdout *bytes.Buffer
	stderr *bytes.Buffer
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	dir := t.TempDir()
	te := &testEnv{
		home:   filepath.Join(dir, "astrid-home"),
		stdout: new(bytes.Buffer),
		stderr: new(bytes.Buffer),
	}
	te.vars = map[string]string{"ASTRID_HOME": te.home, "HOME": dir}
	ws := filepath.Join(dir, "workspace")
	te.Env = &Env{Stdin: strings.NewReader(""), Stdout: te.stdout, Stderr: te.stderr, Getenv: func(k string) string { return te.vars[k] }, Dir: ws}
	return te
}

// run executes one command line and returns its exit code; output
// accumulates in te.stdout and te.stderr (reset before each run).
func (te *testEnv) run(t *testing.T, args ...string) int {
	t.Helper()
	te.stdout.Reset()
	te.stderr.Reset()
	// Global flag state must not leak between runs.
	te.format, te.verbose, te.logger = "", 0, nil
	return ExitCode(te.Env, Run(context.Background(), te.Env, args))
}
