package tools

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file holds the only code of the package that opens files. Every
// open goes through openPath (an absolute canonical path, no symlink
// anywhere in it) or through openat relative to a directory descriptor
// that openPath returned, with O_NOFOLLOW.
//
// NOTE: the interceptor judged a resolved path. Between that decision and
// the open, another process could replace a directory of that path with a
// symlink to somewhere policy forbids. Opening with RESOLVE_NO_SYMLINKS
// makes the kernel refuse a symlink in any component, so the file opened
// is the one named by the judged path or the open fails (ELOOP). Once a
// directory is open, later swaps of its path do not matter: everything
// below it is reached through its descriptor.

// openPath opens an absolute, clean path, failing with ELOOP if any
// component is a symlink. flags are open(2) flags; O_CLOEXEC is added.
func openPath(path string, flags int, mode uint32) (int, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return -1, fmt.Errorf("%q is not a canonical absolute path", path)
	}
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	if flags&unix.O_CREAT != 0 || flags&unix.O_TMPFILE == unix.O_TMPFILE {
		how.Mode = uint64(mode) // openat2 refuses a mode it would not use
	}
	for {
		fd, err := unix.Openat2(unix.AT_FDCWD, path, &how)
		switch {
		case err == nil:
			return fd, nil
		case err == unix.EINTR:
			continue
		case err == unix.ENOSYS || err == unix.EPERM && flags&unix.O_CREAT == 0:
			// Openat2 is missing (Linux < 5.6) or refused by a seccomp
			// filter that answers EPERM for unknown system calls. The
			// fallback walks the path one component at a time with
			// O_NOFOLLOW on every component, which refuses symlinks as
			// strictly (not only on the last component).
			return walkOpen(path, flags, mode)
		}
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
}

// walkOpen is openPath without openat2: it opens "/" and then each
// component with openat(O_NOFOLLOW), directories with O_DIRECTORY, so a
// symlink anywhere in the path fails the open (ELOOP or ENOTDIR).
func walkOpen(path string, flags int, mode uint32) (int, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return -1, fmt.Errorf("%q is not a canonical absolute path", path)
	}
	dir, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	if path == "/" {
		if flags&(unix.O_WRONLY|unix.O_RDWR|unix.O_CREAT) != 0 {
			unix.Close(dir)
			return -1, &fs.PathError{Op: "open", Path: path, Err: unix.EISDIR}
		}
		return dir, nil
	}
	parts := strings.Split(path[1:], "/")
	for i, name := range parts {
		last := i == len(parts)-1
		f := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		var m uint32
		if last {
			f, m = flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode
		}
		next, err := openatRetry(dir, name, f, m)
		if err == unix.ENOTDIR && isSymlinkAt(dir, name) {
			err = unix.ELOOP // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR
		}
		unix.Close(dir)
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		dir = next
	}
	return dir, nil
}

func isSymlinkAt(dir int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

func openatRetry(dir int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openDir opens the directory path (see openPath). With create, missing
// directories are made (mode 0755 before umask), each relative to its
// parent's descriptor, and opened with O_NOFOLLOW.
func openDir(path string, create bool) (int, error) {
	fd, err := openPath(path, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err == nil || !create || !errors.Is(err, unix.ENOENT) || path == "/" {
		return fd, err
	}
	parent, err := openDir(filepath.Dir(path), true)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	name := filepath.Base(path)
	if err := unix.Mkdirat(parent, name, 0o755); err != nil && err != unix.EEXIST {
		return -1, &fs.PathError{Op: "mkdir", Path: path, Err: err}
	}
	fd, err = openatRetry(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOTDIR && isSymlinkAt(parent, name) {
		err = unix.ELOOP
	}
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// openRegular opens a regular file for reading, relative to dir (a
// descriptor, or -1 for an absolute path through openPath). It refuses
// symlinks and anything but a regular file (a FIFO would block, a device
// could have effects) and returns the file with its size and mode.
func openRegular(dir int, name, display string) (*os.File, os.FileInfo, error) {
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY
	var fd int
	var err error
	if dir < 0 {
		fd, err = openPath(name, flags, 0)
	} else {
		fd, err = openatRetry(dir, name, flags|unix.O_CLOEXEC, 0)
		if err != nil {
			err = &fs.PathError{Op: "open", Path: display, Err: err}
		}
	}
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), display)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		if fi.IsDir() {
			return nil, nil, &fs.PathError{Op: "open", Path: display, Err: errIsDir}
		}
		return nil, nil, &fs.PathError{Op: "open", Path: display, Err: errNotRegular}
	}
	return f, fi, nil
}

var (
	errIsDir      = errors.New("is a directory")
	errNotRegular = errors.New("is not a regular file")
)

// readUpTo reads at most n bytes of r and reports whether more remained.
func readUpTo(r io.Reader, n int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > n {
		return b[:n], true, nil
	}
	return b, false, nil
}

// binarySniff is how much of the start of a file is checked for NUL bytes.
const binarySniff = 8 << 10

// isBinary reports whether b (the start of a file) looks binary: it
// contains a NUL byte in its first 8 KiB.
func isBinary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), binarySniff)], 0) >= 0
}

