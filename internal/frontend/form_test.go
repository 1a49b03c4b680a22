package frontend

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// everythingForm is the form of server-everything's
// trigger-elicitation-request: every kind of field MCP 2025-11-25 allows.
const everythingForm = `{"type": "object", "properties": {
	"name": {"title": "String", "type": "string", "description": "Your full, legal name"},
	"check": {"title": "Boolean", "type": "boolean", "description": "Agree to the terms and conditions"},
	"firstLine": {"title": "String with default", "type": "string", "default": "It was a dark and stormy night."},
	"email": {"title": "String with email format", "type": "string", "format": "email"},
	"homepage": {"type": "string", "format": "uri", "title": "String with uri format"},
	"birthdate": {"title": "String with date format", "type": "string", "format": "date"},
	"integer": {"title": "Integer", "type": "integer", "minimum": 1, "maximum": 100, "default": 42},
	"number": {"title": "Number in range 1-1000", "type": "number", "minimum": 0, "maximum": 1000, "default": 3.14},
	"untitledSingleSelectEnum": {"type": "string", "title": "Untitled Single Select Enum",
		"enum": ["Monica", "Rachel", "Joey", "Chandler", "Ross", "Phoebe"], "default": "Monica"},
	"untitledMultipleSelectEnum": {"type": "array", "title": "Untitled Multiple Select Enum", "minItems": 1, "maxItems": 3,
		"items": {"type": "string", "enum": ["Guitar", "Piano", "Violin", "Drums", "Bass"]}, "default": ["Guitar"]},
	"titledSingleSelectEnum": {"type": "string", "title": "Titled Single Select Enum",
		"oneOf": [{"const": "hero-1", "title": "Superman"}, {"const": "hero-2", "title": "Green Lantern"}, {"const": "hero-3", "title": "Wonder Woman"}],
		"default": "hero-1"},
	"titledMultipleSelectEnum": {"type": "array", "title": "Titled Multiple Select Enum", "minItems": 1, "maxItems": 3,
		"items": {"anyOf": [{"const": "fish-1", "title": "Tuna"}, {"const": "fish-2", "title": "Salmon"}, {"const": "fish-3", "title": "Trout"}]},
		"default": ["fish-1"]},
	"legacyTitledEnum": {"type": "string", "title": "Legacy Titled Single Select Enum",
		"enum": ["pet-1", "pet-2", "pet-3", "pet-4", "pet-5"], "enumNames": ["Cats", "Dogs", "Birds", "Fish", "Reptiles"], "default": "pet-1"}
}, "required": ["name"]}`

func ptr(x float64) *float64 { return &x }

