package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ArgError is an argument the model got wrong: bad JSON, an unknown or
// repeated field, a missing required field, a value of the wrong type or
// out of range. Its text names the tool and the field so that the model can
// fix its call.
type ArgError struct {
	Tool  string
	Field string // "" when the error is about the arguments as a whole
	Msg   string
}

func (e *ArgError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: invalid arguments: %s", e.Tool, e.Msg)
	}
	return fmt.Sprintf("%s: argument %q: %s", e.Tool, e.Field, e.Msg)
}

// field describes one accepted argument. dst is a *string, *int or *bool.
type field struct {
	name     string
	required bool
	dst      any
}

// decodeArgs decodes a JSON object strictly: exact (case-sensitive) field
// names, no unknown or repeated fields, values of the declared types,
// nothing after the object. A null value counts as absent. It assigns
// into the destinations as it goes; callers decode into a fresh struct and
// use it only when decodeArgs returns nil.
func decodeArgs(tool string, raw []byte, fields ...field) error {
	bad := func(f, format string, args ...any) error {
		return &ArgError{Tool: tool, Field: f, Msg: fmt.Sprintf(format, args...)}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}") // no arguments at all: as if an empty object
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return bad("", "not valid JSON: %v", jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return bad("", "want a JSON object, got %s", describe(tok))
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("", "not valid JSON: %v", jsonErr(err))
		}
		key, _ := tok.(string) // object keys are always strings
		var f *field
		for i := range fields {
			if fields[i].name == key {
				f = &fields[i]
			}
		}
		if f == nil {
			return bad("", "unknown field %q (accepted: %s)", clipText(key, 64), names(fields))
		}
		if seen[key] {
			return bad(key, "given more than once")
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return bad(key, "not valid JSON: %v", jsonErr(err))
		}
		if string(v) == "null" {
			seen[key] = false
			continue
		}
		if err := decodeValue(v, f.dst); err != nil {
			return bad(key, "%v", err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return bad("", "not valid JSON: %v", jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("", "unexpected data after the JSON object")
	}
	for _, f := range fields {
		if f.required && !seen[f.name] {
			return bad(f.name, "is required")
		}
	}
	return nil
}

// decodeValue decodes one JSON value into dst, with messages in terms of
// JSON types.
func decodeValue(v json.RawMessage, dst any) error {
	switch d := dst.(type) {
	case *string:
		if v[0] != '"' {
			return fmt.Errorf("want a string, got %s", kindOf(v))
		}
		return json.Unmarshal(v, d)
	case *bool:
		if string(v) != "true" && string(v) != "false" {
			return fmt.Errorf("want true or false, got %s", kindOf(v))
		}
		*d = string(v) == "true"
		return nil
	case *int:
		var n json.Number
		if v[0] == '"' || json.Unmarshal(v, &n) != nil {
			return fmt.Errorf("want an integer, got %s", kindOf(v))
		}
		i, err := n.Int64()
		if err != nil || i > 1<<31 || i < -(1<<31) {
			return fmt.Errorf("want an integer, got the number %s", clipText(string(v), 32))
		}
		*d = int(i)
		return nil
	}
	return fmt.Errorf("internal: unsupported destination %T", dst)
}

func kindOf(v json.RawMessage) string {
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "the number " + clipText(string(v), 32)
}

func describe(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return string(t)
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}

func names(fields []field) string {
	s := make([]string, len(fields))
	for i, f := range fields {
		s[i] = f.name
	}
	return strings.Join(s, ", ")
}

// jsonErr strips the package prefix of a JSON syntax error.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// clipText shortens s to at most n bytes on a rune boundary, marking the cut.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
