package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/astrid-runtime/astrid/internal/home"
)

// DaemonName is the daemon executable Connect starts.
const DaemonName = "astridd"

// ConnectOptions configure Connect.
type ConnectOptions struct {
	DialOptions
	// AutoStart starts an ephemeral daemon when none answers.
	AutoStart bool
	// Exe is the daemon executable; empty means the one FindExe returns,
	// or without FindExe the astridd next to the running executable, else
	// on PATH.
	Exe string
	// FindExe finds the daemon executable when one must be started (the
	// CLI's also builds it from the source for `go run`); it is not called
	// when a daemon answers.
	FindExe func(ctx context.Context) (string, error)
	// Env is the daemon's environment; nil means this process's. Connect
	// sets ASTRID_HOME in it either way.
	Env []string
	// StartTimeout bounds the wait for a started daemon (default 10 s).
	StartTimeout time.Duration
}

// Connect dials the daemon of h and, when none answers and AutoStart is
// set, starts an ephemeral one and waits until it is ready.
func Connect(ctx context.Context, h home.Dir, o ConnectOptions) (*Client, error) {
	c, err := Dial(ctx, h, o.DialOptions)
	if err == nil || !errors.Is(err, ErrNotRunning) || !o.AutoStart {
		return c, err
	}
	var exe string
	if o.Exe == "" && o.FindExe != nil {
		if exe, err = o.FindExe(ctx); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrStartFailed, err)
		}
	} else if exe, err = DaemonExe(o.Exe); err != nil {
		return nil, err
	}
	if err := h.Ensure(); err != nil {
		return nil, err
	}
	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	exited, stderrPath, err := start(h, exe, o.Env)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStartFailed, err)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout+exitGrace)
	defer cancel()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var exitErr error
	for {
		c, err := Dial(wctx, h, o.DialOptions)
		if err == nil {
			if _, err = c.Status(wctx); err == nil {
				return c, nil
			}
			c.Close()
		}
		if !errors.Is(err, ErrNotRunning) && wctx.Err() == nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			if exited == nil {
				return nil, startError(h, exe, fmt.Sprintf("exited (%v)", exitErr), stderrPath)
			}
			return nil, startError(h, exe, fmt.Sprintf("did not become ready within %s", timeout), stderrPath)
		case exitErr = <-exited:
			// It ended: it failed, or it lost the race for the lock to
			// a daemon another client started, which should answer
			// within a moment.
			exited = nil
			deadline.Reset(exitGrace)
		case <-time.After(pollInterval):
		}
	}
}

// exitGrace is how long Connect still waits for another daemon after the
// one it started exited.
const exitGrace = time.Second

// DaemonExe returns exe if set, else the astridd next to the running
// executable, else the one on PATH.
func DaemonExe(exe string) (string, error) {
	if exe != "" {
		return exe, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), DaemonName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath(DaemonName)
	if err != nil {
		return "", fmt.Errorf("%w: %s is neither next to this program nor on PATH", ErrStartFailed, DaemonName)
	}
	return p, nil
}

// start launches the daemon detached. exited receives its exit error if
// it ends (a second daemon that lost the race for the lock ends at once).
func start(h home.Dir, exe string, env []string) (<-chan error, string, error) {
	if err := os.MkdirAll(h.LogsDir(), 0o700); err != nil {
		return nil, "", err
	}
	stderrPath := filepath.Join(h.LogsDir(), "astridd.stderr")
	errf, err := os.OpenFile(stderrPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, "", err
	}
	defer errf.Close()
	if env == nil {
		env = os.Environ()
	}
	cmd := exec.Command(exe, "--ephemeral")
	cmd.Env = append(env[:len(env):len(env)], home.EnvVar+"="+h.Path())
	cmd.Dir = "/"
	cmd.Stderr = errf
	// NOTE: its own session: no controlling terminal, and the user's
	// Ctrl+C in this terminal does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it when it ends
	return exited, stderrPath, nil
}

func startError(h home.Dir, exe, what, stderrPath string) error {
	msg := exe + " " + what
	if b, err := os.ReadFile(stderrPath); err == nil && len(bytes.TrimSpace(b)) > 0 {
		b = bytes.TrimSpace(b)
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		msg += ": " + string(b)
	}
	return fmt.Errorf("%w: %s; see %s", ErrStartFailed, msg, filepath.Join(h.LogsDir(), "daemon.log"))
}

// Stop asks the daemon of h to shut down and waits until it is gone (its
// pid file removed, or its process dead). ErrNotRunning if none answers.
func Stop(ctx context.Context, h home.Dir) error {
	c, err := Dial(ctx, h, DialOptions{Frontend: "cli"})
	if err != nil {
		return err
	}
	pid := readPID(h)
	err = c.Shutdown(ctx)
	c.Close()
	if err != nil && !errors.Is(err, ErrClosed) { // closed: it is going
		return err
	}
	for {
		if gone(h, pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the daemon (pid %d) is still running: %w", pid, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

func readPID(h home.Dir) int {
	b, err := os.ReadFile(h.PIDFile())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// gone reports that the daemon with this pid has finished: its pid file
// is gone or names another process, or the process no longer exists.
func gone(h home.Dir, pid int) bool {
	if now := readPID(h); now == 0 || now != pid {
		return true
	}
	return pid > 0 && syscall.Kill(pid, 0) == syscall.ESRCH
}
