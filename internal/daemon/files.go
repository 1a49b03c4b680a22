package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/home"
)

// ErrAlreadyRunning means another daemon holds the home's lock.
var ErrAlreadyRunning = errors.New("another astridd is already running on this ASTRID_HOME")

// lockFile names the lock that makes a daemon the only one of its home.
func lockFile(h home.Dir) string { return filepath.Join(h.Path(), "daemon.lock") }

// stateFiles are the files that describe a running daemon. The lock is
// what proves a daemon runs: the kernel releases it when the process dies,
// however it dies, so pid, port and token files left by a crashed daemon
// are recognised as stale by the next daemon that gets the lock, and
// replaced.
type stateFiles struct {
	h    home.Dir
	lock *os.File
}

// acquire takes the home's lock without waiting. When another daemon holds
// it, the error names its pid and port from their files.
func acquire(h home.Dir) (*stateFiles, error) {
	f, err := os.OpenFile(lockFile(h), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, _ := readTrimmed(h.PIDFile())
			port, _ := readTrimmed(h.PortFile())
			return nil, fmt.Errorf("%w (pid %s, port %s); stop it with `astrid daemon stop`", ErrAlreadyRunning, orUnknown(pid), orUnknown(port))
		}
		return nil, fmt.Errorf("daemon lock: %w", err)
	}
	return &stateFiles{h: h, lock: f}, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// stale reports the pid of files left by a daemon that is gone (we hold
// the lock, so any file there is stale), or "" when there are none.
func (s *stateFiles) stale() string {
	pid, err := readTrimmed(s.h.PIDFile())
	if err != nil {
		_, perr := os.Lstat(s.h.PortFile())
		_, terr := os.Lstat(s.h.TokenFile())
		if perr == nil || terr == nil {
			return "unknown"
		}
		return ""
	}
	return orUnknown(pid)
}

// newToken returns 32 random bytes, hex encoded.
func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// publish writes token, pid and port, in that order: a client that sees
// the port file finds the token that goes with it.
func (s *stateFiles) publish(token string, port int) error {
	if err := writeAtomic(s.h.TokenFile(), token+"\n"); err != nil {
		return err
	}
	if err := writeAtomic(s.h.PIDFile(), strconv.Itoa(os.Getpid())+"\n"); err != nil {
		return err
	}
	return writeAtomic(s.h.PortFile(), strconv.Itoa(port)+"\n")
}

// unpublishEndpoint removes the port and token files: no new client
// should try this daemon.
func (s *stateFiles) unpublishEndpoint() {
	os.Remove(s.h.PortFile())
	os.Remove(s.h.TokenFile())
}

// release removes the pid file, last, and drops the lock. The lock file
// itself stays: removing it would let two daemons lock different inodes.
func (s *stateFiles) release() {
	s.unpublishEndpoint()
	os.Remove(s.h.PIDFile())
	s.lock.Close()
}

// writeAtomic writes a 0600 file through a temporary file and a rename, so
// a reader never sees half of it.
func writeAtomic(path, data string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
