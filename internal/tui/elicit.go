package tui

import (
	"encoding/json"
	"strconv"

	"charm.land/bubbles/v2/key"
	"charm.land/huh/v2"

	"github.com/astrid-runtime/astrid/internal/frontend"
)

// formField is one field of an elicitation form (frontend.ParseForm
// decodes and checks the schema) with the value the user is editing.
type formField struct {
	frontend.Field

	text  string   // the value of string, number and integer fields
	on    bool     // the value of boolean fields
	picks []string // the value of array fields: the chosen values
}

// parseSchema decodes a form's schema, each field starting at its default.
func parseSchema(raw json.RawMessage) ([]*formField, error) {
	fs, err := frontend.ParseForm(raw)
	if err != nil {
		return nil, err
	}
	fields := make([]*formField, len(fs))
	for i, f := range fs {
		ff := &formField{Field: f}
		switch d := f.Default.(type) {
		case string:
			ff.text = d
		case float64:
			ff.text = strconv.FormatFloat(d, 'f', -1, 64)
		case bool:
			ff.on = d
		case []string:
			ff.picks = append([]string(nil), d...)
		}
		fields[i] = ff
	}
	return fields, nil
}

// validate checks one field's text.
func (f *formField) validate(s string) error {
	_, err := f.Value(s)
	return err
}

// formContent encodes the filled fields as the elicitation's content
// (frontend.FormContent: empty fields take their default, or are left
// out).
func formContent(fields []*formField) (json.RawMessage, error) {
	fs := make([]frontend.Field, len(fields))
	values := map[string]any{}
	for i, f := range fields {
		fs[i] = f.Field
		switch f.Type {
		case "boolean":
			values[f.Name] = f.on
		case "array":
			values[f.Name] = f.picks
		default:
			values[f.Name] = f.text
		}
	}
	return frontend.FormContent(fs, values)
}

// newForm builds the huh form for fields; the values land in the fields.
// Esc aborts it (Ctrl+C stays the chat's own key).
func newForm(fields []*formField, width int) *huh.Form {
	var hf []huh.Field
	for _, f := range fields {
		switch {
		case f.Type == "boolean":
			hf = append(hf, huh.NewConfirm().Key(f.Name).Title(f.Title).Description(f.Description).Value(&f.on))
		case f.Type == "array":
			opts := choiceOptions(f.Choices, false)
			ms := huh.NewMultiSelect[string]().Key(f.Name).Title(f.Title).Description(f.Description).Value(&f.picks).Options(opts...).
				Validate(func(picks []string) error { _, err := f.Value(picks); return err })
			if f.MaxItems > 0 {
				ms = ms.Limit(f.MaxItems)
			}
			// NOTE: huh counts the title and description in the height and
			// otherwise cuts the list short by their lines.
			h := min(len(opts), 10) + 1
			if f.Description != "" {
				h++
			}
			ms = ms.Height(h)
			hf = append(hf, ms)
		case len(f.Choices) > 0:
			opts := choiceOptions(f.Choices, !f.Required)
			hf = append(hf, huh.NewSelect[string]().Key(f.Name).Title(f.Title).Description(f.Description).Options(opts...).Value(&f.text))
		default:
			in := huh.NewInput().Key(f.Name).Title(f.Title).Description(f.Description).Value(&f.text).Validate(f.validate)
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

// choiceOptions are the options of a choice field, after a "(none)" (the
// empty value) when none is true.
func choiceOptions(cs []frontend.Choice, none bool) []huh.Option[string] {
	opts := make([]huh.Option[string], 0, len(cs)+1)
	if none {
		opts = append(opts, huh.NewOption("(none)", ""))
	}
	for _, c := range cs {
		opts = append(opts, huh.NewOption(c.Label, c.Value))
	}
	return opts
}
