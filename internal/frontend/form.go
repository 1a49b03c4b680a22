package frontend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Limits on an elicitation schema, which comes from an MCP server and is
// untrusted.
const (
	maxSchemaBytes = 64 << 10
	maxFormFields  = 32
	maxEnumValues  = 100
)

// Field is one field of a form, decoded from the flat JSON schema MCP
// allows: string (optionally a choice among Choices), number, integer,
// boolean.
type Field struct {
	Name        string // the key of the value; the server's own
	Type        string // string, number, integer or boolean
	Title       string // sanitized; the name when the schema has none
	Description string // sanitized
	Choices     []Choice
	Required    bool
	// Default is the schema's default: a string, float64 (number and
	// integer) or bool; nil when it has none (or one of the wrong type).
	Default any
}

// Choice is one of the values a string field allows.
type Choice struct {
	Value string // sent back as it is
	Label string // Value, sanitized, to show
}

// ParseForm decodes a form's schema, keeping the properties in the order
// the server wrote them. It refuses what it cannot render faithfully.
func ParseForm(raw json.RawMessage) ([]Field, error) {
	if len(raw) > maxSchemaBytes {
		return nil, fmt.Errorf("the form's schema is larger than %d bytes", maxSchemaBytes)
	}
	var s struct {
		Type       string          `json:"type"`
		Properties json.RawMessage `json:"properties"`
		Required   []string        `json:"required"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("the form's schema is not valid JSON: %w", err)
	}
	if s.Type != "" && s.Type != "object" {
		return nil, fmt.Errorf("the form's schema is of type %q, not object", SanitizeLine(s.Type))
	}
	names, err := objectKeys(s.Properties)
	if err != nil {
		return nil, err
	}
	if len(names) > maxFormFields {
		return nil, fmt.Errorf("the form has %d fields, more than %d", len(names), maxFormFields)
	}
	var props map[string]struct {
		Type        string            `json:"type"`
		Title       string            `json:"title"`
		Description string            `json:"description"`
		Enum        []json.RawMessage `json:"enum"`
		Default     json.RawMessage   `json:"default"`
	}
	if len(s.Properties) > 0 {
		if err := json.Unmarshal(s.Properties, &props); err != nil {
			return nil, fmt.Errorf("the form's properties: %w", err)
		}
	}
	var fields []Field
	for _, name := range names {
		p := props[name]
		f := Field{Name: name, Type: p.Type, Title: SanitizeLine(p.Title), Description: SanitizeLine(p.Description), Required: slices.Contains(s.Required, name)}
		if f.Title == "" {
			f.Title = SanitizeLine(name)
		}
		switch p.Type {
		case "string":
			if len(p.Enum) > maxEnumValues {
				return nil, fmt.Errorf("field %q has more than %d choices", SanitizeLine(name), maxEnumValues)
			}
			for _, e := range p.Enum {
				var v string
				if json.Unmarshal(e, &v) != nil {
					return nil, fmt.Errorf("field %q has a choice that is not a string", SanitizeLine(name))
				}
				f.Choices = append(f.Choices, Choice{Value: v, Label: SanitizeLine(v)})
			}
		case "number", "integer", "boolean":
		default:
			return nil, fmt.Errorf("field %q is of type %q, which a form cannot ask for", SanitizeLine(name), SanitizeLine(p.Type))
		}
		if len(p.Default) > 0 {
			var d any
			if json.Unmarshal(p.Default, &d) == nil {
				if v, err := f.Value(d); err == nil && v != nil {
					f.Default = d
				}
			}
		}
		fields = append(fields, f)
	}
	return fields, nil
}

// objectKeys returns the keys of a JSON object in their order.
func objectKeys(raw json.RawMessage) ([]string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("the form's properties are not an object")
	}
	seen := map[string]bool{}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("the form's properties: %w", err)
		}
		k, _ := t.(string)
		if seen[k] {
			return nil, fmt.Errorf("the form's properties name %q twice", SanitizeLine(k))
		}
		seen[k] = true
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, fmt.Errorf("the form's properties: %w", err)
		}
	}
	return keys, nil
}

// Value checks v against the field and returns it as the form's content
// holds it: a string, float64 (number), int64 (integer) or bool. v may be
// a string of any field type, as typed, or a value of the field's own
// type. A nil value or a blank string is no value: Value returns nil, or
// the error "required".
func (f Field) Value(v any) (any, error) {
	if s, ok := v.(string); ok {
		switch {
		case strings.TrimSpace(s) == "":
			v = nil
		case f.Type != "string":
			return f.parse(strings.TrimSpace(s))
		}
	}
	if v == nil {
		if f.Required {
			return nil, errors.New("required")
		}
		return nil, nil
	}
	switch f.Type {
	case "string":
		s, ok := v.(string)
		if !ok {
			return nil, errors.New("text, please")
		}
		if len(f.Choices) > 0 && !slices.ContainsFunc(f.Choices, func(c Choice) bool { return c.Value == s }) {
			return nil, errors.New("not one of the choices")
		}
		return s, nil
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return nil, errors.New("yes or no, please")
		}
		return b, nil
	case "number", "integer":
		var x float64
		switch n := v.(type) {
		case float64:
			x = n
		case int:
			x = float64(n)
		case int64:
			x = float64(n)
		default:
			return nil, errors.New("a number, please")
		}
		return f.number(x)
	}
	return nil, fmt.Errorf("a field of type %q", SanitizeLine(f.Type))
}

// parse reads a number, integer or boolean field's text.
func (f Field) parse(s string) (any, error) {
	switch f.Type {
	case "boolean":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, errors.New("yes or no, please")
		}
		return b, nil
	case "integer":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, errors.New("a whole number, please")
		}
		return n, nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, errors.New("a number, please")
	}
	return f.number(x)
}

func (f Field) number(x float64) (any, error) {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return nil, errors.New("a number, please")
	}
	if f.Type == "integer" {
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return nil, errors.New("a whole number, please")
		}
		return int64(x), nil
	}
	return x, nil
}

// FormContent checks an accepted form's values against its fields and
// encodes them as the elicitation's content. A field without a value
// takes its default; a required field with neither is an error, and so is
// a value for a field the form does not have. Fields without a value are
// left out.
func FormContent(fields []Field, values map[string]any) (json.RawMessage, error) {
	for name := range values {
		if !slices.ContainsFunc(fields, func(f Field) bool { return f.Name == name }) {
			return nil, fmt.Errorf("the form has no field %q", SanitizeLine(name))
		}
	}
	out := map[string]any{}
	for _, f := range fields {
		raw := values[f.Name]
		if s, ok := raw.(string); raw == nil || ok && strings.TrimSpace(s) == "" {
			raw = f.Default
		}
		v, err := f.Value(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", SanitizeLine(f.Name), err)
		}
		if v != nil {
			out[f.Name] = v
		}
	}
	return json.Marshal(out)
}

// URLDomain is the host a URL elicitation points at, shown apart from the
// URL so that a look-alike path cannot hide it. Only http and https URLs
// with a host are accepted.
func URLDomain(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("the URL's scheme %q is not http or https", SanitizeLine(u.Scheme))
	}
	if u.Hostname() == "" {
		return "", errors.New("the URL names no host")
	}
	return SanitizeLine(u.Hostname()), nil
}
