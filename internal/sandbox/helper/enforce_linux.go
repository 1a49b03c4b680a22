//go:build linux

package helper

import (
	"errors"
	"fmt"

	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/landlock-lsm/go-landlock/landlock"
	"golang.org/x/sys/unix"
)

// noNewPrivs sets no_new_privs on the calling (locked) thread and checks it.
// go-landlock sets it on all threads too; this makes it hold even when the
// sandbox is unavailable, and checks it rather than trust it.
func noNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil || v != 1 {
		return fmt.Errorf("no_new_privs is not set (%d, %v)", v, err)
	}
	return nil
}

// configs maps each Landlock ABI to go-landlock's full configuration for it.
var configs = []landlock.Config{
	1: landlock.V1, 2: landlock.V2, 3: landlock.V3, 4: landlock.V4, 5: landlock.V5, 6: landlock.V6,
	7: landlock.V7, 8: landlock.V8, 9: landlock.V9, 10: landlock.V10, 11: landlock.V11,
}

// enforce applies the Landlock rules of spec to this process, and the
// seccomp filter when the network is restricted.
func enforce(spec *sandbox.Spec, opts options) error {
	abi, err := sandbox.ABI()
	if err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	if abi < sandbox.MinABI {
		return fmt.Errorf("landlock ABI %d is below the minimum %d", abi, sandbox.MinABI)
	}
	if spec.RestrictNetwork && abi < 4 {
		return fmt.Errorf("landlock ABI %d has no network rules, and the spec requires them", abi)
	}
	// NOTE: an ABI newer than this go-landlock knows is enforced at the
	// newest level it knows: everything it can name is handled, exactly,
	// without BestEffort.
	full := configs[min(abi, len(configs)-1)]
	cfg := landlock.Config{HandledAccessFS: full.HandledAccessFS, Scoped: full.Scoped}
	if spec.RestrictNetwork {
		cfg.HandledAccessNet = full.HandledAccessNet
	}

	var rules []landlock.Rule
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, grant := range []struct {
		paths    []string
		writable bool
	}{{spec.ReadOnly, false}, {spec.ReadWrite, true}} {
		for _, p := range grant.paths {
			fd, isDir, err := openNoSymlinks(p)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
			// Landlock reopens this magic link, which is the very inode
			// opened above.
			ref := fmt.Sprintf("/proc/self/fd/%d", fd)
			switch {
			case isDir && grant.writable:
				rules = append(rules, landlock.RWDirs(ref).WithRefer())
			case isDir:
				rules = append(rules, landlock.RODirs(ref))
			case grant.writable:
				rules = append(rules, landlock.RWFiles(ref))
			default:
				rules = append(rules, landlock.ROFiles(ref))
			}
		}
	}
	if spec.RestrictNetwork {
		for _, port := range spec.ConnectTCP {
			rules = append(rules, landlock.ConnectTCP(port))
		}
		for _, port := range spec.BindTCP {
			rules = append(rules, landlock.BindTCP(port))
		}
	}
	if err := cfg.Restrict(rules...); err != nil {
		return fmt.Errorf("landlock (ABI %d, %v): %w", abi, cfg, err)
	}
	if spec.RestrictNetwork && !opts.noMPTCPFilter {
		if err := blockMPTCP(); err != nil {
			return err
		}
	}
	return nil
}

// openNoSymlinks opens p (absolute, resolved by the daemon) as an O_PATH
// descriptor, refusing any symlink on the way: if a component became a
// symlink since the daemon checked the path, the helper stops.
func openNoSymlinks(p string) (fd int, isDir bool, err error) {
	fd, err = unix.Openat2(unix.AT_FDCWD, p, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return -1, false, fmt.Errorf("rule %s: a symlink appeared in the path since it was checked", p)
		}
		return -1, false, fmt.Errorf("rule %s: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, false, fmt.Errorf("rule %s: %w", p, err)
	}
	return fd, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}
