//go:build linux && !(amd64 || arm64)

package helper

import (
	"errors"
	"runtime"
)

// blockMPTCP is implemented for amd64 and arm64 only. Elsewhere a spec that
// restricts the network fails closed: Landlock alone would leave Multipath
// TCP open.
func blockMPTCP() error {
	return errors.New("the Multipath TCP seccomp filter is not implemented on " + runtime.GOARCH)
}
