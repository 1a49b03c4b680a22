package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem in one configuration layer. File is the layer's
// path, "<defaults>" for the embedded defaults, or "env:NAME" for a value
// taken from an environment variable. Line and Col are 1-based and zero when
// unknown (environment values, whole-file problems). Key is the dotted key
// (quoted where needed, as `config show --origin` prints it) and may be empty
// for syntax errors.
type FieldError struct {
	File string
	Line int
	Col  int
	Key  string
	Msg  string
}

// Error formats the error as "file:line:col: key: msg", leaving out the
// parts that are unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem Load found, in file then position order. Load
// returns it (never an empty one) when the configuration is invalid;
// callers list its elements or print Error for one line per problem.
type Errors []*FieldError

// Error returns one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *FieldError values.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// errorList collects FieldErrors. files, when set, fixes the order in which
// layers' errors are listed; the zero value is ready to use.
type errorList struct {
	files []string
	errs  Errors
	// bad holds the keys that had an error, so cross-field checks can skip
	// them instead of piling a second error on the first.
	bad map[string]bool
}

func (l *errorList) add(file string, pos Pos, key, format string, args ...any) {
	if l.bad == nil {
		l.bad = map[string]bool{}
	}
	l.bad[key] = true
	l.errs = append(l.errs, &FieldError{File: file, Line: pos.Line, Col: pos.Col, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// sorted returns the errors in a stable order: by file (l.files order, then
// first appearance), then line, column and key.
func (l *errorList) sorted() Errors {
	if len(l.errs) == 0 {
		return nil
	}
	rank := map[string]int{}
	for _, f := range l.files {
		if _, ok := rank[f]; !ok {
			rank[f] = len(rank)
		}
	}
	for _, e := range l.errs {
		if _, ok := rank[e.File]; !ok {
			rank[e.File] = len(rank)
		}
	}
	out := slices.Clone(l.errs)
	slices.SortStableFunc(out, func(a, b *FieldError) int {
		return cmp.Or(
			cmp.Compare(rank[a.File], rank[b.File]),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			strings.Compare(a.Key, b.Key),
		)
	})
	return out
}
