package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/security"
)

// grepTool is grep{pattern, path, glob, context, case_insensitive}.
type grepTool struct{ w walkConfig }

type grepArgs struct {
	Pattern         string
	Path            string
	Glob            string
	Context         int
	CaseInsensitive bool

	re *regexp.Regexp
	// whole, when set, finds whether a file has any matching line at
	// all: re in multi-line mode. It is nil when the pattern anchors to
	// the start or end of the text (\A, \z), which mean the line there.
	whole *regexp.Regexp
}

const (
	maxRegexLen   = 4096
	maxContext    = 20
	grepLineChars = 500
)

func (t grepTool) Spec() Spec {
	return Spec{
		Name: "grep",
		Description: fmt.Sprintf(`Search file contents with a regular expression (Go RE2 syntax: no backreferences or lookaround), line by line, under path (a directory, default the workspace root, or a single file).
Output lines look like "path:12:matching line"; with context, surrounding lines look like "path-11-line" and "--" separates groups. glob filters files: a pattern without "/" matches file names ("*.go"), one with "/" matches paths relative to path ("src/**/*.ts").
Files ignored by .gitignore, version-control directories, binary files and files over %d bytes are skipped; symbolic links are never followed. At most %d matching lines are shown; a note says when the output was cut.`, t.w.limits.GrepFileBytes, t.w.limits.Results),
		InputSchema: json.RawMessage(fmt.Sprintf(`{
  "type": "object",
  "properties": {
    "pattern": {"type": "string", "description": "Regular expression (RE2 syntax) to search for."},
    "path": {"type": "string", "description": "Directory or file to search (absolute, or relative to the workspace root). Default: the workspace root."},
    "glob": {"type": "string", "description": "Only search files matching this glob, e.g. \"*.go\" or \"src/**/*.ts\"."},
    "context": {"type": "integer", "minimum": 0, "maximum": %d, "description": "Lines of context to show before and after each match. Default 0."},
    "case_insensitive": {"type": "boolean", "description": "Match regardless of case. Default false."}
  },
  "required": ["pattern"],
  "additionalProperties": false
}`, maxContext)),
		ReadOnly: true,
	}
}

