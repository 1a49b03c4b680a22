//go:build linux

package helper

import (
	"syscall"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// execTarget execs the target in this (already restricted) process.
func execTarget(spec *sandbox.Spec, path string) error {
	return syscall.Exec(path, spec.Args, spec.Env)
}
