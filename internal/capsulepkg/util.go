package capsulepkg

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/astrid-runtime/astrid/internal/audit"
)

// ValidName reports whether s is a valid package name (and so a capsule
// id of the user layer).
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ValidToolName reports whether s is a valid [[tool]], [[cron]] or
// [[command]] name.
func ValidToolName(s string) bool { return toolRE.MatchString(s) }

// ActionKind is the audit action kind of capsule actions: the value of
// security.Capsule (package capsulepkg does not link the interceptor; a
// test in package capsule checks the two agree).
const ActionKind = "capsule"

// DeferredNS is the key-value namespace of capsule id's deferred host
// calls (package capsule): no capsule id contains '/', so no capsule can
// reach it with kv_*.
func DeferredNS(id string) string { return "deferred/" + id }

// Auditor appends audit entries (an *audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Receipt, error)
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