func parseGrep(raw []byte) (grepArgs, error) {
	var a grepArgs
	if err := decodeArgs("grep", raw,
		field{name: "pattern", required: true, dst: &a.Pattern},
		field{name: "path", dst: &a.Path},
		field{name: "glob", dst: &a.Glob},
		field{name: "context", dst: &a.Context},
		field{name: "case_insensitive", dst: &a.CaseInsensitive},
	); err != nil {
		return grepArgs{}, err
	}
	bad := func(f, msg string) (grepArgs, error) {
		return grepArgs{}, &ArgError{Tool: "grep", Field: f, Msg: msg}
	}
	switch {
	case a.Pattern == "":
		return bad("pattern", "is empty")
	case len(a.Pattern) > maxRegexLen:
		return bad("pattern", fmt.Sprintf("is longer than %d bytes", maxRegexLen))
	case a.Context < 0 || a.Context > maxContext:
		return bad("context", fmt.Sprintf("must be between 0 and %d, got %d", maxContext, a.Context))
	}
	expr := a.Pattern
	if a.CaseInsensitive {
		expr = "(?i)" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return bad("pattern", "not a valid RE2 regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	a.re = re
	if tree, err := syntax.Parse("(?m)"+expr, syntax.Perl); err == nil && !anchorsText(tree) {
		a.whole, _ = regexp.Compile("(?m)" + expr)
	}
	if a.Glob != "" {
		g, err := checkPattern("grep", "glob", a.Glob)
		if err != nil {
			return grepArgs{}, err
		}
		a.Glob = g
	}
	return a, nil
}

func (t grepTool) Prepare(s security.Session, raw json.RawMessage) (security.Action, security.Executor, error) {
	args, err := parseGrep(raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	a, err := rootAction("grep", security.FileList, s, args.Path, raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	if fi, err := os.Stat(a.Path); err == nil && fi.Mode().IsRegular() {
		// A single file is read, not listed: judge it as a read.
		if a, err = fileAction("grep", "path", security.FileRead, s, a.Path, raw); err != nil {
			return security.Action{}, nil, err
		}
	}
	a.Summary = fmt.Sprintf("Search %s for /%s/", a.Path, clipText(args.Pattern, 200))
	ws := s.Workspace
	return a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return t.run(ctx, ws, a, args)
	}), nil
}

// grepRun collects the output of one search.
type grepRun struct {
	args    grepArgs
	limits  Limits
	out     strings.Builder
	matches int
	files   int
	binary  int
	large   int
	cut     bool
}

var errGrepFull = errors.New("grep output full")

func (t grepTool) run(ctx context.Context, ws string, a security.Action, args grepArgs) ([]byte, error) {
	g := &grepRun{args: args, limits: t.w.limits}
	var w *walker
	if a.Kind == security.FileRead {
		f, fi, err := openRegular(-1, a.Path, a.Path)
		if err != nil {
			return nil, err
		}
		err = g.file(f, fi.Size(), a.Path)
		f.Close()
		if err != nil && err != errGrepFull {
			return nil, err
		}
	} else {
		var err error
		w, err = t.w.walk(ctx, ws, a.Path, func(e walkEntry) error {
			if !isRegularEntry(e.typ) || args.Glob != "" && !globMatches(args.Glob, e.rel) {
				return nil
			}
			f, fi, err := openRegular(e.dir, e.name, e.path)
			if err != nil {
				return nil // swapped, removed or unreadable: skip
			}
			defer f.Close()
			if err := g.file(f, fi.Size(), e.path); err == errGrepFull {
				return errStopWalk
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var notes []string
	if g.cut {
		notes = append(notes, fmt.Sprintf("output cut after %d matching lines (limit %d lines or %d bytes); there are more: narrow the pattern, path or glob", g.matches, g.limits.Results, g.limits.OutputBytes))
	}
	if g.binary > 0 {
		notes = append(notes, fmt.Sprintf("%d binary files skipped", g.binary))
	}
	if g.large > 0 {
		notes = append(notes, fmt.Sprintf("%d files over %d bytes skipped", g.large, g.limits.GrepFileBytes))
	}
	if w != nil {
		notes = append(notes, w.notes()...)
	}
	if g.matches == 0 {
		fmt.Fprintf(&g.out, "No matches for /%s/ in %s (%d files searched).", args.Pattern, displayPath(a.Path), g.files)
	}
	writeNotes(&g.out, notes)
	return []byte(strings.TrimSuffix(g.out.String(), "\n")), nil
}

func isRegularEntry(typ uint8) bool { return typ == unix.DT_REG }

// globMatches applies grep's glob filter: a pattern without "/" matches
// the file name, one with "/" the path relative to the search root.
func globMatches(glob, rel string) bool {
	if !strings.Contains(glob, "/") {
		return doublestar.MatchUnvalidated(glob, path.Base(rel))
	}
	return doublestar.MatchUnvalidated(glob, rel)
}

// anchorsText reports whether a regexp uses \A or \z.
func anchorsText(re *syntax.Regexp) bool {
	if re.Op == syntax.OpBeginText || re.Op == syntax.OpEndText {
		return true
	}
	for _, sub := range re.Sub {
		if anchorsText(sub) {
			return true
		}
	}
	return false
}

// file searches one open file.
func (g *grepRun) file(f *os.File, size int64, name string) error {
	if size > g.limits.GrepFileBytes {
		g.large++
		return nil
	}
	data, _, err := readUpTo(f, g.limits.GrepFileBytes)
	if err != nil {
		return nil
	}
	g.files++
	if isBinary(data) {
		g.binary++
		return nil
	}
	// With CR line endings, "$" of the whole-file regexp would not match
	// where it matches the line without its CR; search line by line.
	if g.args.whole != nil && bytes.IndexByte(data, '\r') < 0 && !g.args.whole.Match(data) {
		return nil
	}
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	display := displayPath(name)
	c := g.args.Context
	last := -1 // the last line printed (0-based), for separators and overlap
	for i := range lines {
		lines[i] = bytes.TrimSuffix(lines[i], []byte("\r"))
	}
	for i, l := range lines {
		if !g.args.re.Match(l) {
			continue
		}
		if g.matches == g.limits.Results {
			g.cut = true
			return errGrepFull
		}
		from := max(i-c, last+1)
		if c > 0 && (last >= 0 && from > last+1 || last < 0 && g.out.Len() > 0) {
			if !g.write("--\n") {
				return errGrepFull
			}
		}
		for j := from; j < i; j++ {
			if !g.write(g.line(display, '-', j, lines[j])) {
				return errGrepFull
			}
		}
		if !g.write(g.line(display, ':', i, l)) {
			return errGrepFull
		}
		g.matches++
		last = i
		// Context after: lines up to the next match are printed by it.
		for j := i + 1; j <= min(i+c, len(lines)-1); j++ {
			if g.args.re.Match(lines[j]) {
				break
			}
			if !g.write(g.line(display, '-', j, lines[j])) {
				return errGrepFull
			}
			last = j
		}
	}
	return nil
}

func (g *grepRun) line(display string, sep byte, i int, l []byte) string {
	text, cut := clipRunes(l, grepLineChars)
	s := fmt.Sprintf("%s%c%d%c%s", display, sep, i+1, sep, bytes.ToValidUTF8(text, []byte("\uFFFD")))
	if cut {
		s += " … [cut]"
	}
	return s + "\n"
}

// write appends s unless the output would exceed its byte limit.
func (g *grepRun) write(s string) bool {
	if g.out.Len()+len(s) > g.limits.OutputBytes {
		g.cut = true
		return false
	}
	g.out.WriteString(s)
	return true
}
