// Package helper is the child side of package sandbox: the code astridd
// runs when started as `astridd __sandbox-exec`. It reads the policy
// (sandbox.Spec) from its environment, applies it to itself and execve(2)s
// the target, which inherits every restriction.
//
// It is a separate package because it is the only one that links
// go-landlock (and its psx thread machinery); the CLI, which only probes
// the ABI, imports package sandbox alone.
//
// The order of the steps matters, and each one fails closed: any error
// exits with sandbox.ExitSetupFailed, reporting the reason on the status
// pipe, without running the target.
//
//  1. Mark the status pipe close-on-exec, take and unset the Spec, decode it
//     strictly (package sandbox validates it, protected paths included).
//  2. chdir to the Spec's directory.
//  3. Set no_new_privs on the thread that will call execve (the goroutine
//     stays locked to it), and check that it is set.
//  4. Landlock: open every rule path with openat2(RESOLVE_NO_SYMLINKS), so
//     the inode granted is the one the daemon checked even if someone
//     swapped a symlink in since; restrict filesystem, network and IPC
//     scopes with the exact configuration of the kernel's ABI (never
//     go-landlock's silent best effort).
//  5. seccomp, when the network is restricted: refuse Multipath TCP
//     sockets, which Landlock's TCP rules do not cover.
//  6. setrlimit, last, so the limits bind the target and not the helper's
//     own set-up.
//  7. Look the program up in the Spec's PATH and execve it with exactly the
//     Spec's arguments and environment.
package helper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// Main runs the helper. args are the arguments after sandbox.HelperArg and
// must be empty. On success it does not return (the process becomes the
// target); otherwise it returns the exit status.
func Main(args []string) int {
	return run(args, options{})
}

// options exist for this package's tests only; Main uses the zero value.
type options struct {
	// noMPTCPFilter skips the seccomp filter, to show that the test of the
	// filter fails without it.
	noMPTCPFilter bool
}

// setupError carries the exit status for a failure.
type setupError struct {
	code int
	err  error
}

func (e *setupError) Error() string { return e.err.Error() }

func run(args []string, opts options) int {
	// NOTE: no_new_privs and (without TSYNC) seccomp are per thread; the
	// thread that sets them must be the one that calls execve.
	runtime.LockOSThread()
	status := statusPipe()
	err := prepareAndExec(args, opts)
	code := sandbox.ExitSetupFailed
	var se *setupError
	if errors.As(err, &se) {
		code = se.code
	}
	msg := fmt.Sprintf("astrid sandbox: %v", err)
	if status != nil {
		fmt.Fprintln(status, msg)
		status.Close()
	} else {
		fmt.Fprintln(os.Stderr, msg)
	}
	return code
}

// statusPipe returns the status pipe, marked close-on-exec, or nil when fd
// 3 is not a pipe (the helper was started by hand).
func statusPipe() *os.File {
	var st syscall.Stat_t
	if err := syscall.Fstat(sandbox.StatusFD, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return nil
	}
	syscall.CloseOnExec(sandbox.StatusFD)
	return os.NewFile(sandbox.StatusFD, "sandbox-status")
}

func prepareAndExec(args []string, opts options) error {
	data, ok := os.LookupEnv(sandbox.SpecEnv)
	os.Unsetenv(sandbox.SpecEnv)
	if len(args) != 0 {
		return fmt.Errorf("unexpected arguments %q: the helper takes its whole input from %s", args, sandbox.SpecEnv)
	}
	if !ok {
		return fmt.Errorf("%s is not set", sandbox.SpecEnv)
	}
	spec, err := sandbox.DecodeSpec(data)
	if err != nil {
		return err
	}
	if err := os.Chdir(spec.Dir); err != nil {
		return fmt.Errorf("chdir: %w", err)
	}
	if err := noNewPrivs(); err != nil {
		return err
	}
	if spec.Enforce {
		if err := enforce(spec, opts); err != nil {
			return err
		}
	}
	if err := setLimits(spec.Limits); err != nil {
		return err
	}
	path, err := lookPath(spec.Path, spec.Env)
	if err != nil {
		return &setupError{sandbox.ExitNotFound, err}
	}
	err = execTarget(spec, path)
	return &setupError{sandbox.ExitCannotExec, fmt.Errorf("exec %s: %w", path, err)}
}

// lookPath finds the program as a shell would: a name with a slash is used
// as is, anything else is searched in the PATH of env (an empty element
// meaning the working directory).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		p := filepath.Join(dir, name)
		if dir == "" || dir == "." {
			p = "./" + name
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found in PATH %q", name, pathEnv)
}
