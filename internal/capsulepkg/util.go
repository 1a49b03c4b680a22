package capsulepkg

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/astrid-runtime/astrid/internal/security"
)

// ValidName reports whether s is a valid package name (and so a capsule
// id of the user layer).
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ValidToolName reports whether s is a valid [[tool]], [[cron]] or
// [[command]] name.
func ValidToolName(s string) bool { return toolRE.MatchString(s) }

// ArgsHash binds kind, resource and arguments like the interceptor does,
// for the audit entries the capsule code writes itself.
func ArgsHash(kind security.Kind, resource string, args []byte) [32]byte {
	h := sha256.New()
	for _, s := range []string{string(kind), resource, string(args)} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// ClipUTF8 returns s as valid UTF-8 of at most n bytes, "..." marking a
// cut.
func ClipUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for len(s) > 0 && strings.ToValidUTF8(s, "") != s {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// Within reports (as an error naming the first excess) whether c asks for
// nothing beyond g.
func (c Capabilities) Within(g Capabilities) error {
	for _, l := range []struct {
		name     string
		ask, got []string
	}{{"net", c.Net, g.Net}, {"fs_read", c.FSRead, g.FSRead}, {"fs_write", c.FSWrite, g.FSWrite}, {"ipc", c.IPC, g.IPC}} {
		for _, x := range l.ask {
			if !slices.Contains(l.got, x) {
				return fmt.Errorf("%s %q", l.name, x)
			}
		}
	}
	for _, b := range []struct {
		name     string
		ask, got bool
	}{{"http", c.HTTP, g.HTTP}, {"kv", c.KV, g.KV}, {"uplink", c.Uplink, g.Uplink}, {"cron", c.Cron, g.Cron}, {"elicit", c.Elicit, g.Elicit}} {
		if b.ask && !b.got {
			return errors.New(b.name)
		}
	}
	return nil
}
