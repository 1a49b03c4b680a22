package tools

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	gitignore "github.com/boyter/gocodewalker/go-gitignore"
	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/workspace"
)

// The walking tools (glob, grep) use their own walker over directory
// descriptors and gocodewalker's gitignore parser, not gocodewalker's
// FileWalker.
//
// NOTE: FileWalker opens directories and files by path (so a directory
// swapped for a symlink mid-walk would be followed), reads each
// directory's .gitignore before any exclusion hook can refuse the
// directory, stats ignore matches through symlinks, and keeps a
// package-level cache. This walker instead:
//   - opens the root with openPath (no symlink anywhere) and everything
//     below it with openat(O_NOFOLLOW) relative to its parent's
//     descriptor, reading entries with getdents and their types from
//     d_type (fstatat with AT_SYMLINK_NOFOLLOW when unknown);
//   - never follows a symlink: symlinks are reported as entries, not
//     entered or read;
//   - asks the PathFilter (the workspace policy) about every entry before
//     listing, entering or reading it, so nothing policy refuses to read
//     is touched, not even its .gitignore;
//   - skips the version-control directories (.git, .hg, .svn, .jj).

// walkConfig is shared by the walking tools.
type walkConfig struct {
	filter func(string) bool
	limits Limits
}

// maxDepth bounds the directory depth of a walk (one descriptor is open
// per level).
const maxDepth = 128

// maxIgnoreFile bounds the size of a .gitignore file read.
const maxIgnoreFile = 256 << 10

var vcsDirs = map[string]bool{".git": true, ".hg": true, ".svn": true, ".jj": true}

// entry is one directory entry.
type entry struct {
	name string
	typ  uint8 // unix.DT_*
}

// walkEntry is what a walk reports for each non-directory entry.
type walkEntry struct {
	dir  int    // descriptor of the directory holding it
	name string // name in dir
	path string // canonical absolute path
	rel  string // slash-separated path relative to the walk root
	typ  uint8
}

// errStopWalk ends a walk early without error.
var errStopWalk = fmt.Errorf("stop walk")

// walker walks one tree. Not safe for concurrent use.
type walker struct {
	ctx    context.Context
	cfg    walkConfig
	root   string
	visit  func(walkEntry) error
	ignore []ignoreFile

	visited int
	hidden  int    // entries refused by the path filter
	stopped string // why the walk ended early, if it did
}

type ignoreFile struct {
	base string // the directory holding the file
	gi   gitignore.GitIgnore
}

// walk visits every entry under root (canonical absolute directory) that
// the filter allows and .gitignore files do not exclude. ws is the
// session's workspace: .gitignore files between it and root apply too.
func (c walkConfig) walk(ctx context.Context, ws, root string, visit func(walkEntry) error) (*walker, error) {
	if c.filter == nil {
		return nil, failf("walking tools are disabled: the runtime gave no path filter")
	}
	if !c.filter(root) {
		return nil, failf("%s is refused by the workspace policy", root)
	}
	w := &walker{ctx: ctx, cfg: c, root: root, visit: visit}
	w.ancestorIgnores(ws)
	fd, err := openDir(root, false)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := w.dir(fd, root, 0); err != nil && err != errStopWalk {
		return w, err
	}
	return w, nil
}

// ancestorIgnores loads the .gitignore files of the directories from the
// workspace root down to the walk root's parent.
func (w *walker) ancestorIgnores(ws string) {
	if ws == "" || ws == w.root || !workspace.Within(ws, w.root) {
		return
	}
	rel := strings.Split(w.root[len(ws)+1:], "/")
	dir := ws
	for _, c := range rel {
		if !w.cfg.filter(dir) {
			return
		}
		fd, err := openDir(dir, false)
		if err != nil {
			return
		}
		w.loadIgnores(fd, dir)
		unix.Close(fd)
		dir = filepath.Join(dir, c)
	}
}

// loadIgnores reads .gitignore and .ignore in the directory fd (at path).
func (w *walker) loadIgnores(fd int, path string) {
	for _, name := range []string{".gitignore", ".ignore"} {
		p := filepath.Join(path, name)
		if !w.cfg.filter(p) {
			continue
		}
		f, _, err := openRegular(fd, name, p)
		if err != nil {
			continue
		}
		data, _, err := readUpTo(f, maxIgnoreFile)
		f.Close()
		if err != nil || len(data) == 0 {
			continue
		}
		w.ignore = append(w.ignore, ignoreFile{base: path, gi: gitignore.New(bytes.NewReader(data), path, nil)})
	}
}

