package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
)

// MaxToolArguments bounds the JSON arguments of one tool call (a write_file
// of a large file is the biggest legitimate case).
const MaxToolArguments = 8 << 20

// CheckArguments validates the complete arguments of a tool call before
// they are delivered in an EventToolCallEnd: empty arguments become {} (a
// call without parameters), anything else must be one JSON object of at
// most MaxToolArguments bytes.
func CheckArguments(provider string, call ToolCall) (json.RawMessage, error) {
	args := bytes.TrimSpace(call.Arguments)
	if len(args) == 0 {
		return json.RawMessage("{}"), nil
	}
	if len(args) > MaxToolArguments {
		return nil, ProtocolError(provider, "tool call %s (%s): arguments exceed %d bytes", call.ID, call.Name, MaxToolArguments)
	}
	if args[0] != '{' || !json.Valid(args) {
		return nil, ProtocolError(provider, "tool call %s (%s): arguments are not a valid JSON object: %s", call.ID, call.Name, shorten(string(args)))
	}
	return json.RawMessage(args), nil
}

// Response is a whole model turn, assembled from its events by Collect.
type Response struct {
	Text       string
	Reasoning  []Part // PartReasoning, with signatures
	ToolCalls  []ToolCall
	Usage      Usage
	StopReason StopReason
}

// Message is the response as the assistant message to append to the
// conversation: reasoning first, then text, then tool calls.
func (r *Response) Message() Message {
	m := Message{Role: RoleAssistant}
	m.Parts = append(m.Parts, r.Reasoning...)
	if r.Text != "" {
		m.Parts = append(m.Parts, Part{Kind: PartText, Text: r.Text})
	}
	for i := range r.ToolCalls {
		m.Parts = append(m.Parts, Part{Kind: PartToolCall, ToolCall: &r.ToolCalls[i]})
	}
	return m
}

// Collect ranges over a stream and assembles the response. It returns the
// stream's error, with what was assembled so far, or an error if the stream
// ended without EventStop.
func Collect(seq iter.Seq2[Event, error]) (*Response, error) {
	r := &Response{}
	var text, reasoning strings.Builder
	stopped := false
	for ev, err := range seq {
		if err != nil {
			r.Text = text.String()
			return r, err
		}
		switch ev.Kind {
		case EventText:
			text.WriteString(ev.Text)
		case EventReasoning:
			reasoning.WriteString(ev.Text)
		case EventReasoningEnd:
			r.Reasoning = append(r.Reasoning, Part{Kind: PartReasoning, Text: reasoning.String(), Signature: ev.Signature, Redacted: ev.Redacted})
			reasoning.Reset()
		case EventToolCallEnd:
			r.ToolCalls = append(r.ToolCalls, ev.ToolCall)
		case EventUsage:
			r.Usage = ev.Usage
		case EventStop:
			r.StopReason = ev.StopReason
			stopped = true
		}
	}
	r.Text = text.String()
	if reasoning.Len() > 0 {
		r.Reasoning = append(r.Reasoning, Part{Kind: PartReasoning, Text: reasoning.String()})
	}
	if !stopped {
		return r, fmt.Errorf("llm: stream ended without a stop event")
	}
	return r, nil
}
