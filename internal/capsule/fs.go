package capsule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/workspace"
	"github.com/astrid-runtime/astrid/sdk"
)

// Bounds of the fs host functions.
const (
	// MaxFileBytes bounds a file read or written by a capsule.
	MaxFileBytes = 8 << 20
	// maxDirEntries bounds fs_readdir.
	maxDirEntries = 1000
)

// A capsule's file access is confined twice. First the path is resolved
// (symlinks followed, ".." removed, relative paths taken from the
// session's workspace) and must lie under one of the capsule's granted
// roots, resolved the same way; anything else is refused without asking
// and audited (refuse). Then it is an ordinary file action of the
// session, judged by the interceptor: policy ($ASTRID_HOME, denied_paths,
// the workspace's .astrid for writes), tokens, allowances, the workspace
// mode, the human.
//
// NOTE: between the decision and the system call another process could
// swap a directory of the path for a symlink. Every open below walks the
// judged path from "/" one component at a time with O_NOFOLLOW, so a
// symlink anywhere fails the call (ELOOP or ENOTDIR) instead of leading
// elsewhere.

// fsOp describes one fs host function.
type fsOp struct {
	kind  security.Kind
	write bool // needs an fs_write root
	verb  string
}

// fsTarget resolves path for cs and checks it against the granted roots.
// It returns the file action to intercept.
func (cs *callState) fsTarget(ctx context.Context, op fsOp, raw []byte, extra []byte) (security.Action, error) {
	p := string(raw)
	args, _ := json.Marshal(map[string]any{"op": op.verb, "path": p, "bytes": len(extra)})
	a, err := security.NewFileAction(op.kind, cs.sess, p, args)
	if err != nil {
		return a, hostErrf(sdk.StatusInvalid, "%s %q: %v", op.verb, clipString(p, 256), err)
	}
	a.Summary = "Capsule " + cs.c.id + ": " + a.Summary
	caps := cs.c.caps
	roots := caps.FSWrite
	if !op.write {
		roots = append(append([]string(nil), caps.FSRead...), caps.FSWrite...)
	}
	for _, r := range roots {
		root, err := workspace.Resolve(cs.sess.Workspace, r)
		if err != nil {
			continue // a relative root without a workspace grants nothing
		}
		if workspace.Within(root, a.Path) {
			return a, nil
		}
	}
	which := "fs_read or fs_write"
	if op.write {
		which = "fs_write"
	}
	return a, cs.refuse(ctx, a.Kind, a.Resource, a.Args, RuleGrant, fmt.Sprintf("%s %s: the path is not under a root the capsule declared in %s", op.verb, a.Path, which))
}

// fsRun checks the grant, then runs do on the judged path through the
// interceptor.
func (m *Manager) fsRun(ctx context.Context, cs *callState, op fsOp, path, data []byte, do func(p string) ([]byte, error)) ([]byte, error) {
	a, err := cs.fsTarget(ctx, op, path, data)
	if err != nil {
		return nil, err
	}
	return cs.run(ctx, a, security.ExecutorFunc(func(_ context.Context, a security.Action) ([]byte, error) {
		return do(a.Path)
	}))
}

func (m *Manager) fsExists(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	return m.fsRun(ctx, cs, fsOp{kind: security.FileRead, verb: "exists"}, a, nil, func(p string) ([]byte, error) {
		fd, err := openNoFollow(p, unix.O_PATH, 0, false)
		if errors.Is(err, os.ErrNotExist) {
			return []byte("false"), nil
		}
		if err != nil {
			return nil, err
		}
		unix.Close(fd)
		return []byte("true"), nil
	})
}

func (m *Manager) fsStat(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	return m.fsRun(ctx, cs, fsOp{kind: security.FileRead, verb: "stat"}, a, nil, func(p string) ([]byte, error) {
		fd, err := openNoFollow(p, unix.O_PATH, 0, false)
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		return json.Marshal(sdk.FileInfo{Name: fi.Name(), Dir: fi.IsDir(), Size: fi.Size(), ModTime: fi.ModTime().UTC()})
	})
}

