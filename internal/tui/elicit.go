package tui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/huh/v2"

	"github.com/astrid-runtime/astrid/internal/lineui"
)

// Limits on an elicitation schema, which comes from an MCP server and is
// untrusted.
const (
	maxSchemaBytes = 64 << 10
	maxFormFields  = 32
	maxEnumValues  = 100
)

// formField is one field of an elicitation form, decoded from the flat
// JSON schema MCP allows: string (optionally an enum), number, integer,
// boolean.
type formField struct {
	name        string
	kind        string // string, number, integer, boolean
	title       string
	description string
	enum        []string
	required    bool

	text string // the value of string, number and integer fields
	on   bool   // the value of boolean fields
}

// parseSchema decodes a form's schema, keeping the properties in the order
// the server wrote them. It refuses what it cannot render faithfully.
func parseSchema(raw json.RawMessage) ([]*formField, error) {
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
		return nil, fmt.Errorf("the form's schema is of type %q, not object", s.Type)
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
		EnumNames   []string          `json:"enumNames"`
		Default     json.RawMessage   `json:"default"`
	}
	if len(s.Properties) > 0 {
		if err := json.Unmarshal(s.Properties, &props); err != nil {
			return nil, fmt.Errorf("the form's properties: %w", err)
		}
	}
	req := map[string]bool{}
	for _, r := range s.Required {
		req[r] = true
	}
	var fields []*formField
	for _, name := range names {
		p := props[name]
		f := &formField{name: name, kind: p.Type, title: lineui.SanitizeLine(p.Title), description: lineui.SanitizeLine(p.Description), required: req[name]}
		if f.title == "" {
			f.title = lineui.SanitizeLine(name)
		}
		switch p.Type {
		case "string":
			if len(p.Enum) > maxEnumValues {
				return nil, fmt.Errorf("field %q has more than %d choices", name, maxEnumValues)
			}
			for _, e := range p.Enum {
				var v string
				if json.Unmarshal(e, &v) != nil {
					return nil, fmt.Errorf("field %q has a choice that is not a string", name)
				}
				f.enum = append(f.enum, v)
			}
			_ = json.Unmarshal(p.Default, &f.text)
		case "number", "integer":
			var d float64
			if json.Unmarshal(p.Default, &d) == nil {
				f.text = strconv.FormatFloat(d, 'f', -1, 64)
			}
		case "boolean":
			_ = json.Unmarshal(p.Default, &f.on)
		default:
			return nil, fmt.Errorf("field %q is of type %q, which a form cannot ask for", name, p.Type)
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
			return nil, fmt.Errorf("the form's properties name %q twice", k)
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

// validate checks one field's text.
func (f *formField) validate(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		if f.required {
			return errors.New("required")
		}
		return nil
	}
	switch f.kind {
	case "number":
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return errors.New("a number, please")
		}
	case "integer":
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return errors.New("a whole number, please")
		}
	}
	return nil
}

// formContent encodes the filled fields as the elicitation's content.
// Empty optional fields are left out.
func formContent(fields []*formField) (json.RawMessage, error) {
	out := map[string]any{}
	for _, f := range fields {
		if err := f.validate(f.text); err != nil && f.kind != "boolean" {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		s := strings.TrimSpace(f.text)
		switch f.kind {
		case "boolean":
			out[f.name] = f.on
		case "number":
			if s != "" {
				v, _ := strconv.ParseFloat(s, 64)
				out[f.name] = v
			}
		case "integer":
			if s != "" {
				v, _ := strconv.ParseInt(s, 10, 64)
				out[f.name] = v
			}
		default:
			if s != "" || f.required {
				out[f.name] = f.text
			}
		}
	}
	b, err := json.Marshal(out)
	return b, err
}

// newForm builds the huh form for fields; the values land in the fields.
// Esc aborts it (Ctrl+C stays the chat's own key).
func newForm(fields []*formField, width int) *huh.Form {
	var hf []huh.Field
	for _, f := range fields {
		switch {
		case f.kind == "boolean":
			hf = append(hf, huh.NewConfirm().Key(f.name).Title(f.title).Description(f.description).Value(&f.on))
		case len(f.enum) > 0:
			opts := make([]huh.Option[string], 0, len(f.enum)+1)
			if !f.required {
				opts = append(opts, huh.NewOption("(none)", ""))
			}
			for _, e := range f.enum {
				opts = append(opts, huh.NewOption(lineui.SanitizeLine(e), e))
			}
			hf = append(hf, huh.NewSelect[string]().Key(f.name).Title(f.title).Description(f.description).Options(opts...).Value(&f.text))
		default:
			in := huh.NewInput().Key(f.name).Title(f.title).Description(f.description).Value(&f.text).Validate(f.validate)
			hf = append(hf, in)
		}
	}
	km := huh.NewDefaultKeyMap()
	km.Quit = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))
	form := huh.NewForm(huh.NewGroup(hf...)).WithKeyMap(km).WithShowHelp(true)
	if width > 0 {
		form = form.WithWidth(width)
	}
	return form
}

// urlDomain is the host a URL elicitation points at, shown apart from the
// URL so that a look-alike path cannot hide it.
func urlDomain(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("the URL's scheme %q is not http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return "", errors.New("the URL names no host")
	}
	return lineui.SanitizeLine(u.Hostname()), nil
}
