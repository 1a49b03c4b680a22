package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// MinABI is the oldest Landlock ABI the sandbox accepts (Linux 6.2). Below
// ABI 3 truncate(2) is not restricted, so a process could empty any file
// it can read; such kernels count as "no sandbox".
const MinABI = 3

// netABI is the first Landlock ABI with TCP rules.
const netABI = 4

// DefaultKillGrace is the time between SIGTERM and SIGKILL when a command's
// context is done.
const DefaultKillGrace = 2 * time.Second

// Options configure a Sandbox.
type Options struct {
	// Helper is the executable that runs the helper when started with
	// HelperArg (astridd, or a test binary). Empty means os.Executable().
	Helper string
	// Protected lists absolute paths that no rule may be, contain or lie
	// inside: $ASTRID_HOME, at least.
	Protected []string
	// DisableLandlock makes Available false, as on a kernel without
	// Landlock. For tests, and for an administrator who must run where
	// Landlock misbehaves (every command then needs approval).
	DisableLandlock bool
	// KillGrace is the time between SIGTERM and SIGKILL; zero means
	// DefaultKillGrace.
	KillGrace time.Duration
	// Logger receives the warning when the sandbox is unavailable; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Sandbox builds sandboxed commands. It is immutable after New and safe for
// concurrent use.
type Sandbox struct {
	helper    string
	protected []string // each protected path, given and resolved forms
	abi       int
	available bool
	netOK     bool  // network rules can be enforced
	why       error // why the sandbox is unavailable
	grace     time.Duration
}

// New probes the kernel and returns a Sandbox. When the sandbox is
// unavailable it logs a warning once, here, and still returns a usable
// Sandbox whose commands report Sandboxed() == false.
func New(opts Options) (*Sandbox, error) {
	s := &Sandbox{helper: opts.Helper, grace: opts.KillGrace}
	if s.grace <= 0 {
		s.grace = DefaultKillGrace
	}
	if s.helper == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: find the helper executable: %w", err)
		}
		s.helper = exe
	}
	if !filepath.IsAbs(s.helper) {
		return nil, fmt.Errorf("sandbox: helper %q must be an absolute path", s.helper)
	}
	for _, p := range opts.Protected {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("sandbox: protected path %q must be absolute", p)
		}
		p = filepath.Clean(p)
		s.protected = appendUnique(s.protected, p)
		s.protected = appendUnique(s.protected, resolveNearest(p))
	}
	s.abi, s.available, s.netOK, s.why = platformProbe()
	if opts.DisableLandlock {
		s.available, s.netOK, s.why = false, false, errors.New("disabled by configuration")
	}
	if !s.available {
		log := opts.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("SANDBOX UNAVAILABLE: native commands will run WITHOUT filesystem or network isolation; every command needs approval",
			"reason", s.why, "landlock_abi", s.abi, "min_abi", MinABI)
	}
	return s, nil
}

// ABI returns the Landlock ABI version probed by New (0 without Landlock).
func (s *Sandbox) ABI() int { return s.abi }

// Available reports whether commands are sandboxed. When false, Command
// still works (resource limits, no_new_privs, process-group kill) but
// every Cmd reports Sandboxed() == false.
func (s *Sandbox) Available() bool { return s.available }

// Unavailable returns why the sandbox is unavailable, or nil.
func (s *Sandbox) Unavailable() error { return s.why }

