package frontend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on an elicitation schema, which comes from an MCP server and is
// untrusted.
const (
	maxSchemaBytes = 64 << 10
	maxFormFields  = 32
	maxEnumValues  = 100
)

// Field is one field of a form, decoded from the restricted JSON schema of
// MCP elicitation (2025-11-25): a string (free text, perhaps of a Format,
// or a choice among Choices), a number or integer, a boolean, or an array:
// a choice of several among Choices.
type Field struct {
	Name        string // the key of the value; the server's own
	Type        string // string, number, integer, boolean or array
	Title       string // sanitized; the name when the schema has none
	Description string // sanitized
	// Choices are the values a string field allows (one of them) or an
	// array field's (several of them); none for free text.
	Choices  []Choice
	Required bool
	// Format is a string field's format: email, uri, date (2006-01-02)
	// or date-time (RFC 3339); values are checked against it.
	Format string
	// MinLength and MaxLength bound a string's length in characters;
	// MaxLength 0 is no bound.
	MinLength, MaxLength int
	// Minimum and Maximum bound a number or integer, when set.
	Minimum, Maximum *float64
	// MinItems and MaxItems bound how many choices an array field takes;
	// MaxItems 0 is no bound.
	MinItems, MaxItems int
	// Default is the schema's default: a string, float64 (number and
	// integer), bool or []string (array); nil when it has none (or one
	// that does not fit the field).
	Default any
}

// Choice is one of the values a string or array field allows.
type Choice struct {
	Value string // sent back as it is
	Label string // the server's title for it, or Value; sanitized, to show
}

// The string formats a form may ask for.
var formats = []string{"email", "uri", "date", "date-time"}