// existing is what writeAtomic learned about the file it replaced.
type existing struct {
	found bool
	mode  os.FileMode
	data  []byte // the old content, up to the cap readExisting was given
	size  int64
	ino   uint64
	mtime int64 // nanoseconds
}

// readExisting opens name in dir (O_NOFOLLOW) and reads up to limit bytes.
// A missing file is not an error.
func readExisting(dir int, name, display string, limit int64) (existing, bool, error) {
	f, fi, err := openRegular(dir, name, display)
	if errors.Is(err, unix.ENOENT) {
		return existing{}, false, nil
	}
	if err != nil {
		return existing{}, false, err
	}
	defer f.Close()
	old := existing{found: true, mode: fi.Mode().Perm(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		old.ino = st.Ino
	}
	data, more, err := readUpTo(f, limit)
	if err != nil {
		return existing{}, false, err
	}
	old.data = data
	return old, more, nil
}

// writeAtomic replaces name in the directory dir with data: it writes a
// temporary file in the same directory (O_EXCL|O_NOFOLLOW), syncs it, gives
// it the mode of the file it replaces (keep; permission bits only), and
// renames it over name, then syncs the directory. A reader
// sees the old content or the new, never a mix. On failure the temporary
// file is removed and name is untouched.
//
// NOTE: rename replaces the directory entry; it never writes through a
// hard link or a symlink at name, so a link planted there cannot redirect
// the write.
//
// A new file (keep == nil) gets mode 0644 less the umask, as open(2) gives.
func writeAtomic(dir int, name, display string, data []byte, keep *os.FileMode) error {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := ".astrid-tmp-" + hex.EncodeToString(rnd[:])
	perm := uint32(0o644)
	if keep != nil {
		perm = 0o600 // until the Fchmod below: never wider than the old file
	}
	fd, err := openatRetry(dir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return &fs.PathError{Op: "create temporary file in", Path: filepath.Dir(display), Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	ok := false
	defer func() {
		if !ok {
			f.Close()
			unix.Unlinkat(dir, tmp, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if keep != nil {
		if err := unix.Fchmod(fd, uint32(keep.Perm())); err != nil {
			return &fs.PathError{Op: "chmod", Path: display, Err: err}
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := unix.Renameat(dir, tmp, dir, name); err != nil {
		return &fs.PathError{Op: "rename", Path: display, Err: err}
	}
	ok = true
	// The rename is done; a failed directory sync only weakens durability.
	_ = unix.Fsync(dir)
	return nil
}

// describeErr turns a file error into text for the model: the path and a
// plain reason, with a hint for the cases a model can act on.
func describeErr(err error) string {
	var pe *fs.PathError
	p := ""
	if errors.As(err, &pe) {
		p = pe.Path + ": "
	}
	switch {
	case errors.Is(err, unix.ELOOP):
		return p + "a symbolic link is in the way (it appeared after the path was checked, or is the file itself); refusing to follow it"
	case errors.Is(err, unix.ENOENT):
		return p + "does not exist"
	case errors.Is(err, unix.ENOTDIR):
		return p + "a component of the path is not a directory"
	case errors.Is(err, errIsDir) || errors.Is(err, unix.EISDIR):
		return p + "is a directory (use list_directory or glob)"
	case errors.Is(err, errNotRegular):
		return p + "is not a regular file (device, FIFO or socket)"
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return p + "permission denied by the operating system"
	case errors.Is(err, unix.ENOSPC):
		return p + "no space left on the device"
	case errors.Is(err, unix.EROFS):
		return p + "the file system is read-only"
	}
	return err.Error()
}