func TestParseFormEveryKind(t *testing.T) {
	fs, err := ParseForm(json.RawMessage(everythingForm))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Field{}
	var order []string
	for _, f := range fs {
		byName[f.Name] = f
		order = append(order, f.Name)
	}
	if want := []string{"name", "check", "firstLine", "email", "homepage", "birthdate", "integer", "number", "untitledSingleSelectEnum",
		"untitledMultipleSelectEnum", "titledSingleSelectEnum", "titledMultipleSelectEnum", "legacyTitledEnum"}; !cmp.Equal(order, want) {
		t.Errorf("order %v", order)
	}
	for name, want := range map[string]Field{
		"name":      {Name: "name", Type: "string", Title: "String", Description: "Your full, legal name", Required: true},
		"email":     {Name: "email", Type: "string", Title: "String with email format", Format: "email"},
		"integer":   {Name: "integer", Type: "integer", Title: "Integer", Minimum: ptr(1), Maximum: ptr(100), Default: float64(42)},
		"birthdate": {Name: "birthdate", Type: "string", Title: "String with date format", Format: "date"},
		"untitledMultipleSelectEnum": {Name: "untitledMultipleSelectEnum", Type: "array", Title: "Untitled Multiple Select Enum", MinItems: 1, MaxItems: 3,
			Choices: []Choice{{"Guitar", "Guitar"}, {"Piano", "Piano"}, {"Violin", "Violin"}, {"Drums", "Drums"}, {"Bass", "Bass"}}, Default: []string{"Guitar"}},
		"titledSingleSelectEnum": {Name: "titledSingleSelectEnum", Type: "string", Title: "Titled Single Select Enum",
			Choices: []Choice{{"hero-1", "Superman"}, {"hero-2", "Green Lantern"}, {"hero-3", "Wonder Woman"}}, Default: "hero-1"},
		"titledMultipleSelectEnum": {Name: "titledMultipleSelectEnum", Type: "array", Title: "Titled Multiple Select Enum", MinItems: 1, MaxItems: 3,
			Choices: []Choice{{"fish-1", "Tuna"}, {"fish-2", "Salmon"}, {"fish-3", "Trout"}}, Default: []string{"fish-1"}},
		"legacyTitledEnum": {Name: "legacyTitledEnum", Type: "string", Title: "Legacy Titled Single Select Enum",
			Choices: []Choice{{"pet-1", "Cats"}, {"pet-2", "Dogs"}, {"pet-3", "Birds"}, {"pet-4", "Fish"}, {"pet-5", "Reptiles"}}, Default: "pet-1"},
	} {
		if diff := cmp.Diff(want, byName[name]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}

	// Accepting with only the required field sends the defaults.
	got, err := FormContent(fs, map[string]any{"name": "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"firstLine":"It was a dark and stormy night.","integer":42,"legacyTitledEnum":"pet-1","name":"Ada","number":3.14,` +
		`"titledMultipleSelectEnum":["fish-1"],"titledSingleSelectEnum":"hero-1","untitledMultipleSelectEnum":["Guitar"],"untitledSingleSelectEnum":"Monica"}`
	if string(got) != want {
		t.Errorf("content %s\nwant    %s", got, want)
	}
	// Values as a terminal form types them.
	got, err = FormContent(fs, map[string]any{"name": "Ada", "check": "yes", "email": "ada@example.org", "homepage": "https://ada.example.org/",
		"birthdate": "1815-12-10", "integer": "7", "untitledMultipleSelectEnum": "Piano, Bass", "titledMultipleSelectEnum": []string{"fish-2", "fish-3"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"check":true`, `"email":"ada@example.org"`, `"birthdate":"1815-12-10"`, `"integer":7`,
		`"untitledMultipleSelectEnum":["Piano","Bass"]`, `"titledMultipleSelectEnum":["fish-2","fish-3"]`} {
		if !strings.Contains(string(got), w) {
			t.Errorf("content %s lacks %s", got, w)
		}
	}
}

// TestFormValuesOutOfBounds: what the schema does not allow is refused,
// naming what is wanted; nothing of it reaches the content.
func TestFormValuesOutOfBounds(t *testing.T) {
	fs, err := ParseForm(json.RawMessage(everythingForm))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field string
		value any
		want  string
	}{
		{"name", nil, "required"},
		{"email", "ada", "an email address"},
		{"email", "Ada <ada@example.org>", "an email address"},
		{"homepage", "example.org/no-scheme", "an absolute URI"},
		{"birthdate", "10/12/1815", "a date such as"},
		{"integer", "0", "a number from 1 to 100"},
		{"integer", 101.0, "a number from 1 to 100"},
		{"integer", "4.5", "a whole number"},
		{"number", "-1", "a number from 0 to 1000"},
		{"untitledSingleSelectEnum", "Gunther", "not one of the choices"},
		{"titledSingleSelectEnum", "Superman", "not one of the choices"}, // the label is not the value
		{"untitledMultipleSelectEnum", []string{"Guitar", "Kazoo"}, `"Kazoo" is not one of the choices`},
		{"untitledMultipleSelectEnum", "Guitar, Piano, Violin, Drums", "choose at most 3"},
		{"untitledMultipleSelectEnum", []string{"Piano", "Piano"}, "chosen twice"},
		{"titledMultipleSelectEnum", []any{"fish-1", 2.0}, "choices, please"},
		{"check", "maybe", "yes or no"},
	} {
		values := map[string]any{"name": "Ada", tc.field: tc.value}
		if _, err := FormContent(fs, values); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), tc.field+": ") {
			t.Errorf("%s = %#v: error %v, want %q", tc.field, tc.value, err, tc.want)
		}
	}
	if _, err := FormContent(fs, map[string]any{"name": "Ada", "extra": "x"}); err == nil || !strings.Contains(err.Error(), `no field "extra"`) {
		t.Errorf("unknown field: %v", err)
	}
	// Length bounds count characters, not bytes.
	f := Field{Name: "code", Type: "string", MinLength: 2, MaxLength: 3}
	for v, ok := range map[string]bool{"é": false, "éé": true, "ééé": true, "éééé": false} {
		if _, err := f.Value(v); (err == nil) != ok {
			t.Errorf("%q: %v", v, err)
		}
	}
	// A required multi-select with nothing chosen is missing, not empty.
	m := Field{Name: "m", Type: "array", Required: true, Choices: []Choice{{"a", "a"}}}
	if _, err := m.Value([]string{}); err == nil || err.Error() != "required" {
		t.Errorf("empty required choice: %v", err)
	}
}

// TestParseFormRefuses: schemas a form cannot render faithfully are
// refused as a whole, with the field named.
func TestParseFormRefuses(t *testing.T) {
	for schema, want := range map[string]string{
		`{"properties": {"o": {"type": "object"}}}`:                                                             `field "o" is of type "object"`,
		`{"properties": {"a": {"type": "array", "items": {"type": "number"}}}}`:                                 `field "a" is an array that is not a choice among strings`,
		`{"properties": {"a": {"type": "array"}}}`:                                                              `field "a" is an array without items`,
		`{"properties": {"s": {"type": "string", "enum": ["a", "b"], "enumNames": ["A"]}}}`:                     `field "s" has 1 enumNames for 2 choices`,
		`{"properties": {"s": {"type": "string", "enum": ["a", "a"]}}}`:                                         `field "s" offers the choice "a" twice`,
		`{"properties": {"s": {"type": "string", "oneOf": [{"title": "no const"}]}}}`:                           `field "s" has a choice without a string const`,
		`{"properties": {"s": {"type": "string", "oneOf": [{"const": "a", "title": "A"}], "enum": ["a"]}}}`:     `field "s" has both enum and oneOf`,
		`{"properties": {"s": {"type": "string", "maxLength": -1}}}`:                                            `field "s" has a maxLength that is not a whole number from 0`,
		`{"properties": {"a": {"type": "array", "minItems": 1.5, "items": {"type": "string", "enum": ["x"]}}}}`: `field "a" has a minItems that is not a whole number from 0`,
		`{"properties": {"s": {"type": "string", "enum": [1, 2]}}}`:                                             `field "s" has a choice that is not a string`,
	} {
		if _, err := ParseForm(json.RawMessage(schema)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", schema, err, want)
		}
	}
	// Labels are sanitized: a title cannot paint on the terminal.
	fs, err := ParseForm(json.RawMessage(`{"properties": {"s": {"type": "string", "oneOf": [{"const": "v", "title": "ok\u001b[2J\u001b]52;c;cHdu\u0007"}]}}}`))
	if err != nil || fs[0].Choices[0].Label != "ok" || fs[0].Choices[0].Value != "v" {
		t.Errorf("label %+v %v", fs, err)
	}
	// A default that does not fit the field is dropped.
	fs, err = ParseForm(json.RawMessage(`{"properties": {"n": {"type": "integer", "maximum": 5, "default": 9}, "a": {"type": "array", "items": {"enum": ["x"], "type": "string"}, "default": ["y"]}}}`))
	if err != nil || fs[0].Default != nil || fs[1].Default != nil {
		t.Errorf("defaults %+v %v", fs, err)
	}
}
