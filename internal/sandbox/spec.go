package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// The contract between the daemon (Sandbox.Command) and the helper
// (package sandbox/helper).
const (
	// HelperArg is the hidden first argument that makes astridd act as the
	// sandbox helper. The helper accepts no other argument.
	HelperArg = "__sandbox-exec"
	// SpecEnv names the environment variable that carries the JSON-encoded
	// Spec to the helper. The helper's environment holds nothing else, and
	// the target never sees it.
	SpecEnv = "ASTRID_SANDBOX_SPEC"
	// SpecVersion is the only Spec.Version this build accepts.
	SpecVersion = 1
	// MaxSpecSize bounds the encoded Spec. The kernel caps one environment
	// string at 128 KiB (MAX_ARG_STRLEN); this stays below it.
	MaxSpecSize = 120 << 10
	// StatusFD is the descriptor of the close-on-exec pipe on which the
	// helper reports why it did not run the target.
	StatusFD = 3
	// ExitSetupFailed is the helper's exit status when it could not apply
	// the Spec; the target did not run. ExitCannotExec (the program exists
	// but execve failed) and ExitNotFound follow the shell's conventions.
	ExitSetupFailed = 125
	ExitCannotExec  = 126
	ExitNotFound    = 127
)

// Bounds on the lists of a Spec.
const (
	maxPaths = 256
	maxPorts = 1024
	maxArgs  = 1 << 12
	maxEnv   = 1 << 12
)

// Spec is the wire form of one sandboxed command, as the helper receives
// it. All paths are absolute, clean and already resolved by the daemon; the
// helper refuses any path whose resolution has changed since (see package
// sandbox/helper).
type Spec struct {
	// Version is SpecVersion.
	Version int `json:"version"`
	// Path is the program: a path containing a slash (relative to Dir) or a
	// name looked up in the PATH of Env.
	Path string `json:"path"`
	// Args is the argument vector, Args[0] included.
	Args []string `json:"args"`
	// Env is the target's complete environment.
	Env []string `json:"env"`
	// Dir is the target's working directory.
	Dir string `json:"dir"`
	// Enforce says the filesystem sandbox must be applied; the helper
	// fails rather than run the target without it.
	Enforce bool `json:"enforce"`
	// RestrictNetwork says the TCP rules must be applied (needs Enforce).
	RestrictNetwork bool `json:"restrict_network"`
	// ReadOnly and ReadWrite are the granted hierarchies.
	ReadOnly  []string `json:"read_only"`
	ReadWrite []string `json:"read_write"`
	// Protected lists the paths no rule may be, contain or lie inside,
	// each in its given and its symlink-resolved form.
	Protected []string `json:"protected"`
	// ConnectTCP and BindTCP are the granted TCP ports.
	ConnectTCP []uint16 `json:"connect_tcp"`
	BindTCP    []uint16 `json:"bind_tcp"`
	// Limits has no zero field: defaults are filled in by the daemon.
	Limits SpecLimits `json:"limits"`
}

// SpecLimits is the wire form of Limits, every field set; Unlimited means
// RLIM_INFINITY.
type SpecLimits struct {
	CPUSeconds   uint64 `json:"cpu_seconds"`
	AddressSpace uint64 `json:"address_space"`
	FileSize     uint64 `json:"file_size"`
	OpenFiles    uint64 `json:"open_files"`
	Processes    uint64 `json:"processes"`
}

// Encode returns the JSON form of s after validating it.
func (s *Spec) Encode() (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	if len(b) > MaxSpecSize {
		return "", fmt.Errorf("sandbox spec is %d bytes; the limit is %d", len(b), MaxSpecSize)
	}
	return string(b), nil
}