// schemaProp is one property of an elicitation schema, as sent.
type schemaProp struct {
	Type        string            `json:"type"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	Enum        []json.RawMessage `json:"enum"`
	EnumNames   []json.RawMessage `json:"enumNames"` // legacy titles of Enum
	OneOf       []json.RawMessage `json:"oneOf"`     // titled choices: {const, title}
	Format      string            `json:"format"`
	MinLength   *float64          `json:"minLength"`
	MaxLength   *float64          `json:"maxLength"`
	Minimum     *float64          `json:"minimum"`
	Maximum     *float64          `json:"maximum"`
	MinItems    *float64          `json:"minItems"`
	MaxItems    *float64          `json:"maxItems"`
	Items       *struct {
		Type  string            `json:"type"`
		Enum  []json.RawMessage `json:"enum"`
		AnyOf []json.RawMessage `json:"anyOf"` // titled choices: {const, title}
	} `json:"items"`
	Default json.RawMessage `json:"default"`
}

// ParseForm decodes a form's schema, keeping the properties in the order
// the server wrote them. It refuses what it cannot render faithfully: a
// property of another type, nested schemas, choices that are not strings,
// titles that do not match their choices, bounds that are not whole
// non-negative numbers.
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
	var props map[string]schemaProp
	if len(s.Properties) > 0 {
		if err := json.Unmarshal(s.Properties, &props); err != nil {
			return nil, fmt.Errorf("the form's properties: %w", err)
		}
	}
	var fields []Field
	for _, name := range names {
		f, err := parseField(name, props[name], slices.Contains(s.Required, name))
		if err != nil {
			return nil, fmt.Errorf("field %q %w", SanitizeLine(name), err)
		}
		fields = append(fields, f)
	}
	return fields, nil
}

// parseField decodes one property; its errors follow the field's name.
func parseField(name string, p schemaProp, required bool) (Field, error) {
	f := Field{Name: name, Type: p.Type, Title: SanitizeLine(p.Title), Description: SanitizeLine(p.Description), Required: required}
	if f.Title == "" {
		f.Title = SanitizeLine(name)
	}
	var err error
	switch p.Type {
	case "string":
		if f.Choices, err = choices(p.OneOf, p.Enum, p.EnumNames, "has both enum and oneOf"); err != nil {
			return f, err
		}
		if p.Format != "" && slices.Contains(formats, p.Format) {
			f.Format = p.Format
		}
		if f.MinLength, err = count(p.MinLength, "minLength"); err != nil {
			return f, err
		}
		if f.MaxLength, err = count(p.MaxLength, "maxLength"); err != nil {
			return f, err
		}
	case "number", "integer":
		for _, b := range []*float64{p.Minimum, p.Maximum} {
			if b != nil && (math.IsInf(*b, 0) || math.IsNaN(*b)) {
				return f, errors.New("has a bound that is not a number")
			}
		}
		f.Minimum, f.Maximum = p.Minimum, p.Maximum
	case "boolean":
	case "array":
		if p.Items == nil {
			return f, errors.New("is an array without items")
		}
		if f.Choices, err = choices(p.Items.AnyOf, p.Items.Enum, nil, "has both enum and anyOf items"); err != nil {
			return f, err
		}
		if len(f.Choices) == 0 || len(p.Items.Enum) > 0 && p.Items.Type != "string" {
			return f, errors.New("is an array that is not a choice among strings")
		}
		if f.MinItems, err = count(p.MinItems, "minItems"); err != nil {
			return f, err
		}
		if f.MaxItems, err = count(p.MaxItems, "maxItems"); err != nil {
			return f, err
		}
	default:
		return f, fmt.Errorf("is of type %q, which a form cannot ask for", SanitizeLine(p.Type))
	}
	if len(p.Default) > 0 {
		var d any
		if json.Unmarshal(p.Default, &d) == nil {
			if v, err := f.Value(d); err == nil && v != nil {
				if p.Type == "integer" {
					v = float64(v.(int64))
				}
				f.Default = v
			}
		}
	}
	return f, nil
}

// count decodes a bound that must be a whole number from 0.
func count(v *float64, what string) (int, error) {
	switch {
	case v == nil:
		return 0, nil
	case *v < 0 || *v != math.Trunc(*v) || *v > 1<<31:
		return 0, fmt.Errorf("has a %s that is not a whole number from 0", what)
	}
	return int(*v), nil
}

// choices decodes a field's choices: titled ({"const", "title"}, oneOf or
// items.anyOf) or untitled (enum, with the legacy enumNames as titles);
// both at once is the error both. No choices is free input.
func choices(titled, enum, names []json.RawMessage, both string) ([]Choice, error) {
	switch {
	case len(titled) > 0 && len(enum) > 0:
		return nil, errors.New(both)
	case len(titled) > 0:
		return titledChoices(titled)
	case len(enum) > 0:
		return untitledChoices(enum, names)
	}
	return nil, nil
}

// untitledChoices decodes enum, with the legacy enumNames as titles.
func untitledChoices(enum, names []json.RawMessage) ([]Choice, error) {
	if len(enum) > maxEnumValues {
		return nil, fmt.Errorf("has more than %d choices", maxEnumValues)
	}
	if len(names) > 0 && len(names) != len(enum) {
		return nil, fmt.Errorf("has %d enumNames for %d choices", len(names), len(enum))
	}
	out := make([]Choice, 0, len(enum))
	for i, e := range enum {
		var c Choice
		if json.Unmarshal(e, &c.Value) != nil {
			return nil, errors.New("has a choice that is not a string")
		}
		c.Label = c.Value
		if len(names) > 0 && json.Unmarshal(names[i], &c.Label) != nil {
			return nil, errors.New("has an enumName that is not a string")
		}
		out = append(out, c)
	}
	return distinct(out)
}

// titledChoices decodes oneOf or anyOf: {"const": value, "title": label}.
func titledChoices(opts []json.RawMessage) ([]Choice, error) {
	if len(opts) > maxEnumValues {
		return nil, fmt.Errorf("has more than %d choices", maxEnumValues)
	}
	out := make([]Choice, 0, len(opts))
	for _, o := range opts {
		var t struct {
			Const *string `json:"const"`
			Title string  `json:"title"`
		}
		if json.Unmarshal(o, &t) != nil || t.Const == nil {
			return nil, errors.New("has a choice without a string const")
		}
		c := Choice{Value: *t.Const, Label: t.Title}
		if c.Label == "" {
			c.Label = c.Value
		}
		out = append(out, c)
	}
	return distinct(out)
}

// distinct sanitizes the labels and refuses a value offered twice.
func distinct(cs []Choice) ([]Choice, error) {
	seen := map[string]bool{}
	for i := range cs {
		if seen[cs[i].Value] {
			return nil, fmt.Errorf("offers the choice %q twice", SanitizeLine(cs[i].Value))
		}
		seen[cs[i].Value] = true
		cs[i].Label = SanitizeLine(cs[i].Label)
	}
	return cs, nil
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
// holds it: a string, float64 (number), int64 (integer), bool or []string
// (array). v may be a string of any field type, as typed (an array's
// choices separated by commas), or a value of the field's own type. A nil
// value, a blank string or an empty choice is no value: Value returns nil,
// or the error "required".
func (f Field) Value(v any) (any, error) {
	if s, ok := v.(string); ok {
		switch {
		case strings.TrimSpace(s) == "":
			v = nil
		case f.Type == "array":
			v = splitChoices(s)
		case f.Type != "string":
			return f.parse(strings.TrimSpace(s))
		}
	}
	switch a := v.(type) {
	case []string:
		if len(a) == 0 {
			v = nil
		}
	case []any:
		if len(a) == 0 {
			v = nil
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
		return f.text(s)
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
	case "array":
		return f.picks(v)
	}
	return nil, fmt.Errorf("a field of type %q", SanitizeLine(f.Type))
}

// text checks a string field's value: a choice, or text within the
// length bounds and of the format.
func (f Field) text(s string) (any, error) {
	if len(f.Choices) > 0 {
		if !slices.ContainsFunc(f.Choices, func(c Choice) bool { return c.Value == s }) {
			return nil, errors.New("not one of the choices")
		}
		return s, nil
	}
	n := utf8.RuneCountInString(s)
	switch {
	case n < f.MinLength:
		return nil, fmt.Errorf("at least %d characters, please", f.MinLength)
	case f.MaxLength > 0 && n > f.MaxLength:
		return nil, fmt.Errorf("at most %d characters, please", f.MaxLength)
	}
	switch f.Format {
	case "email":
		if a, err := mail.ParseAddress(s); err != nil || a.Address != s || a.Name != "" {
			return nil, errors.New("an email address, please")
		}
	case "uri":
		if u, err := url.Parse(s); err != nil || u.Scheme == "" || strings.ContainsAny(s, " \t\n") {
			return nil, errors.New("an absolute URI (such as https://example.com/), please")
		}
	case "date":
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return nil, errors.New("a date such as 2026-12-31, please")
		}
	case "date-time":
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return nil, errors.New("a date and time such as 2026-12-31T18:00:00Z, please")
		}
	}
	return s, nil
}

// picks checks an array field's choices: []string, or []any of strings.
func (f Field) picks(v any) (any, error) {
	var got []string
	switch a := v.(type) {
	case []string:
		got = a
	case []any:
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, errors.New("choices, please")
			}
			got = append(got, s)
		}
	default:
		return nil, errors.New("choices, please")
	}
	out := make([]string, 0, len(got))
	for _, s := range got {
		switch {
		case !slices.ContainsFunc(f.Choices, func(c Choice) bool { return c.Value == s }):
			return nil, fmt.Errorf("%q is not one of the choices", SanitizeLine(s))
		case slices.Contains(out, s):
			return nil, fmt.Errorf("%q is chosen twice", SanitizeLine(s))
		}
		out = append(out, s)
	}
	switch {
	case len(out) < f.MinItems:
		return nil, fmt.Errorf("choose at least %d", f.MinItems)
	case f.MaxItems > 0 && len(out) > f.MaxItems:
		return nil, fmt.Errorf("choose at most %d", f.MaxItems)
	}
	return out, nil
}

// splitChoices reads an array field's choices as typed: separated by
// commas.
func splitChoices(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parse reads a number, integer or boolean field's text.
func (f Field) parse(s string) (any, error) {
	switch f.Type {
	case "boolean":
		switch strings.ToLower(s) {
		case "yes", "y", "true", "t", "1":
			return true, nil
		case "no", "n", "false", "f", "0":
			return false, nil
		}
		return nil, errors.New("yes or no, please")
	case "integer":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, errors.New("a whole number, please")
		}
		return f.number(float64(n))
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
		if err := f.bounds(x); err != nil {
			return nil, err
		}
		return int64(x), nil
	}
	if err := f.bounds(x); err != nil {
		return nil, err
	}
	return x, nil
}

// bounds checks a number against Minimum and Maximum.
func (f Field) bounds(x float64) error {
	fmtN := func(b float64) string { return strconv.FormatFloat(b, 'f', -1, 64) }
	switch {
	case f.Minimum != nil && f.Maximum != nil && (x < *f.Minimum || x > *f.Maximum):
		return fmt.Errorf("a number from %s to %s, please", fmtN(*f.Minimum), fmtN(*f.Maximum))
	case f.Minimum != nil && x < *f.Minimum:
		return fmt.Errorf("a number from %s, please", fmtN(*f.Minimum))
	case f.Maximum != nil && x > *f.Maximum:
		return fmt.Errorf("a number up to %s, please", fmtN(*f.Maximum))
	}
	return nil
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
