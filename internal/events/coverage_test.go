package events

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// covered names, for every declared Kind, the test that checks it is
// published (package directory, test function). A new Kind fails
// TestEveryKindIsPublishedAndTested until it has a publishing site and a
// line here naming a test that mentions it.
var covered = map[Kind]string{
	DaemonStarted: "internal/runtime TestBusDaemonEvents",
	DaemonStopped: "internal/runtime TestBusDaemonEvents",

	SessionCreated: "internal/runtime TestBusEvents",
	SessionResumed: "internal/runtime TestBusEvents",
	SessionEnded:   "internal/runtime TestBusEvents",
	SessionSaved:   "internal/runtime TestBusEvents",

	MessageReceived:  "internal/runtime TestBusEvents",
	MessageProcessed: "internal/runtime TestBusEvents",

	LLMRequestStarted:   "internal/runtime TestBusEvents",
	LLMRequestCompleted: "internal/runtime TestBusEvents",
	LLMStreamStarted:    "internal/runtime TestBusEvents",
	LLMStreamCompleted:  "internal/runtime TestBusEvents",
	LLMUsage:            "internal/runtime TestBusEvents",

	ToolCallStarted:   "internal/runtime TestBusEvents",
	ToolCallCompleted: "internal/runtime TestBusEvents",
	ToolCallFailed:    "internal/runtime TestBusEvents",

	SubagentSpawned:   "internal/runtime TestBusEvents",
	SubagentProgress:  "internal/runtime TestBusEvents",
	SubagentCompleted: "internal/runtime TestBusEvents",
	SubagentFailed:    "internal/runtime TestBusEvents",
	SubagentCancelled: "internal/runtime TestBusEvents",

	MCPServerConnected:    "internal/runtime TestBusMCPAndCapsuleEvents",
	MCPServerDisconnected: "internal/runtime TestBusMCPAndCapsuleEvents",
	MCPServerRestarted:    "internal/runtime TestBusMCPAndCapsuleEvents",
	MCPToolCalled:         "internal/runtime TestBusMCPAndCapsuleEvents", // the notices: internal/mcp TestToolCallAndHealthEvents
	MCPToolCompleted:      "internal/runtime TestBusMCPAndCapsuleEvents",

	CapsuleLoaded:   "internal/runtime TestBusMCPAndCapsuleEvents",
	CapsuleFailed:   "internal/runtime TestBusMCPAndCapsuleEvents",
	CapsuleUnloaded: "internal/runtime TestBusMCPAndCapsuleEvents",
	CapsuleCronRan:  "internal/runtime TestBusMCPAndCapsuleEvents", // the callback: internal/capsule TestNotesCapsule

	ApprovalRequested: "internal/daemon TestInterceptorNoticesOnTheBus",
	ApprovalGranted:   "internal/daemon TestInterceptorNoticesOnTheBus",
	ApprovalDenied:    "internal/daemon TestInterceptorNoticesOnTheBus",
	ApprovalDeferred:  "internal/daemon TestInterceptorNoticesOnTheBus",
	ApprovalResolved:  "internal/daemon TestInterceptorNoticesOnTheBus",

	BudgetWarning:  "internal/daemon TestInterceptorNoticesOnTheBus",
	BudgetReserved: "internal/daemon TestSecurityNoticesOnTheBus",
	BudgetExceeded: "internal/daemon TestSecurityNoticesOnTheBus",

	CapabilityChecked:   "internal/daemon TestSecurityNoticesOnTheBus",
	CapabilityGranted:   "internal/daemon TestSecurityNoticesOnTheBus",
	CapabilityRevoked:   "internal/daemon TestRevokeTokenMethod",
	AuthorizationDenied: "internal/daemon TestSecurityNoticesOnTheBus",
	SecurityViolation:   "internal/daemon TestSecurityNoticesOnTheBus",

	AuditEntryCreated: "internal/daemon TestSecurityNoticesOnTheBus",

	HookBlocked: "internal/runtime TestBusEvents",

	ConfigReloaded: "internal/daemon TestReloadConfig",

	HealthCheckCompleted: "internal/runtime TestBusMCPAndCapsuleEvents", // the pings: internal/mcp TestToolCallAndHealthEvents

	StreamEvent: "internal/daemon TestStreamFromTheBus",

	Error: "internal/runtime TestBusEvents",
}

// declaredKinds parses events.go and returns its Kind constants by name.
func declaredKinds(t *testing.T) map[string]Kind {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Kind{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Kind" {
				continue
			}
			for i, n := range vs.Names {
				v, err := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				out[n.Name] = Kind(v)
			}
		}
	}
	return out
}

// goFiles returns the contents of the .go files of a directory (tests
// or not), by name.
func goFiles(t *testing.T, dir string, tests bool) map[string]string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") != tests {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = string(b)
	}
	return out
}

// TestEveryKindIsPublishedAndTested: every declared Kind is published
// somewhere outside this package (events.<Name> in non-test code) and
// has an entry in covered naming a test that exists and mentions it (by
// constant or by its string).
func TestEveryKindIsPublishedAndTested(t *testing.T) {
	root := filepath.Join("..", "..")
	declared := declaredKinds(t)
	if len(declared) < 40 {
		t.Fatalf("only %d kinds parsed from events.go", len(declared))
	}
	var published strings.Builder
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == "." || filepath.Base(p) == "events" {
			return err
		}
		for _, src := range goFiles(t, p, false) {
			published.WriteString(src)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(declared))
	for n := range declared {
		names = append(names, n)
	}
	slices.Sort(names)
	uses := map[string]bool{} // events.<Name> in non-test code
	for _, m := range regexp.MustCompile(`\bevents\.([A-Z]\w*)`).FindAllStringSubmatch(published.String(), -1) {
		uses[m[1]] = true
	}
	tests := map[string]string{} // "dir TestName" -> body
	for _, name := range names {
		kind := declared[name]
		if !uses[name] {
			t.Errorf("%s (%s) is declared but never published outside package events", name, kind)
		}
		where, ok := covered[kind]
		if !ok {
			t.Errorf("%s (%s) has no test in covered", name, kind)
			continue
		}
		body, ok := tests[where]
		if !ok {
			dir, fn, _ := strings.Cut(where, " ")
			for _, src := range goFiles(t, filepath.Join(root, dir), true) {
				if i := strings.Index(src, "\nfunc "+fn+"(t *testing.T) {\n"); i >= 0 {
					rest := src[i+1:]
					if j := strings.Index(rest, "\n}\n"); j >= 0 {
						body = rest[:j]
					}
				}
			}
			tests[where] = body
		}
		if body == "" {
			t.Errorf("%s: test %s not found", name, where)
			continue
		}
		if !strings.Contains(body, "events."+name) && !strings.Contains(body, string(kind)) {
			t.Errorf("%s: test %s mentions neither events.%s nor %q", name, where, name, kind)
		}
	}
	for k := range covered {
		if !slices.Contains(names, nameOf(declared, k)) {
			t.Errorf("covered lists %s, which is not declared", k)
		}
	}
}

func nameOf(declared map[string]Kind, k Kind) string {
	for n, v := range declared {
		if v == k {
			return n
		}
	}
	return ""
}
