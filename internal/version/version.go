// Package version reports the version of the Astrid binaries.
//
// Version is set at link time with
//
//	go build -ldflags "-X github.com/astrid-runtime/astrid/internal/version.Version=v0.1.0"
//
// and otherwise falls back to the module version recorded by the Go toolchain.
package version

import "runtime/debug"

// Version is the release version; empty means "ask the build info".
var Version = ""

// String returns the version of the running binary, never empty.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
