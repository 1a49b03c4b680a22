package sandbox

import (
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Profile is what one sandboxed process may do. The zero value grants
// nothing: no path, no network, default resource limits, an empty
// environment. An approved escape (one more read-only directory, one TCP
// port) is just a Profile with more entries, used for exactly that
// process.
type Profile struct {
	// ReadOnly lists absolute paths (directories or files) the process may
	// read and execute, with everything beneath them.
	ReadOnly []string
	// ReadWrite lists absolute paths (directories or files) the process may
	// read, execute, write, create, remove and rename within. Writable
	// directories also get Landlock's "refer" right, so files can be moved
	// between them.
	ReadWrite []string
	// TempDir, if set, is a private per-process or per-session temporary
	// directory: Command creates it with mode 0700 when it is missing
	// (its parent must exist), refuses it when it is a symlink or open to
	// group or others, grants it read-write and sets TMPDIR to it.
	TempDir string
	// Network says which TCP ports the process may use; the zero value
	// denies all.
	Network Network
	// Limits bounds the process's resources; zero fields take the values
	// of DefaultLimits.
	Limits Limits
	// Env is the complete environment of the process ("KEY=value"). Nothing
	// is inherited from the daemon, whose environment holds API keys.
	Env []string
	// Dir is the working directory; empty means "/".
	Dir string
}

// Network is the network part of a Profile. It is enforced by Landlock at
// ABI 4 or later (see Cmd.NetworkRestricted); below that, only the
// interceptor's approval stands between the process and the network.
type Network struct {
	// Unrestricted lifts every network rule. It is for an approved escape
	// only; prefer granting ports.
	Unrestricted bool
	// ConnectTCP lists the TCP ports the process may connect to, on any
	// host. This is the mechanism for an approved escape ("allow connecting
	// to port 5432"); a host allowlist needs a proxy and is not done here.
	ConnectTCP []uint16
	// BindTCP lists the TCP ports the process may bind (listen on).
	BindTCP []uint16
}

// Unlimited, as a Limits field, lifts that limit (RLIM_INFINITY).
const Unlimited = math.MaxUint64

// Limits are the resource limits of a sandboxed process, set with
// setrlimit(2) in the helper before execve, soft and hard alike, so the
// target cannot raise them. A zero field takes the value of DefaultLimits;
// Unlimited lifts the limit. A limit is never raised above the helper's own
// hard limit. Core dumps are always off.
type Limits struct {
	// CPUSeconds is RLIMIT_CPU: seconds of CPU time, per process.
	CPUSeconds uint64
	// AddressSpace is RLIMIT_AS in bytes, per process. Tools that reserve
	// huge virtual ranges (the race detector, sanitizers, some JITs) need it
	// raised or Unlimited.
	AddressSpace uint64
	// FileSize is RLIMIT_FSIZE: the largest file the process may write, in
	// bytes.
	FileSize uint64
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles uint64
	// Processes is RLIMIT_NPROC. NOTE: the kernel counts every process and
	// thread of the real user id, inside the sandbox or not, and does not
	// enforce the limit at all for root. It must therefore stay well above
	// what the user already runs; its job is to stop a fork bomb from
	// exhausting the machine's pid space and memory, while the tool timeout
	// kills the whole process group.
	Processes uint64
}

// DefaultLimits returns the limits used for zero fields: 10 CPU minutes, 16
// GiB of address space, 8 GiB files, 4096 open files and 4096 processes
// (generous for builds, small enough to stop a fork bomb well before the
// usual pid_max of 4 million).
func DefaultLimits() Limits {
	return Limits{
		CPUSeconds:   600,
		AddressSpace: 16 << 30,
		FileSize:     8 << 30,
		OpenFiles:    4096,
		Processes:    4096,
	}
}

// withDefaults returns l with zero fields replaced by the defaults.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick := func(v, def uint64) uint64 {
		if v == 0 {
			return def
		}
		return v
	}
	return Limits{
		CPUSeconds:   pick(l.CPUSeconds, d.CPUSeconds),
		AddressSpace: pick(l.AddressSpace, d.AddressSpace),
		FileSize:     pick(l.FileSize, d.FileSize),
		OpenFiles:    pick(l.OpenFiles, d.OpenFiles),
		Processes:    pick(l.Processes, d.Processes),
	}
}

// deviceFiles are the device nodes every shell expects. Writing to
// /dev/null, /dev/zero and /dev/full discards data; /dev/random and
// /dev/urandom only mix the written bytes into the entropy pool.
var deviceFiles = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// procFiles are the system-wide /proc files a build may read (CPU count,
// memory size, load): nothing about any one process.
var procFiles = []string{"/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/loadavg", "/proc/uptime", "/proc/version", "/proc/filesystems"}

// DefaultShellProfile returns the profile of the bash tool: read-only on
// SystemDirs, a few harmless /proc files and the caller's toolchain
// directories (for example /usr/local/go), read-write on the workspace, on
// a private session temp dir and on the harmless device files; no network;
// default limits. Nothing of $HOME is granted unless it lies inside the
// workspace.
//
// System and toolchain directories that do not exist are left out (a
// missing path in a Profile is otherwise an error). The environment is
// minimal: PATH (each toolchain dir's bin/ if it has one, else the dir,
// then the system bin dirs), HOME and TMPDIR pointing at the session temp
// dir, so tools that write caches under $HOME keep working, LANG=C.UTF-8
// and TERM=dumb. The working directory is the workspace.
//
// NOTE: /proc as a whole is not granted. Landlock is meant to deny
// ptrace-mode access to processes outside the sandbox, but on the kernel
// this was tested on (6.18, ABI 7) a sandboxed process could still read
// its parent's /proc/<pid>/environ and maps, and the parent is the daemon,
// whose environment holds API keys (TestEscapes has the case). Only the
// system-wide files in procFiles are readable; /proc/self, /dev/fd and ps
// do not work inside the sandbox.
func DefaultShellProfile(workspace, sessionTemp string, toolchainDirs []string) Profile {
	var ro, path []string
	for _, d := range toolchainDirs {
		if !exists(d) {
			continue
		}
		ro = append(ro, d)
		if bin := filepath.Join(d, "bin"); isDir(bin) {
			path = append(path, bin)
		} else {
			path = append(path, d)
		}
	}
	for _, d := range append(append([]string{}, SystemDirs...), procFiles...) {
		if exists(d) {
			ro = append(ro, d)
		}
	}
	rw := []string{workspace}
	for _, f := range deviceFiles {
		if exists(f) {
			rw = append(rw, f)
		}
	}
	path = append(path, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
	return Profile{
		ReadOnly:  ro,
		ReadWrite: rw,
		TempDir:   sessionTemp,
		Env: []string{
			"PATH=" + strings.Join(path, ":"),
			"HOME=" + sessionTemp,
			"LANG=C.UTF-8",
			"TERM=dumb",
		},
		Dir: workspace,
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
