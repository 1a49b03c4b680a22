package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Bounds on untrusted input. A layer larger than maxFileSize is refused
// before parsing; lists longer than maxListLen and strings longer than
// maxStringLen are errors.
const (
	maxFileSize  = 1 << 20
	maxListLen   = 4096
	maxStringLen = 64 << 10
)

// Pos is a 1-based line and byte column in a layer file; the zero Pos means
// "no position" (environment values).
type Pos struct {
	Line, Col int
}

// entry is one leaf value of a layer: a scalar, a list or a string map.
type entry struct {
	path    []string
	key     string // joinKey(path)
	pattern string // path with map names replaced by "*", joined by "."
	// val is string, int64, float64, bool, []string, []int64 or
	// map[string]string, matching the Config field's Go type.
	val   any
	layer Layer
	file  string
	pos   Pos
}

// layerDoc is a decoded, type-checked and value-checked layer.
type layerDoc struct {
	layer   Layer
	file    string
	entries []*entry
	// tables holds the position of every table and key prefix, for errors
	// about a whole table (a server missing its command).
	tables map[string]Pos
}

// expandMode says what a layer may do with ${VAR} references.
type expandMode int

const (
	expandEnv    expandMode = iota // expand from the environment (system, user)
	expandForbid                   // references are errors (workspace)
)

var configType = reflect.TypeFor[Config]()

// decodeLayer parses data as one layer and checks every key, type and value
// against the schema, reporting every problem to errs. It returns nil when
// the file is not valid TOML (one error, at the syntax error's position);
// otherwise the entries that passed their checks.
func decodeLayer(layer Layer, file string, data []byte, mode expandMode, getenv func(string) string, errs *errorList) *layerDoc {
	if len(data) > maxFileSize {
		errs.add(file, Pos{}, "", "file is larger than %d bytes", maxFileSize)
		return nil
	}
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, col := de.Position()
			errs.add(file, Pos{line, col}, strings.Join(de.Key(), "."), "%s", strings.TrimPrefix(de.Error(), "toml: "))
		} else {
			errs.add(file, Pos{}, "", "%v", err)
		}
		return nil
	}
	w := &walker{
		doc:    &layerDoc{layer: layer, file: file, tables: keyPositions(data)},
		mode:   mode,
		getenv: getenv,
		errs:   errs,
	}
	w.walkStruct(raw, configType, nil, nil)
	return w.doc
}

type walker struct {
	doc    *layerDoc
	mode   expandMode
	getenv func(string) string
	errs   *errorList
}

func (w *walker) errorf(path []string, format string, args ...any) {
	key := joinKey(path)
	w.errs.add(w.doc.file, w.pos(path), key, format, args...)
}

// pos finds the position of path, or of its nearest ancestor with one.
func (w *walker) pos(path []string) Pos {
	for i := len(path); i > 0; i-- {
		if p, ok := w.doc.tables[joinKey(path[:i])]; ok {
			return p
		}
	}
	return Pos{}
}

func (w *walker) walkStruct(m map[string]any, t reflect.Type, path, pat []string) {
	for _, k := range sortedKeys(m) {
		p := append(slices.Clip(path), k)
		f, ok := fieldByTag(t, k)
		if !ok {
			w.errorf(p, "unknown key%s", suggest(t, k))
			continue
		}
		w.walkValue(m[k], f.Type, p, append(slices.Clip(pat), k))
	}
}

