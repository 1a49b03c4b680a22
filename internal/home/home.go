// Package home locates Astrid's state directory, $ASTRID_HOME, and names the
// files inside it.
//
// Everything Astrid keeps lives under one directory (default ~/.astrid):
//
//	config.toml     user configuration layer
//	keys/           ed25519 signing keys (0700 dir, 0600 files)
//	state.db        the embedded SQLite store (sessions, tokens, audit, ...)
//	logs/           daemon logs
//	daemon.port     the daemon's loopback port (written by astridd)
//	daemon.pid      the daemon's pid
//	daemon.token    the bearer token clients present (0600)
//	daemon.lock     flock held by the running daemon (one per home)
//
// NOTE: the security policy treats this whole directory as out of reach of
// every tool, shell and plugin; see package policy.
package home

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// EnvVar is the environment variable that overrides the default location.
const EnvVar = "ASTRID_HOME"

// Dir is an Astrid state directory. The zero value is not valid; use Resolve.
type Dir string

// Resolve returns the state directory named by $ASTRID_HOME, or ~/.astrid
// when it is unset. The result is absolute and cleaned but not created.
func Resolve(getenv func(string) string) (Dir, error) {
	if v := getenv(EnvVar); v != "" {
		abs, err := filepath.Abs(v)
		if err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvVar, v, err)
		}
		return Dir(abs), nil
	}
	h := getenv("HOME")
	if h == "" {
		var err error
		h, err = os.UserHomeDir()
		if err != nil || h == "" {
			return "", errors.New("cannot find the home directory: set ASTRID_HOME or HOME")
		}
	}
	return Dir(filepath.Join(h, ".astrid")), nil
}

// Path returns the absolute path of the directory.
func (d Dir) Path() string { return string(d) }

// ConfigFile is the user configuration layer.
func (d Dir) ConfigFile() string { return filepath.Join(string(d), "config.toml") }

// KeysDir holds the signing keys.
func (d Dir) KeysDir() string { return filepath.Join(string(d), "keys") }

// MCPOAuthDir holds the MCP servers' OAuth tokens, one 0600 file each.
func (d Dir) MCPOAuthDir() string { return filepath.Join(string(d), "mcp-oauth") }

// StateDB is the embedded SQLite store.
func (d Dir) StateDB() string { return filepath.Join(string(d), "state.db") }

// CapsulesDir holds the installed capsules and their grants.
func (d Dir) CapsulesDir() string { return filepath.Join(string(d), "capsules") }

// CacheDir holds caches that can be deleted at any time (compiled
// capsules).
func (d Dir) CacheDir() string { return filepath.Join(string(d), "cache") }

// LogsDir holds daemon logs.
func (d Dir) LogsDir() string { return filepath.Join(string(d), "logs") }

// PortFile, PIDFile and TokenFile describe a running daemon.
func (d Dir) PortFile() string  { return filepath.Join(string(d), "daemon.port") }
func (d Dir) PIDFile() string   { return filepath.Join(string(d), "daemon.pid") }
func (d Dir) TokenFile() string { return filepath.Join(string(d), "daemon.token") }

// Ensure creates the directory with mode 0700 if it does not exist and
// refuses one that is a symlink or writable by group or others (anyone who
// can write here can swap keys, tokens or the audit log).
func (d Dir) Ensure() error {
	p := string(d)
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("inspect %s: %w", p, err)
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symlink; ASTRID_HOME must be a real directory", p)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", p)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s has mode %04o; it must not be writable by group or others (chmod 700 %s)", p, fi.Mode().Perm(), p)
	}
	return nil
}