func (m *Manager) fsReadDir(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	return m.fsRun(ctx, cs, fsOp{kind: security.FileList, verb: "readdir"}, a, nil, func(p string) ([]byte, error) {
		fd, err := openNoFollow(p, unix.O_RDONLY|unix.O_DIRECTORY, 0, false)
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		ents, err := f.ReadDir(maxDirEntries + 1)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(ents) > maxDirEntries {
			return nil, hostErrf(sdk.StatusLimit, "readdir %s: more than %d entries", p, maxDirEntries)
		}
		out := make([]sdk.FileInfo, 0, len(ents))
		for _, e := range ents {
			fi := sdk.FileInfo{Name: e.Name(), Dir: e.IsDir()}
			if info, err := e.Info(); err == nil {
				fi.Size, fi.ModTime = info.Size(), info.ModTime().UTC()
			}
			out = append(out, fi)
		}
		return json.Marshal(out)
	})
}

func (m *Manager) fsRead(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	return m.fsRun(ctx, cs, fsOp{kind: security.FileRead, verb: "read"}, a, nil, func(p string) ([]byte, error) {
		fd, err := openNoFollow(p, unix.O_RDONLY, 0, false)
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, hostErrf(sdk.StatusInvalid, "read %s: not a regular file", p)
		}
		b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
		if err != nil {
			return nil, err
		}
		if len(b) > MaxFileBytes {
			return nil, hostErrf(sdk.StatusLimit, "read %s: larger than %d bytes", p, MaxFileBytes)
		}
		return b, nil
	})
}

func (m *Manager) fsWrite(ctx context.Context, cs *callState, a, b []byte) ([]byte, error) {
	if len(b) > MaxFileBytes {
		act, _ := security.NewFileAction(security.FileWrite, cs.sess, string(a), nil)
		return nil, cs.refuse(ctx, security.FileWrite, act.Resource, a, RuleLimit, fmt.Sprintf("write of %d bytes, more than %d", len(b), MaxFileBytes))
	}
	return m.fsRun(ctx, cs, fsOp{kind: security.FileWrite, write: true, verb: "write"}, a, b, func(p string) ([]byte, error) {
		fd, err := openNoFollow(p, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644, false)
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), p)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return nil, err
		}
		return nil, f.Close()
	})
}

func (m *Manager) fsMkdir(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	return m.fsRun(ctx, cs, fsOp{kind: security.FileWrite, write: true, verb: "mkdir"}, a, nil, func(p string) ([]byte, error) {
		fd, err := openNoFollow(p, unix.O_RDONLY|unix.O_DIRECTORY, 0, true)
		if err != nil {
			return nil, err
		}
		unix.Close(fd)
		return nil, nil
	})
}

func (m *Manager) fsUnlink(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	return m.fsRun(ctx, cs, fsOp{kind: security.FileDelete, write: true, verb: "unlink"}, a, nil, func(p string) ([]byte, error) {
		dir, name := filepath.Split(p)
		dfd, err := openNoFollow(filepath.Clean(dir), unix.O_RDONLY|unix.O_DIRECTORY, 0, false)
		if err != nil {
			return nil, err
		}
		defer unix.Close(dfd)
		err = unix.Unlinkat(dfd, name, 0)
		if err == unix.EISDIR {
			err = unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
		}
		if err != nil {
			return nil, &os.PathError{Op: "unlink", Path: p, Err: err}
		}
		return nil, nil
	})
}

// openNoFollow opens the canonical absolute path p by walking it from "/"
// with O_NOFOLLOW on every component, so that no symlink is followed
// anywhere. With mkdirs, missing directories are created (p itself
// included); otherwise flags apply to the last component.
func openNoFollow(p string, flags int, mode uint32, mkdirs bool) (int, error) {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return -1, fmt.Errorf("%q is not a canonical absolute path", p)
	}
	dir, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if p == "/" {
		parts = nil
	}
	for i, name := range parts {
		last := i == len(parts)-1
		f := unix.O_RDONLY | unix.O_DIRECTORY
		var perm uint32
		if last && !mkdirs {
			f, perm = flags, mode
		}
		fd, err := unix.Openat(dir, name, f|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err == unix.ENOENT && mkdirs {
			if err = unix.Mkdirat(dir, name, 0o755); err == nil || err == unix.EEXIST {
				fd, err = unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		unix.Close(dir)
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		dir = fd
	}
	return dir, nil
}
