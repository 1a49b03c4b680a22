//go:build darwin

package sandbox

import (
	"errors"
	"os"
)

// SandboxExec is the macOS sandbox front end the helper execs.
const SandboxExec = "/usr/bin/sandbox-exec"

// waitExited is not available without waitid(WNOWAIT); Cmd.Wait reaps first.
func waitExited(int) error { return errors.ErrUnsupported }

// platformProbe reports whether sandbox-exec exists. NOTE: the macOS
// profile is not tested by this repository's CI.
func platformProbe() (abi int, ok, netOK bool, why error) {
	if _, err := os.Stat(SandboxExec); err != nil {
		return 0, false, false, err
	}
	return 0, true, true, nil
}

// SystemDirs are the read-only system directories of the default shell
// profile.
var SystemDirs = []string{"/usr", "/bin", "/sbin", "/System", "/Library", "/private/etc", "/private/var/db/timezone", "/opt"}
