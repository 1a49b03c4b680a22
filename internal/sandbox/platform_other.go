//go:build !linux && !darwin

package sandbox

import (
	"errors"
	"runtime"
)

// waitExited is not available without waitid(WNOWAIT); Cmd.Wait reaps first.
func waitExited(int) error { return errors.ErrUnsupported }

// platformProbe: there is no sandbox on this system.
func platformProbe() (abi int, ok, netOK bool, why error) {
	return 0, false, false, errors.New("no sandbox implementation for " + runtime.GOOS)
}

// SystemDirs are the read-only system directories of the default shell
// profile.
var SystemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/etc", "/opt"}
