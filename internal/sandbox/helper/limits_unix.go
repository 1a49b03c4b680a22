//go:build unix

package helper

import (
	"fmt"
	"syscall"

	"github.com/astrid-runtime/astrid/internal/sandbox"
	"golang.org/x/sys/unix"
)

// setLimits sets every limit of l, soft and hard alike, never above the
// current hard limit, and turns core dumps off.
//
// NOTE: syscall.Setrlimit, not unix.Setrlimit, so that the Go runtime
// forgets the RLIMIT_NOFILE it raised at start-up and does not restore the
// old soft limit in execve.
func setLimits(l sandbox.SpecLimits) error {
	for _, r := range []struct {
		name     string
		resource int
		value    uint64
	}{
		{"RLIMIT_CPU", unix.RLIMIT_CPU, l.CPUSeconds},
		{"RLIMIT_FSIZE", unix.RLIMIT_FSIZE, l.FileSize},
		{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE, l.OpenFiles},
		{"RLIMIT_NPROC", unix.RLIMIT_NPROC, l.Processes},
		{"RLIMIT_CORE", unix.RLIMIT_CORE, 0},
		// Last: the address space limit may be below what this Go
		// process has reserved; nothing is allocated after it.
		{"RLIMIT_AS", unix.RLIMIT_AS, l.AddressSpace},
	} {
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(r.resource, &cur); err != nil {
			return fmt.Errorf("getrlimit %s: %w", r.name, err)
		}
		// Unlimited (the largest uint64) is clamped to the hard limit
		// like any other value too large.
		v := r.value
		if v > cur.Max {
			v = cur.Max
		}
		if err := syscall.Setrlimit(r.resource, &syscall.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("setrlimit %s=%d: %w", r.name, v, err)
		}
	}
	return nil
}
