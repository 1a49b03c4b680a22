//go:build linux

package sandbox

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// waitExited blocks until the process exits, without reaping it
// (waitid with WNOWAIT), so its pid and process group id stay reserved.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// platformProbe reports the Landlock ABI, whether the filesystem sandbox
// and the network rules can be enforced, and if not, why.
func platformProbe() (abi int, ok, netOK bool, why error) {
	abi, err := ABI()
	if err != nil {
		return 0, false, false, err
	}
	if abi < MinABI {
		return abi, false, false, fmt.Errorf("landlock ABI %d is older than the minimum %d (Linux 6.2)", abi, MinABI)
	}
	return abi, true, abi >= netABI, nil
}

// SystemDirs are the read-only system directories of the default shell
// profile.
var SystemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}
