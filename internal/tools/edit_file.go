package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/security"
)

// editFile is edit_file{file_path, old_string, new_string, replace_all}.
type editFile struct{ limits Limits }

type editFileArgs struct {
	FilePath   string
	OldString  string
	NewString  string
	ReplaceAll bool
}

func (t editFile) Spec() Spec {
	return Spec{
		Name: "edit_file",
		Description: `Replace exact text in an existing file. old_string must match the file's text exactly, including whitespace and indentation, and must occur exactly once unless replace_all is true (then every occurrence is replaced). Include enough surrounding lines in old_string to make it unique.
If old_string is not found, the error shows the closest lines of the file (with line numbers); if it occurs several times, the error gives their line numbers. On success the result is a unified diff of the change. The write is atomic and keeps the file's permissions.
A relative file_path is relative to the workspace root.`,
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "file_path": {"type": "string", "description": "Path of the file to edit (absolute, or relative to the workspace root)."},
    "old_string": {"type": "string", "minLength": 1, "description": "The exact text to replace."},
    "new_string": {"type": "string", "description": "The text to put in its place (must differ from old_string; may be empty to delete)."},
    "replace_all": {"type": "boolean", "description": "Replace every occurrence of old_string. Default false."}
  },
  "required": ["file_path", "old_string", "new_string"],
  "additionalProperties": false
}`),
	}
}

func parseEditFile(raw []byte) (editFileArgs, error) {
	var a editFileArgs
	err := decodeArgs("edit_file", raw,
		field{name: "file_path", required: true, dst: &a.FilePath},
		field{name: "old_string", required: true, dst: &a.OldString},
		field{name: "new_string", required: true, dst: &a.NewString},
		field{name: "replace_all", dst: &a.ReplaceAll},
	)
	bad := func(f, msg string) (editFileArgs, error) {
		return editFileArgs{}, &ArgError{Tool: "edit_file", Field: f, Msg: msg}
	}
	switch {
	case err != nil:
		return editFileArgs{}, err
	case a.FilePath == "":
		return bad("file_path", "is empty")
	case a.OldString == "":
		return bad("old_string", "is empty; to create a file or replace all of it use write_file")
	case a.OldString == a.NewString:
		return bad("new_string", "is the same as old_string; nothing would change")
	}
	return a, nil
}

func (t editFile) Prepare(s security.Session, raw json.RawMessage) (security.Action, security.Executor, error) {
	args, err := parseEditFile(raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	a, err := fileAction("edit_file", "file_path", security.FileWrite, s, args.FilePath, raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	return a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return t.run(a.Path, args)
	}), nil
}

// run edits path, the resolved path the interceptor judged.
func (t editFile) run(path string, args editFileArgs) ([]byte, error) {
	dir, err := openDir(filepath.Dir(path), false)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	name := filepath.Base(path)
	old, more, err := readExisting(dir, name, path, t.limits.EditBytes)
	switch {
	case err != nil:
		return nil, err
	case !old.found:
		return nil, failf("%s does not exist; use write_file to create a file", displayPath(path))
	case more:
		return nil, failf("%s is larger than %d bytes, the most edit_file changes", displayPath(path), t.limits.EditBytes)
	case isBinary(old.data):
		return nil, failf("%s is a binary file; edit_file changes text only", displayPath(path))
	}
	content := string(old.data)
	count := strings.Count(content, args.OldString)
	switch {
	case count == 0:
		return nil, failf("%s", noMatch(path, content, args.OldString))
	case count > 1 && !args.ReplaceAll:
		return nil, failf("old_string occurs %d times in %s (at lines %s); include more surrounding text to make it unique, or set replace_all to true", count, displayPath(path), matchLines(content, args.OldString, 20))
	}
	n := 1
	if args.ReplaceAll {
		n = -1
	}
	updated := strings.Replace(content, args.OldString, args.NewString, n)
	if int64(len(updated)) > t.limits.EditBytes {
		return nil, failf("the edited file would be %d bytes, more than the %d edit_file writes", len(updated), t.limits.EditBytes)
	}
	if err := unchangedSince(dir, name, old); err != nil {
		return nil, err
	}
	if err := writeAtomic(dir, name, path, []byte(updated), &old.mode); err != nil {
		return nil, err
	}
	what := "1 occurrence"
	if count > 1 {
		what = fmt.Sprintf("all %d occurrences", count)
	}
	return []byte(fmt.Sprintf("Edited %s: replaced %s of old_string.\n%s", displayPath(path), what, unifiedDiff(path, old.data, []byte(updated), t.limits.DiffBytes))), nil
}

// unchangedSince checks that the file at name is still the one read (same
// inode, size and modification time), so that a change made meanwhile by
// someone else is not silently overwritten.
func unchangedSince(dir int, name string, old existing) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return failf("the file disappeared while it was being edited")
	}
	if st.Ino != old.ino || st.Size != old.size || st.Mtim.Nano() != old.mtime {
		return failf("the file changed while it was being edited; read it again and retry")
	}
	return nil
}

// matchLines lists the line numbers where s occurs in content, at most max.
func matchLines(content, s string, max int) string {
	var lines []string
	line, pos := 1, 0
	for len(lines) < max {
		i := strings.Index(content[pos:], s)
		if i < 0 {
			break
		}
		line += strings.Count(content[pos:pos+i], "\n")
		lines = append(lines, fmt.Sprint(line))
		line += strings.Count(s, "\n")
		pos += i + len(s)
	}
	if strings.Count(content[pos:], s) > 0 {
		lines = append(lines, "…")
	}
	return strings.Join(lines, ", ")
}

// noMatch explains why old_string was not found, showing the lines of the
// file the model most likely meant.
func noMatch(path, content, old string) string {
	lines := strings.Split(content, "\n")
	msg := fmt.Sprintf("old_string was not found in %s.", displayPath(path))
	if from, to, ok := looseMatch(content, old); ok {
		return msg + fmt.Sprintf(" It matches lines %d-%d if whitespace is ignored (indentation, tabs or line endings differ). Those lines are:\n%s\nCopy the text exactly as shown after the tab.", from, to, numbered(lines, from, min(to, from+19)))
	}
	first := ""
	for _, l := range strings.Split(old, "\n") {
		if strings.TrimSpace(l) != "" {
			first = strings.TrimSpace(l)
			break
		}
	}
	cands := closestLines(lines, first, 3)
	if len(cands) == 0 {
		return msg + " No line of the file resembles it; read the file again before editing."
	}
	var b strings.Builder
	b.WriteString(msg + " The lines closest to the first line of old_string are:\n")
	for _, c := range cands {
		b.WriteString(numbered(lines, c, c) + "\n")
	}
	b.WriteString("Read the file around these lines and copy the text exactly.")
	return b.String()
}

// numbered shows lines from..to (1-based) as read_file does.
func numbered(lines []string, from, to int) string {
	var b strings.Builder
	for n := from; n <= to && n <= len(lines); n++ {
		if n > from {
			b.WriteByte('\n')
		}
		l, _ := clipRunes([]byte(strings.TrimSuffix(lines[n-1], "\r")), 300)
		fmt.Fprintf(&b, "%6d\t%s", n, strings.ToValidUTF8(string(l), "\uFFFD"))
	}
	return b.String()
}

// looseMatch finds old in content with every run of whitespace treated as
// one space, and returns the lines it spans.
func looseMatch(content, old string) (from, to int, ok bool) {
	needle, _ := squeeze(old)
	if needle == "" {
		return 0, 0, false
	}
	hay, offsets := squeeze(content)
	i := strings.Index(hay, needle)
	if i < 0 {
		return 0, 0, false
	}
	start, end := offsets[i], offsets[i+len(needle)-1]
	from = strings.Count(content[:start], "\n") + 1
	to = from + strings.Count(content[start:end], "\n")
	return from, to, true
}

// squeeze collapses runs of whitespace to one space and trims the ends. It
// returns, for each byte of the result, its offset in s.
func squeeze(s string) (string, []int) {
	var b strings.Builder
	offsets := make([]int, 0, len(s))
	space := false
	for i, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			offsets = append(offsets, i)
			space = false
		}
		n := b.Len()
		b.WriteRune(r)
		for range b.Len() - n {
			offsets = append(offsets, i)
		}
	}
	return b.String(), offsets
}

// maxCandidateScan bounds the lines closestLines compares.
const maxCandidateScan = 100_000

// closestLines returns the numbers (1-based) of up to n lines most like
// target, by the Dice coefficient of their character bigrams (ignoring
// case and surrounding space), best first, each at least 0.5 alike.
func closestLines(lines []string, target string, n int) []int {
	want := bigrams(target, nil)
	if len(want) == 0 {
		return nil
	}
	total := 0
	for _, c := range want {
		total += c
	}
	type cand struct {
		line  int
		score float64
	}
	var cands []cand
	have := map[[2]rune]int{}
	for i, l := range lines[:min(len(lines), maxCandidateScan)] {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		clear(have)
		bigrams(l[:min(len(l), 1000)], have)
		shared, count := 0, 0
		for g, c := range have {
			count += c
			shared += min(c, want[g])
		}
		score := 2 * float64(shared) / float64(total+count)
		if score >= 0.5 {
			cands = append(cands, cand{i + 1, score})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	out := make([]int, 0, n)
	for _, c := range cands[:min(n, len(cands))] {
		out = append(out, c.line)
	}
	sort.Ints(out)
	return out
}

// bigrams counts the adjacent rune pairs of s, lower-cased, into m.
func bigrams(s string, m map[[2]rune]int) map[[2]rune]int {
	if m == nil {
		m = map[[2]rune]int{}
	}
	s = strings.ToLower(strings.TrimSpace(s))
	prev := utf8.RuneError
	for i, r := range s {
		if i > 0 {
			m[[2]rune{prev, r}]++
		}
		prev = r
	}
	if utf8.RuneCountInString(s) == 1 {
		m[[2]rune{prev, 0}]++
	}
	return m
}
