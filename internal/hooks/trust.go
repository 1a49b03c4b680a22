package hooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Bounds on a hooks directory.
const (
	maxTreeFiles = 256
	maxTreeBytes = 8 << 20
)

// Trust records which workspaces' hooks the user trusted. It is safe for
// concurrent use within one process.
//
// The file is JSON, {"workspaces": {"/abs/root": "sha256 hex"}}, mode 0600,
// replaced atomically. The digest covers every file of the workspace's
// .astrid/hooks directory (see treeDigest), so trust is lost when the hooks
// change.
type Trust struct {
	path string
	mu   sync.Mutex
}

// NewTrust returns the trust store of an $ASTRID_HOME.
func NewTrust(home string) *Trust {
	return &Trust{path: filepath.Join(home, "hooks", "trusted.json")}
}

type trustFile struct {
	Workspaces map[string]string `json:"workspaces"`
}

func (t *Trust) readLocked() (trustFile, error) {
	f := trustFile{Workspaces: map[string]string{}}
	b, err := os.ReadFile(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("hooks: %s: %w", t.path, err)
	}
	if f.Workspaces == nil {
		f.Workspaces = map[string]string{}
	}
	return f, nil
}

// Digest returns the digest the workspace was trusted with, "" if none.
func (t *Trust) Digest(workspace string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := t.readLocked()
	return f.Workspaces[workspace], err
}

// Trust records that the user trusts the hooks workspace has now. It
// returns the digest recorded.
func (t *Trust) Trust(workspace string) (string, error) {
	tree, err := readTree(WorkspaceDir(workspace))
	if err != nil {
		return "", err
	}
	return tree.digest, t.set(workspace, tree.digest)
}

// Revoke forgets a workspace's trust.
func (t *Trust) Revoke(workspace string) error { return t.set(workspace, "") }

func (t *Trust) set(workspace, digest string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := t.readLocked()
	if err != nil {
		return err
	}
	if digest == "" {
		delete(f.Workspaces, workspace)
	} else {
		f.Workspaces[workspace] = digest
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(t.path), ".trusted-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), t.path)
}

// UserDir is the user's hooks directory.
func UserDir(home string) string { return filepath.Join(home, "hooks") }

// WorkspaceDir is a workspace's hooks directory.
func WorkspaceDir(workspace string) string { return filepath.Join(workspace, ".astrid", "hooks") }

// tree is the content of a hooks directory, read once.
type tree struct {
	files  map[string]treeFile // by slash-separated relative path
	digest string
}

type treeFile struct {
	data []byte
	mode fs.FileMode
}

// readTree reads dir: regular files and directories only (a symlink is an
// error: it could point anywhere), within the bounds. The digest is
// SHA-256 over, for each file in path order, "len:path len:mode len:data".
// A missing directory is an empty tree.
func readTree(dir string) (*tree, error) {
	t := &tree{files: map[string]treeFile{}}
	total := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if p == dir {
			if !d.IsDir() {
				return fmt.Errorf("hooks: %s is not a directory", dir)
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("hooks: %s is not a regular file (symlinks are not allowed)", p)
		}
		if rel == "trusted.json" {
			return nil
		}
		if len(t.files) >= maxTreeFiles {
			return fmt.Errorf("hooks: %s has more than %d files", dir, maxTreeFiles)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if total += int(fi.Size()); total > maxTreeBytes {
			return fmt.Errorf("hooks: %s holds more than %d bytes", dir, maxTreeBytes)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		t.files[filepath.ToSlash(rel)] = treeFile{data: b, mode: fi.Mode().Perm()}
		return nil
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(t.files))
	for n := range t.files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		f := t.files[n]
		mode := fmt.Sprintf("%o", f.mode)
		fmt.Fprintf(h, "%d:%s%d:%s%d:", len(n), n, len(mode), mode, len(f.data))
		h.Write(f.data)
	}
	t.digest = hex.EncodeToString(h.Sum(nil))
	return t, nil
}

// stage writes the tree into a new private directory under root.
func (t *tree) stage(root string) (string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(root, "hooks-")
	if err != nil {
		return "", err
	}
	for n, f := range t.files {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
		if err := os.WriteFile(p, f.data, f.mode&0o700); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}
