package sandbox

import (
	"fmt"
	"strings"
)

// SBPL returns the macOS sandbox profile (Sandbox Profile Language, as read
// by sandbox-exec -p) for s: deny by default; read-only and read-write
// subpaths as granted; metadata reads anywhere (Landlock does not restrict
// stat either); process fork and exec; signals only within the sandbox;
// network denied unless unrestricted or granted by port. Protected paths
// are denied last, which wins in SBPL, as a second line behind the rule
// check.
//
// NOTE: mach-lookup stays allowed, since most macOS programs cannot run
// without system services; this is a weaker boundary than Landlock's. The
// profile is built and unit-tested on every platform, but it is only run
// on macOS, which this repository's CI does not cover.
func SBPL(s *Spec) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("(version 1)")
	line("(deny default)")
	line("(allow process-fork)")
	line("(allow process-exec)")
	line("(allow signal (target same-sandbox))")
	line("(allow sysctl-read)")
	line("(allow mach-lookup)")
	line("(allow ipc-posix-shm)")
	line("(allow file-read-metadata)")
	line(`(allow file-read-data (literal "/"))`)
	for _, p := range s.ReadOnly {
		line("(allow file-read* (subpath %s))", sbplString(p))
	}
	for _, p := range s.ReadWrite {
		line("(allow file-read* file-write* (subpath %s))", sbplString(p))
	}
	switch {
	case !s.RestrictNetwork:
		line("(allow network*)")
	default:
		for _, port := range s.ConnectTCP {
			line(`(allow network-outbound (remote tcp "*:%d"))`, port)
		}
		for _, port := range s.BindTCP {
			line(`(allow network-bind network-inbound (local tcp "*:%d"))`, port)
		}
	}
	for _, p := range s.Protected {
		line("(deny file-read* file-write* (subpath %s))", sbplString(p))
	}
	return b.String()
}

// sbplString quotes s as an SBPL (Scheme) string literal.
func sbplString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
