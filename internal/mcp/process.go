package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"lukechampine.com/blake3"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// HashMismatchError is returned by Start when a stdio server's binary does
// not match its configured binary_hash. The server is not started.
type HashMismatchError struct {
	Server string
	Binary string
	Want   string
	Got    string
}

func (e *HashMismatchError) Error() string {
	return fmt.Sprintf("mcp server %s: binary %s has hash %s, but binary_hash pins %s; refusing to start it", e.Server, e.Binary, e.Got, e.Want)
}

// maxBinary bounds the size of a binary we hash.
const maxBinary = 2 << 30

// HashFile returns the hash of the file at path in the form binary_hash
// uses: "blake3:<hex>" (algo "blake3") or "sha256:<hex>" (algo "sha256").
func HashFile(path, algo string) (string, error) {
	var h hash.Hash
	switch algo {
	case "blake3":
		h = blake3.New(32, nil)
	case "sha256":
		h = sha256.New()
	default:
		return "", fmt.Errorf("unknown hash %q", algo)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	n, err := io.Copy(h, io.LimitReader(f, maxBinary+1))
	if err != nil {
		return "", err
	}
	if n > maxBinary {
		return "", fmt.Errorf("%s is larger than %d bytes", path, int64(maxBinary))
	}
	return algo + ":" + hex.EncodeToString(h.Sum(nil)), nil
}

// resolveCommand finds a server's command as the sandbox will run it:
// a name with a slash relative to the server's cwd, a bare name on PATH.
// The result is absolute with symlinks resolved, so the file hashed is the
// file executed.
func resolveCommand(cmd, cwd, path string) (string, error) {
	var p string
	if strings.Contains(cmd, "/") {
		p = cmd
		if !filepath.IsAbs(p) {
			if cwd == "" {
				return "", fmt.Errorf("command %q is relative and the server has no cwd", cmd)
			}
			p = filepath.Join(cwd, p)
		}
	} else {
		for _, dir := range filepath.SplitList(path) {
			if dir == "" || !filepath.IsAbs(dir) {
				continue
			}
			c := filepath.Join(dir, cmd)
			if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				p = c
				break
			}
		}
		if p == "" {
			return "", fmt.Errorf("command %q not found on PATH", cmd)
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("command %q: %w", cmd, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("command %q is not a regular file", real)
	}
	return real, nil
}

// checkHash compares the binary with the pinned hash, if any.
func checkHash(server, bin, pinned string) error {
	if pinned == "" {
		return nil
	}
	algo, _, ok := strings.Cut(pinned, ":")
	if !ok {
		return fmt.Errorf("mcp server %s: malformed binary_hash %q", server, pinned)
	}
	got, err := HashFile(bin, algo)
	if err != nil {
		return fmt.Errorf("mcp server %s: hash %s: %w", server, bin, err)
	}
	if got != pinned {
		return &HashMismatchError{Server: server, Binary: bin, Want: pinned, Got: got}
	}
	return nil
}

// ServerProfile returns the sandbox profile of a stdio server: read-only
// on the system directories, on toolchainDirs (for example an installed
// Node) and on the server's own files (the directory of its binary and,
// for each argument naming an existing absolute path, that path; a file
// inside a node_modules tree grants the whole tree); read-write on its cwd
// (when set) and on a private temp dir that is also its HOME; no network.
// The environment is PATH, HOME, TMPDIR, LANG and the server's configured
// env, nothing of the daemon's.
func ServerProfile(s config.Server, bin, tempDir string, toolchainDirs []string) sandbox.Profile {
	var ro []string
	add := func(p string) {
		if p == "" || !filepath.IsAbs(p) {
			return
		}
		if _, err := os.Stat(p); err == nil {
			ro = append(ro, filepath.Clean(p))
		}
	}
	for _, d := range sandbox.SystemDirs {
		add(d)
	}
	for _, f := range []string{"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/version", "/proc/loadavg", "/proc/uptime"} {
		add(f)
	}
	for _, d := range toolchainDirs {
		add(d)
	}
	add(filepath.Dir(bin))
	for _, a := range s.Args {
		if !filepath.IsAbs(a) {
			continue
		}
		if i := strings.LastIndex(a, "/node_modules/"); i >= 0 {
			add(a[:i+len("/node_modules")])
			continue
		}
		add(a)
	}
	var rw []string
	if s.Cwd != "" {
		rw = append(rw, s.Cwd)
	}
	path := []string{}
	for _, d := range toolchainDirs {
		if fi, err := os.Stat(filepath.Join(d, "bin")); err == nil && fi.IsDir() {
			path = append(path, filepath.Join(d, "bin"))
		}
	}
	path = append(path, filepath.Dir(bin), "/usr/local/bin", "/usr/bin", "/bin")
	env := []string{"PATH=" + strings.Join(path, ":"), "HOME=" + tempDir, "LANG=C.UTF-8"}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+s.Env[k])
	}
	dir := s.Cwd
	if dir == "" {
		dir = tempDir
	}
	return sandbox.Profile{ReadOnly: dedupe(ro), ReadWrite: rw, TempDir: tempDir, Env: env, Dir: dir}
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// process is a running stdio server.
type process struct {
	cmd    *sandbox.Cmd
	stdin  *os.File // our end of its stdin
	stdout *os.File // our end of its stdout
	stderr *ring
	cancel context.CancelFunc
	exited chan struct{}
	err    error // exit status; read after exited is closed
}

// startProcess launches bin through the sandbox with pipes for stdin and
// stdout. The process lives until stop or until ctx ends.
func startProcess(ctx context.Context, sb *sandbox.Sandbox, prof sandbox.Profile, bin string, args []string) (*process, error) {
	pctx, cancel := context.WithCancel(ctx)
	cmd, err := sb.Command(pctx, prof, bin, args...)
	if err != nil {
		cancel()
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		cancel()
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		cancel()
		inR.Close()
		inW.Close()
		return nil, err
	}
	p := &process{cmd: cmd, stdin: inW, stdout: outR, stderr: &ring{max: 16 << 10}, cancel: cancel, exited: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, p.stderr
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		cancel()
		inW.Close()
		outR.Close()
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop shuts the server down the polite way first: close its stdin and
// wait up to grace, then end its context (SIGTERM to the process group,
// SIGKILL after the sandbox's kill grace).
func (p *process) stop(grace time.Duration) error {
	p.stdin.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.cancel()
		<-p.exited
	}
	p.cancel()
	p.stdout.Close()
	if p.err != nil && !errors.Is(p.err, context.Canceled) {
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			return p.err
		}
	}
	return nil
}
