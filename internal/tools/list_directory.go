package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/security"
)

// maxListRead bounds the entries list_directory reads from one directory
// (they are sorted before the first ListEntries are shown).
const maxListRead = 100_000

// listDirectory is list_directory{path}.
type listDirectory struct{ w walkConfig }

type listDirectoryArgs struct {
	Path string
}

func (t listDirectory) Spec() Spec {
	return Spec{
		Name: "list_directory",
		Description: fmt.Sprintf(`List the entries of one directory (not recursive), sorted by name: one line each with the type (dir, file, symlink or other), the size in bytes for files, and the name (directories end with "/", symlinks show their target). Shows at most %d entries. Entries the workspace policy refuses are left out and counted in a note.
path defaults to the workspace root; a relative path is relative to it.`, t.w.limits.ListEntries),
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "path": {"type": "string", "description": "Directory to list (absolute, or relative to the workspace root). Default: the workspace root."}
  },
  "additionalProperties": false
}`),
		ReadOnly: true,
	}
}

func parseListDirectory(raw []byte) (listDirectoryArgs, error) {
	var a listDirectoryArgs
	if err := decodeArgs("list_directory", raw, field{name: "path", dst: &a.Path}); err != nil {
		return listDirectoryArgs{}, err
	}
	return a, nil
}

func (t listDirectory) Prepare(s security.Session, raw json.RawMessage) (security.Action, security.Executor, error) {
	args, err := parseListDirectory(raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	a, err := rootAction("list_directory", security.FileList, s, args.Path, raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	return a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return t.run(a.Path)
	}), nil
}

// run lists dir, the resolved path the interceptor judged. A nil path
// filter hides nothing: the interceptor judged this directory, and only
// names and sizes of its own entries are shown.
func (t listDirectory) run(dir string) ([]byte, error) {
	fd, err := openDir(dir, false)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	entries, more, err := readDir(fd, maxListRead)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	hidden, shown := 0, 0
	for _, e := range entries {
		child := dir + "/" + e.name
		if dir == "/" {
			child = "/" + e.name
		}
		if t.w.filter != nil && !t.w.filter(child) {
			hidden++
			continue
		}
		if shown == t.w.limits.ListEntries {
			break
		}
		var st unix.Stat_t
		if unix.Fstatat(fd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue // removed meanwhile
		}
		name := displayPath(e.name)
		switch dtype(st.Mode) {
		case unix.DT_DIR:
			fmt.Fprintf(&b, "dir     %12s  %s/\n", "", name)
		case unix.DT_REG:
			fmt.Fprintf(&b, "file    %12d  %s\n", st.Size, name)
		case unix.DT_LNK:
			buf := make([]byte, 4096)
			n, err := unix.Readlinkat(fd, e.name, buf)
			target := "?"
			if err == nil {
				target = displayPath(string(buf[:n]))
			}
			fmt.Fprintf(&b, "symlink %12s  %s -> %s\n", "", name, target)
		default:
			fmt.Fprintf(&b, "other   %12s  %s\n", "", name)
		}
		shown++
	}
	if len(entries) == 0 {
		fmt.Fprintf(&b, "%s is empty.\n", displayPath(dir))
	}
	var notes []string
	if rest := len(entries) - hidden - shown; rest > 0 {
		notes = append(notes, fmt.Sprintf("showing %d of %d entries; use glob to find specific files", shown, len(entries)-hidden))
	}
	if more {
		notes = append(notes, fmt.Sprintf("the directory has more than %d entries; only the first %d read were considered", maxListRead, maxListRead))
	}
	if hidden > 0 {
		notes = append(notes, fmt.Sprintf("%d entries refused by the workspace policy are not shown", hidden))
	}
	writeNotes(&b, notes)
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}
