//go:build !linux

package sandbox

import (
	"errors"
	"runtime"
)

// ABI reports the Landlock ABI version; Landlock exists only on Linux, so
// on this system it always returns 0 and an error.
func ABI() (int, error) {
	return 0, errors.New("landlock is Linux-only; this is " + runtime.GOOS)
}
