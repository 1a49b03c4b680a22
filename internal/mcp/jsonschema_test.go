package mcp

import (
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/mod/modfile"
)

// TestJSONSchemaForkInUse: astridd links jsonschema/v6 through mcp-go
// only, from the copy in third_party/jsonschema that compiles the drafts'
// metaschemas on first use rather than at start-up (ASTRID.md there). The
// replace must stay in go.mod, and the copy must still validate: the
// lazily compiled metaschema refuses an invalid schema, and a compiled
// schema refuses an invalid instance.
func TestJSONSchemaForkInUse(t *testing.T) {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	replaced := false
	for _, r := range mf.Replace {
		if r.Old.Path == "github.com/santhosh-tekuri/jsonschema/v6" && r.New.Path == "./third_party/jsonschema" && r.Old.Version == "" {
			replaced = true
		}
	}
	if !replaced {
		t.Error("go.mod does not replace jsonschema/v6 (every version) by ./third_party/jsonschema")
	}

	c := jsonschema.NewCompiler()
	if err := c.AddResource("bad.json", map[string]any{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": 12}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile("bad.json"); err == nil {
		t.Error("a schema whose type is 12 compiled: the metaschemas were not applied")
	}
	if err := c.AddResource("good.json", map[string]any{"type": "object", "required": []any{"a"}}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("good.json")
	if err != nil {
		t.Fatal(err)
	}
	if s.Validate(map[string]any{}) == nil || s.Validate(map[string]any{"a": 1}) != nil {
		t.Error("the compiled schema does not validate")
	}
}
