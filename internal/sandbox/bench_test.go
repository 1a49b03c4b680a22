//go:build linux

package sandbox_test

import (
	"os/exec"
	"testing"
)

// BenchmarkStart measures the cost of the sandbox per command: a plain
// exec of /bin/true against the same through the helper, with and without
// Landlock. The difference is the helper's start-up (a Go runtime, here
// the test binary's), the rule set-up and one more execve.
func BenchmarkStart(b *testing.B) {
	w := newWorld(b)
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fallback", func(b *testing.B) {
		p := w.profile()
		for b.Loop() {
			c, err := w.off.Command(b.Context(), p, "/bin/true")
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sandboxed", func(b *testing.B) {
		requireLandlock(b)
		p := w.profile()
		for b.Loop() {
			c, err := w.on.Command(b.Context(), p, "/bin/true")
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
