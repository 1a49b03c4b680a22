package anthropic

import (
	"context"
	"errors"
	"iter"

	sdk "github.com/anthropics/anthropic-sdk-go"

	"github.com/astrid-runtime/astrid/internal/llm"
)

// block is an open content block of the streamed message.
type block struct {
	typ       string // "text", "thinking", "redacted_thinking", "tool_use", or "" for ignored types
	tool      int    // the tool call's Index
	call      llm.ToolCall
	args      []byte
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

// attempt sends one request and streams its events.
func (p *Provider) attempt(ctx context.Context, params *sdk.MessageNewParams) iter.Seq2[llm.Event, error] {
	return func(yield func(llm.Event, error) bool) {
		stream := p.msgs.NewStreaming(ctx, *params)
		defer stream.Close()
		d := &decoder{name: p.cfg.Name, blocks: map[int64]*block{}}
		for stream.Next() {
			ev := stream.Current()
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
		if err := stream.Err(); err != nil {
			yield(llm.Event{}, p.mapError(ctx, err))
			return
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

// mapError maps an error of the SDK's stream.
func (p *Provider) mapError(ctx context.Context, err error) error {
	if e, ok := errors.AsType[*llm.Error](err); ok {
		return e
	}
	// An "event: error" inside the stream: the SDK hands over the raw JSON.
	if ae, ok := errors.AsType[*sdk.Error](err); ok && ae.StatusCode < 300 {
		return llm.StreamError(p.cfg.Name, []byte(ae.RawJSON()))
	}
	e := llm.ErrorFromGo(ctx, p.cfg.Name, err)
	if e.Kind == llm.KindProtocol {
		e.Message = "malformed event stream: " + e.Message
	}
	return e
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
func (d *decoder) event(ev *sdk.MessageStreamEventUnion, yield func(llm.Event, error) bool) error {
	switch ev.Type {
	case "message_start":
		u := ev.Message.Usage
		d.usage.InputTokens = u.InputTokens
		d.usage.OutputTokens = u.OutputTokens
		d.usage.CacheReadTokens = u.CacheReadInputTokens
		d.usage.CacheWriteTokens = u.CacheCreationInputTokens
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
		u := &ev.Usage
		if u.JSON.OutputTokens.Valid() {
			d.usage.OutputTokens = u.OutputTokens
		}
		if u.JSON.InputTokens.Valid() && u.InputTokens > 0 {
			d.usage.InputTokens = u.InputTokens
		}
		if u.JSON.CacheReadInputTokens.Valid() && u.CacheReadInputTokens > 0 {
			d.usage.CacheReadTokens = u.CacheReadInputTokens
		}
		if u.JSON.CacheCreationInputTokens.Valid() && u.CacheCreationInputTokens > 0 {
			d.usage.CacheWriteTokens = u.CacheCreationInputTokens
		}
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