// DecodeSpec parses and validates an encoded Spec. It rejects input larger
// than MaxSpecSize, unknown fields, trailing data and any Spec that fails
// Validate; it returns nothing partial.
func DecodeSpec(data string) (*Spec, error) {
	if len(data) > MaxSpecSize {
		return nil, fmt.Errorf("sandbox spec is %d bytes; the limit is %d", len(data), MaxSpecSize)
	}
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode sandbox spec: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode sandbox spec: trailing data after the JSON object")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks s without touching the filesystem: version, bounds,
// absolute clean paths, no NUL bytes, consistent flags, complete limits,
// and no rule lexically equal to, containing or inside a protected path.
func (s *Spec) Validate() error {
	if s.Version != SpecVersion {
		return fmt.Errorf("sandbox spec version %d; this build speaks %d", s.Version, SpecVersion)
	}
	if s.Path == "" || strings.IndexByte(s.Path, 0) >= 0 {
		return errors.New("sandbox spec: empty program or NUL byte in it")
	}
	if len(s.Args) == 0 || len(s.Args) > maxArgs {
		return fmt.Errorf("sandbox spec: %d arguments; want 1 to %d", len(s.Args), maxArgs)
	}
	if len(s.Env) > maxEnv {
		return fmt.Errorf("sandbox spec: %d environment entries; the limit is %d", len(s.Env), maxEnv)
	}
	for _, a := range s.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return errors.New("sandbox spec: NUL byte in an argument")
		}
	}
	for _, e := range s.Env {
		if strings.IndexByte(e, 0) >= 0 || !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return fmt.Errorf("sandbox spec: environment entry %q is not KEY=value", e)
		}
	}
	if err := checkAbs("working directory", s.Dir); err != nil {
		return err
	}
	if len(s.ReadOnly)+len(s.ReadWrite) > maxPaths || len(s.Protected) > maxPaths {
		return fmt.Errorf("sandbox spec: more than %d paths", maxPaths)
	}
	if len(s.ConnectTCP)+len(s.BindTCP) > maxPorts {
		return fmt.Errorf("sandbox spec: more than %d ports", maxPorts)
	}
	if s.RestrictNetwork && !s.Enforce {
		return errors.New("sandbox spec: network rules need the sandbox enforced")
	}
	if !s.RestrictNetwork && len(s.ConnectTCP)+len(s.BindTCP) > 0 {
		return errors.New("sandbox spec: ports granted but the network is not restricted")
	}
	if !s.Enforce && len(s.ReadOnly)+len(s.ReadWrite) > 0 {
		return errors.New("sandbox spec: paths granted but the sandbox is not enforced")
	}
	for _, p := range s.Protected {
		if err := checkAbs("protected path", p); err != nil {
			return err
		}
	}
	for _, list := range [][]string{s.ReadOnly, s.ReadWrite} {
		for _, p := range list {
			if err := checkAbs("rule", p); err != nil {
				return err
			}
			if err := overlapsProtected(p, s.Protected); err != nil {
				return err
			}
		}
	}
	l := s.Limits
	if l.CPUSeconds == 0 || l.AddressSpace == 0 || l.FileSize == 0 || l.OpenFiles == 0 || l.Processes == 0 {
		return errors.New("sandbox spec: every limit must be set")
	}
	return nil
}

func checkAbs(what, p string) error {
	if p == "" || strings.IndexByte(p, 0) >= 0 || !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("sandbox: %s %q must be an absolute, clean path", what, p)
	}
	return nil
}

// ProtectedPathError reports a rule that would reach a protected path.
type ProtectedPathError struct {
	Path      string // the rule, as resolved
	Protected string // the protected path it is, contains or lies inside
}

func (e *ProtectedPathError) Error() string {
	return fmt.Sprintf("sandbox: refusing %s: it is, contains or lies inside the protected %s", e.Path, e.Protected)
}

// overlapsProtected is the lexical check: p (absolute and clean) is, contains
// or lies inside one of protected.
func overlapsProtected(p string, protected []string) error {
	for _, q := range protected {
		if within(p, q) || within(q, p) {
			return &ProtectedPathError{Path: p, Protected: q}
		}
	}
	return nil
}

// within reports whether the absolute clean path p is dir or lies beneath it.
func within(p, dir string) bool {
	if dir == "/" || p == dir {
		return true
	}
	return strings.HasPrefix(p, dir+"/")
}
