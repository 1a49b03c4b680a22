package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/astrid-runtime/astrid/internal/llm"
)

// block is an open content block of the streamed message.
type block struct {
	typ       string // "text", "thinking", "redacted_thinking", "tool_use", or "" for ignored types
	tool      int    // the tool call's Index
	call      llm.ToolCall
	args      []byte
	initial   []byte // arguments sent whole in content_block_start
	signature string
	redacted  string
}

// decoder turns the Messages API's events into llm events. It checks the
// order of events as it goes: a delta for a block that was never started,
// a delta of the wrong type, or a message that stops with a block still
// open are protocol errors.
type decoder struct {
	name    string
	blocks  map[int64]*block
	tools   int
	usage   llm.Usage
	stop    llm.StopReason
	stopped bool
}

// wireEvent is every event of the Messages API stream; Type says which
// fields are set. It is decoded with encoding/json, not the SDK's union
// types (see llm.SSEReader).
type wireEvent struct {
	Type    string `json:"type"`
	Index   int64  `json:"index"`
	Message struct {
		Usage wireUsage `json:"usage"`
	} `json:"message"`
	ContentBlock struct {
		Type      string          `json:"type"`
		ID        string          `json:"id"`
		Name      string          `json:"name"`
		Text      string          `json:"text"`
		Thinking  string          `json:"thinking"`
		Signature string          `json:"signature"`
		Data      string          `json:"data"`
		Input     json.RawMessage `json:"input"`
	} `json:"content_block"`
	Delta struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		Thinking    string `json:"thinking"`
		Signature   string `json:"signature"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage wireUsage `json:"usage"`
}

// wireUsage holds token counts; a nil field was absent.
type wireUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
}

// attempt sends one request and streams its events. The SDK sends the
// request (headers, body, errors through llm.ResponseCheck); the response
// body is read here, event by event.
func (p *Provider) attempt(ctx context.Context, params *sdk.MessageNewParams) iter.Seq2[llm.Event, error] {
	return func(yield func(llm.Event, error) bool) {
		var resp *http.Response
		stream := p.msgs.NewStreaming(ctx, *params, option.WithResponseInto(&resp))
		defer stream.Close()
		if err := stream.Err(); err != nil {
			yield(llm.Event{}, p.mapError(ctx, err))
			return
		}
		body, err := p.cfg.StreamBody(resp)
		if err != nil {
			yield(llm.Event{}, err)
			return
		}
		defer body.Close()
		d := &decoder{name: p.cfg.Name, blocks: map[int64]*block{}}
		sse := llm.NewSSEReader(body, 0)
		var ev wireEvent
		for {
			name, data, err := sse.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				yield(llm.Event{}, p.mapError(ctx, err))
				return
			}
			switch name {
			case "ping":
				continue
			case "error":
				yield(llm.Event{}, llm.StreamError(p.cfg.Name, data))
				return
			}
			ev = wireEvent{}
			if err := json.Unmarshal(data, &ev); err != nil {
				yield(llm.Event{}, llm.ProtocolError(p.cfg.Name, "malformed event stream: %s event: %v", name, err))
				return
			}
			if err := d.event(&ev, yield); err != nil {
				if !errors.Is(err, errStopped) {
					yield(llm.Event{}, err)
				}
				return
			}
			if d.stopped {
				d.usage.Cost = p.cfg.Pricing.Cost(d.usage)
				if yield(llm.Event{Kind: llm.EventUsage, Usage: d.usage}, nil) {
					yield(llm.Event{Kind: llm.EventStop, StopReason: d.stop}, nil)
				}
				return
			}
		}
		if ctx.Err() != nil {
			yield(llm.Event{}, llm.ErrorFromGo(ctx, p.cfg.Name, ctx.Err()))
			return
		}
		yield(llm.Event{}, d.truncated())
	}
}

// errStopped reports that the consumer stopped ranging.
var errStopped = errors.New("consumer stopped")

// mapError maps an error of the request or of reading the body.
func (p *Provider) mapError(ctx context.Context, err error) error {
	return llm.FromStream(ctx, p.cfg.Name, err)
}

// truncated is the error for a stream that ended without message_stop.
func (d *decoder) truncated() *llm.Error {
	for _, b := range d.blocks {
		if b.typ == "tool_use" {
			e := llm.ProtocolError(d.name, "stream ended in the middle of tool call %s (%s)", b.call.ID, b.call.Name)
			e.Retryable = true
			return e
		}
	}
	e := llm.ProtocolError(d.name, "stream ended before message_stop")
	e.Retryable = true
	return e
}

func (d *decoder) emit(yield func(llm.Event, error) bool, ev llm.Event) error {
	if !yield(ev, nil) {
		return errStopped
	}
	return nil
}

// event handles one server-sent event.
func (d *decoder) event(ev *wireEvent, yield func(llm.Event, error) bool) error {
	switch ev.Type {
	case "message_start":
		d.addUsage(&ev.Message.Usage)
	case "content_block_start":
		if _, dup := d.blocks[ev.Index]; dup {
			return llm.ProtocolError(d.name, "content block %d started twice", ev.Index)
		}
		cb := &ev.ContentBlock
		b := &block{typ: cb.Type}
		d.blocks[ev.Index] = b
		switch cb.Type {
		case "text":
			if cb.Text != "" {
				return d.emit(yield, llm.Event{Kind: llm.EventText, Text: cb.Text})
			}
		case "thinking":
			b.signature = cb.Signature
			if cb.Thinking != "" {
				return d.emit(yield, llm.Event{Kind: llm.EventReasoning, Text: cb.Thinking})
			}
		case "redacted_thinking":
			b.redacted = cb.Data
		case "tool_use":
			if cb.ID == "" || cb.Name == "" {
				return llm.ProtocolError(d.name, "tool_use block %d without id or name", ev.Index)
			}
			b.tool = d.tools
			d.tools++
			b.call = llm.ToolCall{ID: cb.ID, Name: cb.Name}
			// The API sends "input": {} here and streams the arguments; a
			// proxy may send them whole instead.
			if in := bytes.TrimSpace(cb.Input); len(in) > 0 && !bytes.Equal(in, []byte("{}")) && !bytes.Equal(in, []byte("null")) {
				b.initial = append([]byte(nil), in...)
			}
			return d.emit(yield, llm.Event{Kind: llm.EventToolCallStart, Index: b.tool, ToolCall: b.call})
		default:
			b.typ = "" // a server tool or other block this runtime does not use
		}
	case "content_block_delta":
		b, ok := d.blocks[ev.Index]
		if !ok {
			return llm.ProtocolError(d.name, "delta for content block %d, which was not started", ev.Index)
		}
		delta := &ev.Delta
		want := map[string]string{"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "thinking", "input_json_delta": "tool_use"}[delta.Type]
		if want == "" || b.typ == "" {
			return nil // citations and deltas of ignored blocks
		}
		if want != b.typ {
			return llm.ProtocolError(d.name, "%s in a %s block", delta.Type, b.typ)
		}
		switch delta.Type {
		case "text_delta":
			return d.emit(yield, llm.Event{Kind: llm.EventText, Text: delta.Text})
		case "thinking_delta":
			return d.emit(yield, llm.Event{Kind: llm.EventReasoning, Text: delta.Thinking})
		case "signature_delta":
			b.signature += delta.Signature
		case "input_json_delta":
			if len(b.args)+len(delta.PartialJSON) > llm.MaxToolArguments {
				return llm.ProtocolError(d.name, "tool call %s (%s): arguments exceed %d bytes", b.call.ID, b.call.Name, llm.MaxToolArguments)
			}
			b.args = append(b.args, delta.PartialJSON...)
			if delta.PartialJSON != "" {
				return d.emit(yield, llm.Event{Kind: llm.EventToolCallDelta, Index: b.tool, Text: delta.PartialJSON})
			}
		}
	case "content_block_stop":
		b, ok := d.blocks[ev.Index]
		if !ok {
			return llm.ProtocolError(d.name, "stop of content block %d, which was not started", ev.Index)
		}
		delete(d.blocks, ev.Index)
		switch b.typ {
		case "thinking":
			return d.emit(yield, llm.Event{Kind: llm.EventReasoningEnd, Signature: b.signature})
		case "redacted_thinking":
			return d.emit(yield, llm.Event{Kind: llm.EventReasoningEnd, Redacted: b.redacted})
		case "tool_use":
			b.call.Arguments = b.args
			if len(b.args) == 0 {
				b.call.Arguments = b.initial
			}
			args, err := llm.CheckArguments(d.name, b.call)
			if err != nil {
				return err
			}
			b.call.Arguments = args
			return d.emit(yield, llm.Event{Kind: llm.EventToolCallEnd, Index: b.tool, ToolCall: b.call})
		}
	case "message_delta":
		if r := ev.Delta.StopReason; r != "" {
			d.stop = llm.StopReason(r)
		}
		// The counts are cumulative; input counts appear here only in newer
		// API versions.
		d.addUsage(&ev.Usage)
	case "message_stop":
		for _, b := range d.blocks {
			if b.typ == "tool_use" {
				return llm.ProtocolError(d.name, "message_stop in the middle of tool call %s (%s)", b.call.ID, b.call.Name)
			}
		}
		if len(d.blocks) > 0 {
			return llm.ProtocolError(d.name, "message_stop with %d content block(s) still open", len(d.blocks))
		}
		if d.stop == "" {
			d.stop = llm.StopEndTurn
		}
		d.stopped = true
	}
	return nil
}

// addUsage takes the counts u has: they are cumulative, so each replaces
// the last one seen. Absent, null and zero counts keep the earlier value
// (message_delta repeats only some of them).
func (d *decoder) addUsage(u *wireUsage) {
	set := func(dst *int64, v *int64) {
		if v != nil && *v > 0 {
			*dst = *v
		}
	}
	set(&d.usage.InputTokens, u.InputTokens)
	set(&d.usage.OutputTokens, u.OutputTokens)
	set(&d.usage.CacheReadTokens, u.CacheReadInputTokens)
	set(&d.usage.CacheWriteTokens, u.CacheCreationInputTokens)
}
