package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/astrid-runtime/astrid/internal/llm"
)

// call is a tool call being streamed.
type call struct {
	index int64 // the server's tool_calls[].index
	call  llm.ToolCall
	args  []byte
	ended bool
}

// decoder turns chat.completion.chunk objects into llm events.
type decoder struct {
	name      string
	calls     []*call // in order of appearance; Event.Index is the position
	reasoning bool    // a reasoning block is open
	finish    string
	usage     *llm.Usage
	generated strings.Builder // text and arguments, for a usage estimate
}

// wireChunk is a chat.completion.chunk, decoded with encoding/json rather
// than the SDK's types (see llm.SSEReader). Reasoning arrives as
// reasoning_content (Z.AI, vLLM, DeepSeek) or reasoning (Ollama,
// OpenRouter).
type wireChunk struct {
	Choices []struct {
		Index int64 `json:"index"`
		Delta struct {
			Content          string          `json:"content"`
			ReasoningContent json.RawMessage `json:"reasoning_content"`
			Reasoning        json.RawMessage `json:"reasoning"`
			ToolCalls        []wireToolCall  `json:"tool_calls"`
		} `json:"delta"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int64 `json:"prompt_tokens"`
		CompletionTokens    int64 `json:"completion_tokens"`
		PromptTokensDetails struct {
			CachedTokens     int64 `json:"cached_tokens"`
			CacheWriteTokens int64 `json:"cache_write_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

type wireToolCall struct {
	Index    int64  `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// attempt sends one request and streams its events. The SDK sends the
// request (headers, body, errors through llm.ResponseCheck); the response
// body is read here, chunk by chunk.
func (p *Provider) attempt(ctx context.Context, req *llm.Request, params *sdk.ChatCompletionNewParams, opts []option.RequestOption) iter.Seq2[llm.Event, error] {
	return func(yield func(llm.Event, error) bool) {
		var resp *http.Response
		stream := p.chat.NewStreaming(ctx, *params, append(opts[:len(opts):len(opts)], option.WithResponseInto(&resp))...)
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
		d := &decoder{name: p.cfg.Name}
		sse := llm.NewSSEReader(body, 0)
		var c wireChunk
		for {
			_, data, err := sse.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				yield(llm.Event{}, p.mapError(ctx, err))
				return
			}
			if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
				break
			}
			c = wireChunk{}
			if err := json.Unmarshal(data, &c); err != nil {
				yield(llm.Event{}, llm.ProtocolError(p.cfg.Name, "malformed event stream: %v", err))
				return
			}
			if len(c.Error) > 0 && string(c.Error) != "null" {
				yield(llm.Event{}, p.mapError(ctx, llm.StreamError(p.cfg.Name, data)))
				return
			}
			if err := d.chunk(&c, yield); err != nil {
				if !errors.Is(err, errStopped) {
					yield(llm.Event{}, err)
				}
				return
			}
		}
		if ctx.Err() != nil {
			yield(llm.Event{}, llm.ErrorFromGo(ctx, p.cfg.Name, ctx.Err()))
			return
		}
		if d.finish == "" {
			yield(llm.Event{}, d.truncated())
			return
		}
		var u llm.Usage
		if d.usage != nil {
			u = *d.usage
			u.Cost = p.cfg.Pricing.Cost(u)
		} else {
			u = llm.EstimateUsage(req, d.generated.String(), p.cfg.Pricing)
		}
		if yield(llm.Event{Kind: llm.EventUsage, Usage: u}, nil) {
			stop := stopReason(d.finish)
			if stop == llm.StopEndTurn && len(d.calls) > 0 {
				stop = llm.StopToolUse // Ollama finishes a turn with tool calls as "stop"
			}
			yield(llm.Event{Kind: llm.EventStop, StopReason: stop}, nil)
		}
	}
}

// errStopped reports that the consumer stopped ranging.
var errStopped = errors.New("consumer stopped")

func stopReason(finish string) llm.StopReason {
	switch finish {
	case "stop":
		return llm.StopEndTurn
	case "tool_calls", "function_call":
		return llm.StopToolUse
	case "length":
		return llm.StopMaxTokens
	case "content_filter", "sensitive":
		return llm.StopRefusal
	}
	return llm.StopReason(finish)
}

func (d *decoder) truncated() *llm.Error {
	for _, c := range d.calls {
		if !c.ended {
			e := llm.ProtocolError(d.name, "stream ended in the middle of tool call %s (%s)", c.call.ID, c.call.Name)
			e.Retryable = true
			return e
		}
	}
	e := llm.ProtocolError(d.name, "stream ended before a finish_reason")
	e.Retryable = true
	return e
}

func emit(yield func(llm.Event, error) bool, ev llm.Event) error {
	if !yield(ev, nil) {
		return errStopped
	}
	return nil
}

// endReasoning closes an open reasoning block.
func (d *decoder) endReasoning(yield func(llm.Event, error) bool) error {
	if !d.reasoning {
		return nil
	}
	d.reasoning = false
	return emit(yield, llm.Event{Kind: llm.EventReasoningEnd})
}

// reasoningText reads the reasoning a delta carries. reasoning_content
// must be a string (or null); reasoning, whose shape varies between
// servers, is used only when it is a string.
func reasoningText(content, other json.RawMessage) (string, error) {
	var s string
	if len(content) > 0 && string(content) != "null" {
		if err := json.Unmarshal(content, &s); err != nil {
			return "", err
		}
		if s != "" {
			return s, nil
		}
	}
	if len(other) > 0 && other[0] == '"' && json.Unmarshal(other, &s) == nil {
		return s, nil
	}
	return "", nil
}

// chunk handles one chat.completion.chunk.
func (d *decoder) chunk(c *wireChunk, yield func(llm.Event, error) bool) error {
	if c.Usage != nil {
		cached := c.Usage.PromptTokensDetails.CachedTokens
		written := c.Usage.PromptTokensDetails.CacheWriteTokens
		d.usage = &llm.Usage{
			InputTokens:      max(c.Usage.PromptTokens-cached-written, 0),
			OutputTokens:     c.Usage.CompletionTokens,
			CacheReadTokens:  cached,
			CacheWriteTokens: written,
		}
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // only one choice is ever requested
		}
		delta := &ch.Delta
		if d.finish != "" && (delta.Content != "" || len(delta.ToolCalls) > 0) {
			return llm.ProtocolError(d.name, "delta after finish_reason %q", d.finish)
		}
		r, err := reasoningText(delta.ReasoningContent, delta.Reasoning)
		if err != nil {
			return llm.ProtocolError(d.name, "malformed reasoning in delta: %v", err)
		}
		if r != "" {
			d.reasoning = true
			if err := emit(yield, llm.Event{Kind: llm.EventReasoning, Text: r}); err != nil {
				return err
			}
		}
		if delta.Content != "" {
			if err := d.endReasoning(yield); err != nil {
				return err
			}
			d.generated.WriteString(delta.Content)
			if err := emit(yield, llm.Event{Kind: llm.EventText, Text: delta.Content}); err != nil {
				return err
			}
		}
		for j := range delta.ToolCalls {
			if err := d.endReasoning(yield); err != nil {
				return err
			}
			if err := d.toolDelta(&delta.ToolCalls[j], yield); err != nil {
				return err
			}
		}
		if ch.FinishReason != "" {
			if err := d.endReasoning(yield); err != nil {
				return err
			}
			d.finish = ch.FinishReason
			for _, tc := range d.calls {
				if tc.ended {
					continue
				}
				tc.call.Arguments = tc.args
				args, err := llm.CheckArguments(d.name, tc.call)
				if err != nil {
					return err
				}
				tc.call.Arguments = args
				tc.ended = true
				if err := emit(yield, llm.Event{Kind: llm.EventToolCallEnd, Index: d.position(tc), ToolCall: tc.call}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (d *decoder) position(c *call) int {
	for i, x := range d.calls {
		if x == c {
			return i
		}
	}
	return -1
}

// toolDelta handles one tool_calls[] entry. The first entry of a call has
// its id and name; later ones with the same index add argument text. Some
// servers (older Ollama) send every call whole with index 0: a new id at a
// known index is a new call.
func (d *decoder) toolDelta(tc *wireToolCall, yield func(llm.Event, error) bool) error {
	var cur *call
	for i := len(d.calls) - 1; i >= 0; i-- {
		if d.calls[i].index == tc.Index {
			cur = d.calls[i]
			break
		}
	}
	if cur == nil || (tc.ID != "" && tc.ID != cur.call.ID) {
		if tc.Function.Name == "" {
			return llm.ProtocolError(d.name, "tool call at index %d starts without a function name", tc.Index)
		}
		id := tc.ID
		if id == "" {
			id = "call_" + strconv.Itoa(len(d.calls)) // llama.cpp and others may omit it
		}
		cur = &call{index: tc.Index, call: llm.ToolCall{ID: id, Name: tc.Function.Name}}
		d.calls = append(d.calls, cur)
		if err := emit(yield, llm.Event{Kind: llm.EventToolCallStart, Index: len(d.calls) - 1, ToolCall: cur.call}); err != nil {
			return err
		}
	}
	frag := tc.Function.Arguments
	if frag == "" {
		return nil
	}
	if len(cur.args)+len(frag) > llm.MaxToolArguments {
		return llm.ProtocolError(d.name, "tool call %s (%s): arguments exceed %d bytes", cur.call.ID, cur.call.Name, llm.MaxToolArguments)
	}
	cur.args = append(cur.args, frag...)
	d.generated.WriteString(frag)
	return emit(yield, llm.Event{Kind: llm.EventToolCallDelta, Index: d.position(cur), Text: frag})
}