// Command returns a command that runs name with args under profile p,
// through the helper. It checks the whole profile first: every path must be
// absolute and exist, and none may be, contain or lie inside a protected
// path (after resolving symlinks); TempDir is created. The context bounds
// the whole process group (see Cmd).
func (s *Sandbox) Command(ctx context.Context, p Profile, name string, args ...string) (*Cmd, error) {
	if name == "" {
		return nil, errors.New("sandbox: empty program name")
	}
	spec := &Spec{
		Version: SpecVersion,
		Path:    name,
		Args:    append([]string{name}, args...),
		Dir:     "/",
		Enforce: s.available,
	}
	if p.Dir != "" {
		if !filepath.IsAbs(p.Dir) {
			return nil, fmt.Errorf("sandbox: working directory %q must be absolute", p.Dir)
		}
		spec.Dir = filepath.Clean(p.Dir)
	}
	spec.Protected = s.protected

	env := append([]string{}, p.Env...)
	rw := append([]string{}, p.ReadWrite...)
	if p.TempDir != "" {
		// Checked before it is created: never mkdir inside a protected path.
		if err := checkAbs("temp dir", p.TempDir); err != nil {
			return nil, err
		}
		if err := overlapsProtected(resolveNearest(p.TempDir), s.protected); err != nil {
			return nil, err
		}
		if err := ensurePrivateDir(p.TempDir); err != nil {
			return nil, err
		}
		rw = append(rw, p.TempDir)
		env = append(env, "TMPDIR="+filepath.Clean(p.TempDir))
	}
	spec.Env = dedupEnv(env)

	var err error
	if spec.ReadOnly, err = s.resolveRules(p.ReadOnly); err != nil {
		return nil, err
	}
	if spec.ReadWrite, err = s.resolveRules(rw); err != nil {
		return nil, err
	}
	if !s.available {
		spec.ReadOnly, spec.ReadWrite = nil, nil
	}

	netRestricted := s.available && s.netOK && !p.Network.Unrestricted
	if netRestricted {
		spec.RestrictNetwork = true
		spec.ConnectTCP = append([]uint16{}, p.Network.ConnectTCP...)
		spec.BindTCP = append([]uint16{}, p.Network.BindTCP...)
	}

	l := p.Limits.withDefaults()
	spec.Limits = SpecLimits(l)

	enc, err := spec.Encode()
	if err != nil {
		return nil, err
	}
	c := &exec.Cmd{
		Path: s.helper,
		Args: []string{s.helper, HelperArg},
		// GOMAXPROCS=1: the helper does nothing in parallel, and a Go
		// runtime with fewer threads starts faster and gives psx fewer
		// threads to synchronize. The target never sees this environment.
		Env:         []string{SpecEnv + "=" + enc, "GOMAXPROCS=1"},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		WaitDelay:   s.grace,
	}
	return &Cmd{
		cmd:           c,
		ctx:           ctx,
		grace:         s.grace,
		args:          spec.Args,
		sandboxed:     s.available,
		netRestricted: netRestricted,
	}, nil
}

// resolveRules checks each rule path and returns it with symlinks resolved:
// the form the helper will open (it refuses the path if resolution changed
// in between).
func (s *Sandbox) resolveRules(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("sandbox: rule %q must be an absolute path", p)
		}
		p = filepath.Clean(p)
		if err := overlapsProtected(p, s.protected); err != nil {
			return nil, err
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("sandbox: rule %s: %w", p, err)
		}
		if err := overlapsProtected(real, s.protected); err != nil {
			return nil, err
		}
		out = appendUnique(out, real)
	}
	return out, nil
}

// ensurePrivateDir creates dir with mode 0700 if it is missing and refuses
// one that is a symlink, not a directory, not ours, or open to others.
func ensurePrivateDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("sandbox: temp dir %q must be an absolute path", dir)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("sandbox: create temp dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("sandbox: temp dir: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("sandbox: temp dir %s is not a directory (a symlink?)", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("sandbox: temp dir %s has mode %04o; it must be 0700", dir, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("sandbox: temp dir %s belongs to uid %d, not to us", dir, st.Uid)
	}
	return nil
}

// resolveNearest resolves symlinks in p through its nearest existing
// ancestor, so a protected path that does not exist yet is still compared
// in its real form.
func resolveNearest(p string) string {
	rest := ""
	for {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// dedupEnv keeps the last value of each key, in first-seen order.
func dedupEnv(env []string) []string {
	last := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	out := make([]string, 0, len(last))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if last[k] == i {
			out = append(out, kv)
		}
	}
	return out
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
