package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// maxStatus bounds what the parent reads from the helper's status pipe.
const maxStatus = 4 << 10

// ErrSetup is wrapped by the error of Cmd.Start when the helper refused to
// run the target: the sandbox could not be applied, the program was not
// found, or execve failed. The target did not run.
var ErrSetup = errors.New("sandbox: the command did not start")

// Cmd is a command prepared by Sandbox.Command. Set Stdin, Stdout and
// Stderr, then call Start and Wait, or Run. A Cmd cannot be reused.
//
// The process runs in its own process group. When the context given to
// Command is done, the whole group gets SIGTERM and, after the kill grace,
// SIGKILL. When the main process exits, anything still in its group is
// killed, so background jobs cannot outlive the command. Wait must be
// called after a successful Start, as with exec.Cmd.
type Cmd struct {
	// Stdin, Stdout and Stderr are as in exec.Cmd.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	cmd           *exec.Cmd
	ctx           context.Context
	grace         time.Duration
	args          []string
	sandboxed     bool
	netRestricted bool

	started   bool
	exited    chan struct{} // closed by Wait once the main process has exited
	watchDone chan struct{} // closed when the context watcher has stopped
	killed    bool          // the context watcher signalled the group; read after watchDone
}

// Sandboxed reports whether the filesystem sandbox applies to the process.
// When false, the process runs with the daemon's filesystem view, and the
// security interceptor must require approval for it.
func (c *Cmd) Sandboxed() bool { return c.sandboxed }

// NetworkRestricted reports whether the Profile's network rules are
// enforced (Landlock ABI 4 or later, and Network.Unrestricted not set).
func (c *Cmd) NetworkRestricted() bool { return c.netRestricted }

// String returns the target's command line, for logs.
func (c *Cmd) String() string { return strings.Join(c.args, " ") }

// Pid returns the process id (and process group id) after Start, or 0.
func (c *Cmd) Pid() int {
	if c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Run starts the command and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Start starts the helper and returns once it has exec'd the target, or
// with an error wrapping ErrSetup if it refused to.
func (c *Cmd) Start() error {
	if c.started {
		return errors.New("sandbox: Start called twice")
	}
	c.started = true
	if err := c.ctx.Err(); err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("sandbox: status pipe: %w", err)
	}
	defer r.Close()
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	c.cmd.ExtraFiles = []*os.File{w} // StatusFD
	err = c.cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("sandbox: start helper: %w", err)
	}
	c.exited = make(chan struct{})
	c.watchDone = make(chan struct{})
	go c.watch()

	// The pipe closes empty when execve succeeds (close-on-exec), and
	// carries the reason when the helper gives up.
	msg, _ := io.ReadAll(io.LimitReader(r, maxStatus))
	if len(msg) > 0 {
		werr := c.Wait()
		return fmt.Errorf("%w: %s (%v)", ErrSetup, strings.TrimSpace(string(msg)), werr)
	}
	return nil
}

// watch signals the process group when the context is done: SIGTERM, then
// SIGKILL after the grace period. It stops as soon as Wait has seen the main
// process exit. NOTE: the main process is not reaped before watch stops, so
// the process group id cannot have been reused by then.
func (c *Cmd) watch() {
	defer close(c.watchDone)
	select {
	case <-c.exited:
		return
	case <-c.ctx.Done():
	}
	c.killed = true
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(c.grace)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// Wait waits for the command to exit, kills whatever it left in its
// process group, and releases its resources. When the context ended the
// command, the error wraps both the context's cause and the exit error.
func (c *Cmd) Wait() error {
	if !c.started || c.exited == nil {
		return errors.New("sandbox: Wait without a successful Start")
	}
	select {
	case <-c.exited:
		return errors.New("sandbox: Wait called twice")
	default:
	}
	pgid := c.cmd.Process.Pid
	var err error
	reaped := false
	if werr := waitExited(pgid); errors.Is(werr, errors.ErrUnsupported) {
		// Without waitid(WNOWAIT), reap first and kill the leftovers
		// after, accepting a small window in which the group id could be
		// reused.
		err, reaped = c.cmd.Wait(), true
	}
	close(c.exited)
	<-c.watchDone
	// NOTE: on Linux the main process is a zombie here, still holding the
	// group id, so this reaches only its own leftovers.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if !reaped {
		err = c.cmd.Wait()
	}
	if c.killed {
		if err == nil {
			return fmt.Errorf("sandbox: %w", context.Cause(c.ctx))
		}
		return fmt.Errorf("sandbox: %w: %w", context.Cause(c.ctx), err)
	}
	return err
}
