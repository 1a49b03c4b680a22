package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/security"
)

// globTool is glob{pattern, path}.
type globTool struct{ w walkConfig }

type globArgs struct {
	Pattern string
	Path    string
}

const maxPatternLen = 1024

func (t globTool) Spec() Spec {
	return Spec{
		Name: "glob",
		Description: fmt.Sprintf(`Find files by name with a glob pattern, matched against paths relative to path (default: the workspace root). Patterns use doublestar syntax: * matches within one directory, ** across directories, ? one character, [abc] a class, {a,b} alternatives. Examples: "**/*.go", "src/**/*_test.go", "*.{yml,yaml}".
Files ignored by .gitignore and version-control directories are skipped, and symbolic links are never followed. Results are absolute paths, newest modification first, at most %d.`, t.w.limits.Results),
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "pattern": {"type": "string", "description": "Glob pattern relative to path, e.g. \"**/*.go\"."},
    "path": {"type": "string", "description": "Directory to search under (absolute, or relative to the workspace root). Default: the workspace root."}
  },
  "required": ["pattern"],
  "additionalProperties": false
}`),
		ReadOnly: true,
	}
}

func parseGlob(raw []byte) (globArgs, error) {
	var a globArgs
	if err := decodeArgs("glob", raw,
		field{name: "pattern", required: true, dst: &a.Pattern},
		field{name: "path", dst: &a.Path},
	); err != nil {
		return globArgs{}, err
	}
	p, err := checkPattern("glob", "pattern", a.Pattern)
	if err != nil {
		return globArgs{}, err
	}
	a.Pattern = p
	return a, nil
}

// checkPattern validates a doublestar pattern that is matched against
// paths relative to a search root.
func checkPattern(tool, name, p string) (string, error) {
	bad := func(msg string) (string, error) {
		return "", &ArgError{Tool: tool, Field: name, Msg: msg}
	}
	p = strings.TrimPrefix(p, "./")
	switch {
	case p == "":
		return bad("is empty")
	case len(p) > maxPatternLen:
		return bad(fmt.Sprintf("is longer than %d bytes", maxPatternLen))
	case strings.HasPrefix(p, "/"):
		return bad("must be relative to path; to search elsewhere, set path")
	case !doublestar.ValidatePattern(p):
		return bad(fmt.Sprintf("%q is not a valid glob pattern", p))
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return bad(`must not contain ".."; to search elsewhere, set path`)
		}
	}
	return p, nil
}

// rootAction builds the action of a walking tool for its path argument
// (default: the workspace root).
func rootAction(tool string, kind security.Kind, s security.Session, path string, raw json.RawMessage) (security.Action, error) {
	if path == "" {
		if s.Workspace == "" {
			return security.Action{}, &ArgError{Tool: tool, Field: "path", Msg: "is required: this session has no workspace"}
		}
		path = s.Workspace
	}
	return fileAction(tool, "path", kind, s, path, raw)
}

func (t globTool) Prepare(s security.Session, raw json.RawMessage) (security.Action, security.Executor, error) {
	args, err := parseGlob(raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	a, err := rootAction("glob", security.FileList, s, args.Path, raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	a.Summary = fmt.Sprintf("Find files matching %q under %s", args.Pattern, a.Path)
	ws := s.Workspace
	return a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return t.run(ctx, ws, a.Path, args.Pattern)
	}), nil
}

type globMatch struct {
	path  string
	mtime int64
}

func (t globTool) run(ctx context.Context, ws, root, pattern string) ([]byte, error) {
	var matches []globMatch
	w, err := t.w.walk(ctx, ws, root, func(e walkEntry) error {
		if !doublestar.MatchUnvalidated(pattern, e.rel) {
			return nil
		}
		var st unix.Stat_t
		if unix.Fstatat(e.dir, e.name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			return nil // gone meanwhile
		}
		matches = append(matches, globMatch{e.path, st.Mtim.Nano()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(matches, func(i, j int) bool {
		if matches[i].mtime != matches[j].mtime {
			return matches[i].mtime > matches[j].mtime
		}
		return matches[i].path < matches[j].path
	})
	var b strings.Builder
	if len(matches) == 0 {
		fmt.Fprintf(&b, "No files match %q under %s.", pattern, displayPath(root))
	}
	shown := 0
	for _, m := range matches {
		line := displayPath(m.path) + "\n"
		if shown == t.w.limits.Results || b.Len()+len(line) > t.w.limits.OutputBytes {
			break
		}
		b.WriteString(line)
		shown++
	}
	notes := w.notes()
	if shown < len(matches) {
		notes = append([]string{fmt.Sprintf("showing the %d newest of %d matches; narrow the pattern or path to see the rest", shown, len(matches))}, notes...)
	}
	writeNotes(&b, notes)
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// writeNotes appends notes in square brackets, one per line.
func writeNotes(b *strings.Builder, notes []string) {
	for _, n := range notes {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteByte('\n')
		}
		b.WriteString("[" + n + "]\n")
	}
}
