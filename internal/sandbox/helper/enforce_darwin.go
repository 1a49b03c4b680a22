//go:build darwin

package helper

import (
	"syscall"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// noNewPrivs: macOS has no no_new_privs; the SBPL profile governs exec.
func noNewPrivs() error { return nil }

// enforce has nothing to apply in-process on macOS: execTarget wraps the
// target in sandbox-exec with the Spec's profile.
func enforce(*sandbox.Spec, options) error { return nil }

// execTarget execs the target, through sandbox-exec when the sandbox is
// enforced. sandbox-exec applies the profile and then execs the program,
// so the profile holds for it and its descendants.
func execTarget(spec *sandbox.Spec, path string) error {
	if !spec.Enforce {
		return syscall.Exec(path, spec.Args, spec.Env)
	}
	argv := append([]string{"sandbox-exec", "-p", sandbox.SBPL(spec), path}, spec.Args[1:]...)
	return syscall.Exec(sandbox.SandboxExec, argv, spec.Env)
}
