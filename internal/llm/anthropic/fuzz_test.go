package anthropic

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/astrid-runtime/astrid/internal/llm"
)

// FuzzDecoder feeds arbitrary event sequences (one JSON event per line) to
// the decoder: it must never panic, and a tool call it ends must carry a
// valid JSON object.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"n"}}
{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}
{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"1}"}}
{"type":"content_block_stop","index":0}
{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":3}}
{"type":"message_stop"}`))
	f.Add([]byte(`{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}
{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"x"}}
{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"s"}}
{"type":"content_block_stop","index":0}
{"type":"message_stop"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &decoder{name: "anthropic", blocks: map[int64]*block{}}
		yield := func(ev llm.Event, err error) bool {
			if ev.Kind == llm.EventToolCallEnd && (!json.Valid(ev.ToolCall.Arguments) || ev.ToolCall.Arguments[0] != '{') {
				t.Fatalf("tool call ended with arguments %q", ev.ToolCall.Arguments)
			}
			return true
		}
		for line := range bytes.Lines(data) {
			var ev wireEvent
			if json.Unmarshal(line, &ev) != nil {
				continue
			}
			if d.event(&ev, yield) != nil || d.stopped {
				return
			}
		}
	})
}
