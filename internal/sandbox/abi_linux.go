//go:build linux

package sandbox

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ABI returns the Landlock ABI version the running kernel supports, or 0
// and an error saying why Landlock is unusable (ENOSYS: not built into the
// kernel; EOPNOTSUPP: built but not enabled at boot).
//
// It makes the same errata check as go-landlock: a kernel that reports ABI
// 6 or later without the fix for the signal-scoping erratum counts as ABI
// 5, so the version reported here is the one the helper can enforce
// exactly. This file imports only golang.org/x/sys/unix, so callers such
// as `astrid doctor` do not link go-landlock.
func ABI() (int, error) {
	r1, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		switch {
		case errors.Is(errno, unix.ENOSYS):
			return 0, fmt.Errorf("landlock is not supported by this kernel (%w)", errno)
		case errors.Is(errno, unix.EOPNOTSUPP):
			return 0, fmt.Errorf("landlock is disabled at boot (%w); add it to the lsm= kernel parameter", errno)
		}
		return 0, fmt.Errorf("landlock_create_ruleset(VERSION): %w", errno)
	}
	v := int(r1)
	if v >= 6 {
		errata, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_ERRATA)
		if e != 0 || errata&0x2 == 0 {
			v = 5
		}
	}
	if v < 1 {
		return 0, fmt.Errorf("landlock reported ABI version %d", v)
	}
	return v, nil
}
