package tools

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/workspace"
)

// Bash limits.
const (
	bashDefaultTimeout = 120 * time.Second
	bashMaxTimeout     = 600 * time.Second
	// bashOutputChars caps what the model sees of stdout and stderr
	// together.
	bashOutputChars = 30_000
	// bashCaptureBytes bounds what is kept in memory of each stream.
	bashCaptureBytes = 1 << 20
)

// BashOptions configure the bash tool.
type BashOptions struct {
	// Sandbox runs every command; required. When it is unavailable the
	// commands still run (with limits) and the interceptor asks before
	// each one (see core: SandboxAvailable).
	Sandbox *sandbox.Sandbox
	// TempRoot holds the private per-session temp directories; empty
	// means os.TempDir()/astrid-sessions.
	TempRoot string
	// ToolchainDirs are extra read-only directories with compilers and
	// interpreters (for example /usr/local/go); their bin/ goes on PATH.
	ToolchainDirs []string
	// Shell is the shell that runs the command; empty means /bin/bash.
	Shell string
}

// Bash is bash{command, timeout}: it runs a command line in the workspace
// through the native sandbox, keeping the working directory between calls
// of a session. Register it with Registry.Register.
type Bash struct {
	o BashOptions

	mu  sync.Mutex
	cwd map[string]string // guarded by mu; by session id
}

// NewBash returns the bash tool.
func NewBash(o BashOptions) (*Bash, error) {
	if o.Sandbox == nil {
		return nil, errors.New("bash: no sandbox")
	}
	if o.TempRoot == "" {
		o.TempRoot = filepath.Join(os.TempDir(), "astrid-sessions")
	}
	if o.Shell == "" {
		o.Shell = "/bin/bash"
	}
	// The temp path is spliced into the wrapper script; keep it to
	// characters that need no quoting.
	if !filepath.IsAbs(o.TempRoot) || strings.Trim(o.TempRoot, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") != "" {
		return nil, fmt.Errorf("bash: temp root %q must be an absolute path of letters, digits and /._-", o.TempRoot)
	}
	return &Bash{o: o, cwd: map[string]string{}}, nil
}

type bashArgs struct {
	Command string
	Timeout int
}