func (w *walker) walkValue(v any, t reflect.Type, path, pat []string) {
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			w.errorf(path, "must be a table, not %s", tomlType(v))
			return
		}
		w.walkStruct(m, t, path, pat)
		return
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			w.errorf(path, "must be a table, not %s", tomlType(v))
			return
		}
		if t.Elem().Kind() == reflect.Struct {
			check := mapNameChecks[strings.Join(pat, ".")]
			for _, name := range sortedKeys(m) {
				p := append(slices.Clip(path), name)
				if check != nil {
					if err := check(name); err != nil {
						w.errorf(p, "%v", err)
						continue
					}
				}
				w.walkValue(m[name], t.Elem(), p, append(slices.Clip(pat), "*"))
			}
			return
		}
		out := make(map[string]string, len(m))
		ok = true
		for _, k := range sortedKeys(m) {
			s, isStr := m[k].(string)
			if !isStr {
				w.errorf(append(slices.Clip(path), k), "must be a string, not %s", tomlType(m[k]))
				ok = false
				continue
			}
			if s, isStr = w.str(append(slices.Clip(path), k), s); !isStr {
				ok = false
				continue
			}
			out[k] = s
		}
		if ok {
			w.leaf(path, pat, out)
		}
		return
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			w.errorf(path, "must be an array of %ss, not %s", kindName(t.Elem().Kind()), tomlType(v))
			return
		}
		if len(arr) > maxListLen {
			w.errorf(path, "has %d entries, more than the limit of %d", len(arr), maxListLen)
			return
		}
		switch t.Elem().Kind() {
		case reflect.String:
			out := make([]string, 0, len(arr))
			for i, e := range arr {
				s, isStr := e.(string)
				if !isStr {
					w.errorf(path, "entry %d must be a string, not %s", i+1, tomlType(e))
					return
				}
				if s, isStr = w.str(path, s); !isStr {
					return
				}
				out = append(out, s)
			}
			w.leaf(path, pat, out)
		case reflect.Int64:
			out := make([]int64, 0, len(arr))
			for i, e := range arr {
				n, isInt := e.(int64)
				if !isInt {
					w.errorf(path, "entry %d must be an integer, not %s", i+1, tomlType(e))
					return
				}
				out = append(out, n)
			}
			w.leaf(path, pat, out)
		default:
			w.errorf(path, "internal error: unsupported list type %s", t)
		}
		return
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			w.errorf(path, "must be a string, not %s", tomlType(v))
			return
		}
		if s, ok = w.str(path, s); ok {
			w.leaf(path, pat, s)
		}
	case reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			w.errorf(path, "must be an integer, not %s", tomlType(v))
			return
		}
		w.leaf(path, pat, n)
	case reflect.Float64:
		switch n := v.(type) {
		case float64:
			w.leaf(path, pat, n)
		case int64:
			w.leaf(path, pat, float64(n))
		default:
			w.errorf(path, "must be a number, not %s", tomlType(v))
		}
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			w.errorf(path, "must be a boolean, not %s", tomlType(v))
			return
		}
		w.leaf(path, pat, b)
	default:
		w.errorf(path, "internal error: unsupported field type %s", t)
	}
}

// str bounds and expands one string value.
func (w *walker) str(path []string, s string) (string, bool) {
	if len(s) > maxStringLen {
		w.errorf(path, "string is longer than %d bytes", maxStringLen)
		return "", false
	}
	out, err := expand(s, w.mode, w.getenv)
	if err != nil {
		w.errorf(path, "%v", err)
		return "", false
	}
	return out, true
}

// leaf runs the field's value check and records the entry if it passes.
func (w *walker) leaf(path, pat []string, v any) {
	pattern := strings.Join(pat, ".")
	f, ok := fields[pattern]
	if !ok {
		// Fail closed: a field without a rule is a bug, not a free pass.
		w.errorf(path, "internal error: no validation rule for %s", pattern)
		return
	}
	if err := f.check(v); err != nil {
		w.errorf(path, "%v", err)
		return
	}
	w.doc.entries = append(w.doc.entries, &entry{
		path:    path,
		key:     joinKey(path),
		pattern: pattern,
		val:     v,
		layer:   w.doc.layer,
		file:    w.doc.file,
		pos:     w.pos(path),
	})
}

// fieldByTag finds the struct field whose toml tag is name.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tagName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

// suggest returns ` (did you mean "x"?)` when a key differs from a known one
// only in case, dashes or underscores.
func suggest(t reflect.Type, k string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	for i := range t.NumField() {
		if n := tagName(t.Field(i)); norm(n) == norm(k) {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return "a date/time"
	}
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Int64:
		return "integer"
	}
	return k.String()
}

// joinKey joins key parts with dots, quoting the parts that are not bare
// TOML keys, so the result reads like the key in a file:
// model.pricing."gpt-4.1".input_per_mtok.
func joinKey(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		if isBareKey(p) {
			b.WriteString(p)
		} else {
			b.WriteString(quoteString(p))
		}
	}
	return b.String()
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// quoteString returns s as a TOML basic string.
func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// keyPositions maps every key and key prefix of a valid TOML document to the
// position of its first appearance. The document must already have parsed.
func keyPositions(data []byte) map[string]Pos {
	lines := lineStarts(data)
	at := func(off uint32) Pos {
		o := int(off)
		i := sort.Search(len(lines), func(i int) bool { return lines[i] > o }) - 1
		if i < 0 {
			i = 0
		}
		return Pos{Line: i + 1, Col: o - lines[i] + 1}
	}
	out := map[string]Pos{}
	record := func(prefix []string, keys *unstable.Node) []string {
		full := slices.Clip(prefix)
		for k := keys; k.Valid(); k = k.Next() {
			full = append(slices.Clip(full), string(k.Data))
			if _, ok := out[joinKey(full)]; !ok {
				out[joinKey(full)] = at(k.Raw.Offset)
			}
		}
		return full
	}
	var visitKV func(prefix []string, kv *unstable.Node)
	visitKV = func(prefix []string, kv *unstable.Node) {
		val := kv.Value()
		full := record(prefix, val.Next())
		if val.Kind == unstable.InlineTable {
			for c := val.Child(); c.Valid(); c = c.Next() {
				if c.Kind == unstable.KeyValue {
					visitKV(full, c)
				}
			}
		}
	}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = record(nil, e.Child())
		case unstable.KeyValue:
			visitKV(table, e)
		}
	}
	return out
}

func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}
