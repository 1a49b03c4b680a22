// Package workspace resolves the paths an agent names into the canonical
// paths that policy judges and tools then use, and knows the workspace
// boundary.
//
// NOTE: a path is judged after resolution, the way the kernel will walk it:
// each symlink is followed where it occurs and ".." steps back from where
// the walk physically is, not lexically. "/ws/link/../x" where link points
// at /etc/ssl resolves to /etc/x, as open(2) would. A path whose tail does
// not exist yet resolves through its nearest existing parent. Tools must
// operate on the resolved path, never on the string the model gave.
package workspace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxLinks bounds symlink hops, as the kernel does (ELOOP after 40).
const maxLinks = 40

// MaxPathLen bounds the length of a path accepted from a tool call.
const MaxPathLen = 4096

// ErrInvalidPath is wrapped by every error about a malformed path.
var ErrInvalidPath = errors.New("invalid path")

// Resolve returns the canonical absolute path for p. A relative p is taken
// relative to base (the workspace root). Symlinks are followed, including a
// dangling final symlink (writing through it would create its target).
// Components after the first one that does not exist are appended
// lexically; a ".." among them is refused, since its meaning depends on
// directories that do not exist yet.
func Resolve(base, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidPath)
	}
	if len(p) > MaxPathLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidPath, MaxPathLen)
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w: contains a NUL byte", ErrInvalidPath)
	}
	if !filepath.IsAbs(p) {
		if !filepath.IsAbs(base) {
			return "", fmt.Errorf("%w: %q is relative and the workspace root %q is not absolute", ErrInvalidPath, p, base)
		}
		p = base + string(filepath.Separator) + p
	}
	links := 0
	return walk("/", p, &links)
}

// walk resolves the components of p (absolute, or relative to dir).
func walk(dir, p string, links *int) (string, error) {
	if filepath.IsAbs(p) {
		dir = "/"
	}
	parts := strings.Split(p, "/")
	for i, c := range parts {
		switch c {
		case "", ".":
			continue
		case "..":
			dir = filepath.Dir(dir)
			continue
		}
		next := filepath.Join(dir, c)
		fi, err := os.Lstat(next)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return appendMissing(next, parts[i+1:])
		}
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", next, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			dir = next
			continue
		}
		*links++
		if *links > maxLinks {
			return "", fmt.Errorf("%w: too many levels of symbolic links at %s", ErrInvalidPath, next)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", next, err)
		}
		if target == "" {
			return "", fmt.Errorf("%w: empty symlink %s", ErrInvalidPath, next)
		}
		if !filepath.IsAbs(target) && strings.ContainsAny(target, ":[") && strings.HasPrefix(dir, "/proc/") {
			// Magic links such as /proc/self/fd/N -> "pipe:[123]" name
			// no path at all.
			return "", fmt.Errorf("%w: %s is not a path (%s)", ErrInvalidPath, next, target)
		}
		dir, err = walk(dir, target, links)
		if err != nil {
			return "", err
		}
	}
	return dir, nil
}

func appendMissing(base string, rest []string) (string, error) {
	out := base
	for _, c := range rest {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: \"..\" after %s, which does not exist", ErrInvalidPath, base)
		}
		out = filepath.Join(out, c)
	}
	return out, nil
}

// Within reports whether p is root or inside it. Both must be canonical.
func Within(root, p string) bool {
	if p == root {
		return true
	}
	if root == "/" {
		return strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, root+"/")
}