// Spec implements Tool.
func (b *Bash) Spec() Spec {
	return Spec{
		Name: "bash",
		Description: `Run a shell command line with bash in the workspace and return its exit code, stdout and stderr.
The working directory is kept between calls of this session (cd persists); it starts at the workspace root.
Commands run in a sandbox: the workspace and a private temp directory ($TMPDIR) are writable, system directories are read-only, the rest of the machine (including your home directory) is out of reach, and the network is off.
timeout is in seconds (default 120, at most 600); the whole process group is killed when it expires.
Output is cut at 30000 characters.`,
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "command": {"type": "string", "description": "The command line to run with bash -c."},
    "timeout": {"type": "integer", "minimum": 1, "maximum": 600, "description": "Seconds before the command is killed. Default 120."}
  },
  "required": ["command"],
  "additionalProperties": false
}`),
	}
}

func parseBash(raw []byte) (bashArgs, error) {
	var a bashArgs
	if err := decodeArgs("bash", raw,
		field{name: "command", required: true, dst: &a.Command},
		field{name: "timeout", dst: &a.Timeout},
	); err != nil {
		return bashArgs{}, err
	}
	if strings.TrimSpace(a.Command) == "" {
		return bashArgs{}, &ArgError{Tool: "bash", Field: "command", Msg: "must not be empty"}
	}
	if a.Timeout < 0 || time.Duration(a.Timeout)*time.Second > bashMaxTimeout {
		return bashArgs{}, &ArgError{Tool: "bash", Field: "timeout", Msg: fmt.Sprintf("must be between 1 and %d seconds", int(bashMaxTimeout/time.Second))}
	}
	return a, nil
}

// Prepare implements Tool: the action is an execute action carrying the
// command line exactly as the model wrote it; the interceptor parses it.
func (b *Bash) Prepare(s security.Session, raw json.RawMessage) (security.Action, security.Executor, error) {
	args, err := parseBash(raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	if s.Workspace == "" {
		return security.Action{}, nil, errors.New("bash needs a session with a workspace")
	}
	a := security.NewExecAction(s, args.Command, raw)
	timeout := bashDefaultTimeout
	if args.Timeout > 0 {
		timeout = time.Duration(args.Timeout) * time.Second
	}
	return a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return b.run(ctx, a.Session, a.Command, timeout)
	}), nil
}

// sessionTemp is the private temp directory of a session.
func (b *Bash) sessionTemp(session string) string {
	sum := sha256.Sum256([]byte(session))
	return filepath.Join(b.o.TempRoot, hex.EncodeToString(sum[:12]))
}

// Forget drops a session's working directory and removes its temp
// directory (when the session ends).
func (b *Bash) Forget(session string) error {
	b.mu.Lock()
	delete(b.cwd, session)
	b.mu.Unlock()
	return os.RemoveAll(b.sessionTemp(session))
}

func (b *Bash) workdir(s security.Session) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d, ok := b.cwd[s.ID]; ok && workspace.Within(s.Workspace, d) {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return s.Workspace
}

func (b *Bash) run(ctx context.Context, s security.Session, command string, timeout time.Duration) ([]byte, error) {
	if err := os.MkdirAll(b.o.TempRoot, 0o700); err != nil {
		return nil, fmt.Errorf("bash: temp root: %w", err)
	}
	temp := b.sessionTemp(s.ID)
	prof := sandbox.DefaultShellProfile(s.Workspace, temp, b.o.ToolchainDirs)
	prof.Dir = b.workdir(s)
	// NOTE: the wrapper is our code, added after the interceptor judged the
	// command. It leaves the final working directory in the session's temp
	// directory; the command could write anything there, so the value is
	// only used when it is a directory inside the workspace.
	cwdFile := filepath.Join(temp, ".astrid-cwd")
	_ = os.Remove(cwdFile)
	script := "trap 'printf \"%s\" \"$PWD\" >" + cwdFile + " 2>/dev/null' EXIT\n" + command
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd, err := b.o.Sandbox.Command(rctx, prof, b.o.Shell, "-c", script)
	if err != nil {
		return nil, fmt.Errorf("bash: %w", err)
	}
	var stdout, stderr capBuffer
	stdout.max, stderr.max = bashCaptureBytes, bashCaptureBytes
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Start()
	if runErr == nil {
		runErr = cmd.Wait()
	}
	if d, err := readSmall(cwdFile, 4096); err == nil && filepath.IsAbs(d) && filepath.Clean(d) == d && workspace.Within(s.Workspace, d) {
		b.mu.Lock()
		b.cwd[s.ID] = d
		b.mu.Unlock()
	}
	code := 0
	var note string
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
	case rctx.Err() != nil && ctx.Err() == nil:
		note = fmt.Sprintf("killed after the %s timeout", timeout)
		code = -1
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.As(runErr, &exitErr):
		code = exitErr.ExitCode()
	case errors.Is(runErr, sandbox.ErrSetup):
		return nil, fmt.Errorf("bash: the sandbox refused to start the command: %w", runErr)
	default:
		return nil, fmt.Errorf("bash: %w", runErr)
	}
	return []byte(formatBash(code, note, stdout.String(), stderr.String(), stdout.cut || stderr.cut, cmd.Sandboxed())), nil
}

// readSmall reads at most n bytes of a regular file without following a
// symlink at its name.
func readSmall(p string, n int64) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, n))
	return string(b), err
}

// formatBash renders the result for the model, capped at bashOutputChars.
func formatBash(code int, note, stdout, stderr string, captureCut, sandboxed bool) string {
	var b strings.Builder
	if note != "" {
		fmt.Fprintf(&b, "exit code: %d (%s)\n", code, note)
	} else {
		fmt.Fprintf(&b, "exit code: %d\n", code)
	}
	if !sandboxed {
		b.WriteString("note: ran without the native sandbox (Landlock unavailable)\n")
	}
	budget := bashOutputChars
	cut := captureCut
	section := func(name, s string) {
		if s == "" {
			return
		}
		if len(s) > budget {
			s = strings.TrimSuffix(clipText(s, budget), "…")
			cut = true
		}
		budget -= len(s)
		fmt.Fprintf(&b, "%s:\n%s", name, s)
		if !strings.HasSuffix(s, "\n") {
			b.WriteByte('\n')
		}
	}
	section("stdout", stdout)
	section("stderr", stderr)
	if cut {
		fmt.Fprintf(&b, "[output cut at %d characters]\n", bashOutputChars)
	}
	return b.String()
}

// capBuffer keeps the first max bytes written to it and remembers whether
// more came. It never fails a write, so a chatty command is not killed by
// a broken pipe.
type capBuffer struct {
	buf bytes.Buffer
	max int
	cut bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
			c.cut = true
		} else {
			c.buf.Write(p)
		}
	} else if len(p) > 0 {
		c.cut = true
	}
	return len(p), nil
}

func (c *capBuffer) String() string { return c.buf.String() }
