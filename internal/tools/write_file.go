package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aymanbagabas/go-udiff"
	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/security"
)

// writeFile is write_file{file_path, content}.
type writeFile struct{ limits Limits }

type writeFileArgs struct {
	FilePath string
	Content  string
}

func (t writeFile) Spec() Spec {
	return Spec{
		Name: "write_file",
		Description: `Write a whole file: create it (and any missing parent directories) or replace its content. The write is atomic: readers see the old content or the new, never a mix; a replaced file keeps its permissions.
The result says "Created" for a new file, or shows a unified diff of the change for a replaced one. To change part of an existing file, prefer edit_file.
A relative file_path is relative to the workspace root.`,
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "file_path": {"type": "string", "description": "Path of the file to write (absolute, or relative to the workspace root)."},
    "content": {"type": "string", "description": "The complete new content of the file."}
  },
  "required": ["file_path", "content"],
  "additionalProperties": false
}`),
	}
}

func parseWriteFile(raw []byte) (writeFileArgs, error) {
	var a writeFileArgs
	err := decodeArgs("write_file", raw,
		field{name: "file_path", required: true, dst: &a.FilePath},
		field{name: "content", required: true, dst: &a.Content},
	)
	if err != nil {
		return writeFileArgs{}, err
	}
	if a.FilePath == "" {
		return writeFileArgs{}, &ArgError{Tool: "write_file", Field: "file_path", Msg: "is empty"}
	}
	return a, nil
}

func (t writeFile) Prepare(s security.Session, raw json.RawMessage) (security.Action, security.Executor, error) {
	args, err := parseWriteFile(raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	a, err := fileAction("write_file", "file_path", security.FileWrite, s, args.FilePath, raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	return a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return t.run(a.Path, []byte(args.Content))
	}), nil
}

// run writes content at path, the resolved path the interceptor judged.
func (t writeFile) run(path string, content []byte) ([]byte, error) {
	if path == "/" {
		return nil, failf("/ is a directory")
	}
	dir, err := openDir(filepath.Dir(path), true)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	name := filepath.Base(path)
	old, more, err := readExisting(dir, name, path, t.limits.EditBytes)
	if err != nil {
		return nil, err
	}
	if old.found && !more && bytes.Equal(old.data, content) {
		return []byte(fmt.Sprintf("%s is unchanged: it already has exactly this content (%d bytes).", displayPath(path), len(content))), nil
	}
	var keep *os.FileMode
	if old.found {
		keep = &old.mode
	}
	if err := writeAtomic(dir, name, path, content, keep); err != nil {
		return nil, err
	}
	if !old.found {
		return []byte(fmt.Sprintf("Created %s (%d bytes, %d lines).", displayPath(path), len(content), countLines(content))), nil
	}
	head := fmt.Sprintf("Replaced %s (%d bytes before, %d bytes now).", displayPath(path), old.size, len(content))
	switch {
	case more:
		return []byte(head + fmt.Sprintf(" No diff: the old file was larger than %d bytes.", t.limits.EditBytes)), nil
	case isBinary(old.data):
		return []byte(head + " No diff: the old file was binary."), nil
	}
	return []byte(head + "\n" + unifiedDiff(path, old.data, content, t.limits.DiffBytes)), nil
}

// countLines counts lines as an editor shows them: a last line without a
// newline counts.
func countLines(b []byte) int {
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// diffInputMax bounds the size of each side of a diff; the diff algorithm
// is superlinear.
const diffInputMax = 1 << 20

// unifiedDiff is a unified diff of old and new (3 lines of context),
// labelled with path, cut to at most max bytes on a line boundary.
func unifiedDiff(path string, old, new []byte, max int) string {
	if len(old) > diffInputMax || len(new) > diffInputMax {
		return fmt.Sprintf("(no diff: the file is larger than %d bytes)", diffInputMax)
	}
	o, n := string(old), string(new)
	d, err := udiff.ToUnified(displayPath(path), displayPath(path), o, udiff.Lines(o, n), udiff.DefaultContextLines)
	if err != nil {
		return "(no diff: " + err.Error() + ")"
	}
	if d == "" {
		return "(no changes)"
	}
	d = strings.ToValidUTF8(d, "\uFFFD")
	if len(d) <= max {
		return strings.TrimSuffix(d, "\n")
	}
	cut := strings.LastIndexByte(d[:max], '\n')
	if cut < 0 {
		cut = 0
	}
	rest := strings.Count(d[cut:], "\n")
	return d[:cut] + fmt.Sprintf("\n[diff cut: %d more lines not shown]", rest)
}
