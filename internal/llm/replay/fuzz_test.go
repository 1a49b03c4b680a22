package replay

import (
	"bytes"
	"encoding/json"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"text": "hi", "tool_calls": [{"id": "c", "name": "t", "arguments": {"a": 1}}]}` + "\n# c\n" + `{"expect": {"tool_results": 1}}`))
	f.Add([]byte(`{"usage": {"input_tokens": -1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(s.Turns) == 0 {
			t.Fatal("a script without turns parsed")
		}
		for _, turn := range s.Turns {
			for _, c := range turn.ToolCalls {
				if c.ID == "" || c.Name == "" || !json.Valid(c.Arguments) || c.Arguments[0] != '{' {
					t.Fatalf("bad call %+v", c)
				}
			}
		}
	})
}
