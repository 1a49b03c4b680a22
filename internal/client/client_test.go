package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/home"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The daemon-backed tests of this package are in internal/daemon, which
// builds the binaries; these cover what needs no daemon.
func TestDialWithoutDaemon(t *testing.T) {
	h := home.Dir(t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, h, DialOptions{}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no files: %v", err)
	}
	if err := Stop(ctx, h); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("stop: %v", err)
	}
	os.WriteFile(h.PortFile(), []byte("banana\n"), 0o600)
	if _, err := Dial(ctx, h, DialOptions{}); err == nil || !strings.Contains(err.Error(), "not a port number") {
		t.Fatalf("bad port file: %v", err)
	}
	os.WriteFile(h.PortFile(), []byte("1\n"), 0o600)
	if _, err := Dial(ctx, h, DialOptions{}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no token file: %v", err)
	}
	os.WriteFile(h.TokenFile(), []byte("x\n"), 0o600)
	if _, err := Dial(ctx, h, DialOptions{}); !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("nothing listening: %v", err)
	}
	if _, err := Connect(ctx, h, ConnectOptions{}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("connect without auto-start: %v", err)
	}
	_, err := Connect(ctx, h, ConnectOptions{AutoStart: true, Exe: filepath.Join(t.TempDir(), "missing")})
	if !errors.Is(err, ErrStartFailed) {
		t.Fatalf("auto-start of a missing executable: %v", err)
	}
	// FindExe is asked only when a daemon must be started, and its failure
	// says why.
	found := 0
	find := func(context.Context) (string, error) {
		found++
		return "", errors.New("no source to build astridd from")
	}
	_, err = Connect(ctx, h, ConnectOptions{AutoStart: true, FindExe: find})
	if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "no source to build") || found != 1 {
		t.Fatalf("auto-start with a failing FindExe: %v (asked %d times)", err, found)
	}
	if _, err := Connect(ctx, h, ConnectOptions{FindExe: find}); !errors.Is(err, ErrNotRunning) || found != 1 {
		t.Fatalf("FindExe asked without auto-start: %v (asked %d times)", err, found)
	}
}