// ignored applies the ignore files in force, deepest first: the first
// one with a matching pattern decides.
func (w *walker) ignored(path string, isDir bool) bool {
	for i := len(w.ignore) - 1; i >= 0; i-- {
		f := w.ignore[i]
		if !strings.HasPrefix(path, f.base+"/") {
			continue
		}
		if m := f.gi.Relative(path[len(f.base)+1:], isDir); m != nil {
			return m.Ignore()
		}
	}
	return false
}

// dir walks the directory open as fd.
func (w *walker) dir(fd int, path string, depth int) error {
	if depth >= maxDepth {
		w.stopped = fmt.Sprintf("directories deeper than %d levels were not searched", maxDepth)
		return nil
	}
	entries, more, err := readDir(fd, w.cfg.limits.WalkEntries-w.visited+1)
	if err != nil {
		return nil // unreadable directory: skip it, as find does
	}
	if more {
		entries = append(entries, entry{}) // trips the entry limit below
	}
	saved := len(w.ignore)
	w.loadIgnores(fd, path)
	defer func() { w.ignore = w.ignore[:saved] }()
	for _, e := range entries {
		if err := w.ctx.Err(); err != nil {
			w.stopped = "the walk was cancelled"
			return errStopWalk
		}
		w.visited++
		if w.visited > w.cfg.limits.WalkEntries || e.name == "" {
			w.stopped = fmt.Sprintf("the walk stopped after %d entries", w.cfg.limits.WalkEntries)
			return errStopWalk
		}
		child := path + "/" + e.name
		if path == "/" {
			child = "/" + e.name
		}
		if !w.cfg.filter(child) {
			w.hidden++
			continue
		}
		typ := e.typ
		if typ == unix.DT_UNKNOWN {
			var st unix.Stat_t
			if unix.Fstatat(fd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				continue
			}
			typ = dtype(st.Mode)
		}
		isDir := typ == unix.DT_DIR
		if isDir && vcsDirs[e.name] || w.ignored(child, isDir) {
			continue
		}
		if !isDir {
			rel := child[len(w.root):]
			if w.root != "/" {
				rel = rel[1:]
			}
			if err := w.visit(walkEntry{dir: fd, name: e.name, path: child, rel: rel, typ: typ}); err != nil {
				return err
			}
			continue
		}
		sub, err := openatRetry(fd, e.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // swapped for a symlink (ELOOP, ENOTDIR), removed, or unreadable
		}
		err = w.dir(sub, child, depth+1)
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

// notes says what the walk left out.
func (w *walker) notes() []string {
	var out []string
	if w.hidden > 0 {
		out = append(out, fmt.Sprintf("%d entries refused by the workspace policy were skipped", w.hidden))
	}
	if w.stopped != "" {
		out = append(out, w.stopped+"; results may be incomplete")
	}
	return out
}

func dtype(mode uint32) uint8 {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return unix.DT_DIR
	case unix.S_IFREG:
		return unix.DT_REG
	case unix.S_IFLNK:
		return unix.DT_LNK
	}
	return unix.DT_UNKNOWN + 100 // something else: FIFO, socket, device
}

// readDir reads the entries of the directory fd (except . and ..), at
// most max of them, sorted by name; more reports that it stopped at max.
// It reads through getdents on the descriptor: no path is looked up
// (os.File.ReadDir would lstat by path when d_type is unknown).
func readDir(fd int, max int) (_ []entry, more bool, _ error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, false, err
	}
	buf := make([]byte, 32<<10)
	var out []entry
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if n <= 0 {
			break
		}
		out = parseDirents(buf[:n], out)
		if len(out) > max {
			out, more = out[:max], true
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, more, nil
}

// parseDirents decodes linux_dirent64 records: ino u64, off s64,
// reclen u16, type u8, name (NUL-terminated).
func parseDirents(b []byte, out []entry) []entry {
	const nameOff = 19
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < nameOff || reclen > len(b) {
			break
		}
		typ := b[18]
		name := b[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if s := string(name); s != "." && s != ".." && s != "" {
			out = append(out, entry{name: s, typ: typ})
		}
		b = b[reclen:]
	}
	return out
}
