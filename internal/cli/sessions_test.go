package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/daemon"
)

// liveSessions is a backend holding one busy session.
type liveSessions struct{ daemon.Unavailable }

func (liveSessions) ListSessions(context.Context, daemon.Caller, api.ListSessionsParams) (api.ListSessionsResult, error) {
	return api.ListSessionsResult{Sessions: []api.SessionInfo{{ID: "s-live", Workspace: "/w", Mode: "guided", Active: true, Busy: true, Turns: 3, SpentUSD: 0.5}}}, nil
}

// TestSessionsListViaDaemon: without a daemon the (absent) store is read
// and nothing is started; with one, its answer is shown, loaded and busy
// sessions included.
func TestSessionsListViaDaemon(t *testing.T) {
	te := newTestEnv(t)
	te.vars[DaemonExeVar] = "/nonexistent/astridd" // starting one would fail loudly
	if out, stderr, code := te.run(t, "sessions", "list"); code != 0 || !strings.Contains(out, "no sessions") {
		t.Fatalf("without a daemon: %d %q %q", code, out, stderr)
	}
	serveTestDaemon(t, te, func(context.Context, daemon.BackendDeps) (daemon.Backend, error) { return liveSessions{}, nil })
	out, stderr, code := te.run(t, "sessions", "list")
	if code != 0 || !strings.Contains(out, "s-live") || !strings.Contains(out, "busy") || !strings.Contains(out, "$0.5000") {
		t.Fatalf("with a daemon: %d %q %q", code, out, stderr)
	}
}
