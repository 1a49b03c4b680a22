package openai

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/astrid-runtime/astrid/internal/llm"
)

// FuzzDecoder feeds arbitrary chunk sequences (one JSON chunk per line) to
// the decoder: it must never panic, and a tool call it ends must carry a
// valid JSON object.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"n","arguments":"{\"a\""}}]}}]}
{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}
{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}
{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":9}}}`))
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"reasoning_content":"r","content":"x"}}]}
{"choices":[{"index":0,"delta":{"reasoning_content":5}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &decoder{name: "openai"}
		yield := func(ev llm.Event, err error) bool {
			if ev.Kind == llm.EventToolCallEnd && (!json.Valid(ev.ToolCall.Arguments) || ev.ToolCall.Arguments[0] != '{') {
				t.Fatalf("tool call ended with arguments %q", ev.ToolCall.Arguments)
			}
			return true
		}
		for line := range bytes.Lines(data) {
			var c wireChunk
			if json.Unmarshal(line, &c) != nil {
				continue
			}
			if d.chunk(&c, yield) != nil {
				return
			}
			if d.usage != nil && d.usage.InputTokens < 0 {
				t.Fatalf("negative input tokens %+v", d.usage)
			}
		}
	})
}
