// Package replay is an llm.Provider that plays back a recorded transcript
// instead of calling a model: for offline demos and reproducible tests. It
// is only ever used when configured explicitly (provider = "replay"); it is
// never a fallback for a provider that fails.
//
// # Transcript format
//
// A transcript is a JSONL file: one JSON object per line, one line per model
// turn, in order. Blank lines and lines starting with "#" are ignored.
//
//	# The model reads a file, then answers.
//	{"text": "Let me look.", "tool_calls": [{"id": "call_1", "name": "read_file", "arguments": {"file_path": "go.mod"}}]}
//	{"expect": {"tool_results": 1, "user_contains": ""}, "text": "It is a Go module.", "usage": {"input_tokens": 900, "output_tokens": 12}}
//
// The members of a turn, all optional:
//
//	reasoning    string  streamed as EventReasoning, then EventReasoningEnd
//	text         string  streamed as EventText, in pieces of up to 16 bytes
//	tool_calls   list of {"id", "name", "arguments": JSON object}
//	stop_reason  string  default "tool_use" when there are tool calls, else "end_turn"
//	usage        {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"};
//	             without it the usage is estimated (llm.EstimateUsage)
//	expect       checks on the request that asks for this turn:
//	  tool_results   int     the last user message holds exactly this many tool results
//	  user_contains  string  the last user message's text contains this
//
// Unknown members are errors, so that a typo does not silently drop a check.
//
// # Which turn, and divergence
//
// The turn played for a request is the number of assistant messages in it:
// a conversation with no assistant message yet gets line one. The provider
// keeps no state, so concurrent sessions replay independently. Each request
// is checked lightly against the script, and a mismatch fails with an
// *llm.Error of kind bad_request that wraps ErrDiverged and names the turn
// and line:
//
//   - the request must end with a user message, and the script must have a
//     turn for it;
//   - each earlier assistant message must carry the tool call ids of the
//     script's turn at its position;
//   - when the previous turn called tools, the last user message must answer
//     exactly those calls (by id), and meet the turn's expect checks.
package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/llm"
)

// ErrDiverged is wrapped by the error of a request that does not follow the
// script.
var ErrDiverged = errors.New("conversation diverged from the replay script")

// Limits on a transcript.
const (
	maxFile  = 16 << 20
	maxLine  = 8 << 20
	maxTurns = 10000
)

// Turn is one scripted model turn (see the package documentation).
type Turn struct {
	Reasoning  string         `json:"reasoning"`
	Text       string         `json:"text"`
	ToolCalls  []ScriptedCall `json:"tool_calls"`
	StopReason string         `json:"stop_reason"`
	Usage      *ScriptedUsage `json:"usage"`
	Expect     Expect         `json:"expect"`

	line int
}

// ScriptedCall is a tool call of a Turn.
type ScriptedCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// ScriptedUsage is the usage a Turn reports.
type ScriptedUsage struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
}

// Expect are the checks on the request for a Turn.
type Expect struct {
	// ToolResults, if not nil, is the number of tool results the last user
	// message must hold.
	ToolResults  *int   `json:"tool_results"`
	UserContains string `json:"user_contains"`
}

// Script is a parsed transcript.
type Script struct {
	Name  string
	Turns []Turn
}

// Open reads and parses a transcript file.
func Open(path string) (*Script, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := Parse(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.Name = path
	return s, nil
}

// Parse parses a transcript. It checks every turn before returning any:
// well-formed JSON with no unknown members, tool calls with an id, a name
// and an object of arguments, ids unique in the script.
func Parse(r io.Reader) (*Script, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	s := &Script{}
	ids := map[string]int{}
	size, line := 0, 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		size += len(sc.Bytes()) + 1
		if size > maxFile {
			return nil, fmt.Errorf("transcript larger than %d bytes", maxFile)
		}
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		if len(s.Turns) == maxTurns {
			return nil, fmt.Errorf("line %d: more than %d turns", line, maxTurns)
		}
		var t Turn
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d: more than one JSON value", line)
		}
		t.line = line
		for i, c := range t.ToolCalls {
			if c.ID == "" || c.Name == "" {
				return nil, fmt.Errorf("line %d: tool call %d needs an id and a name", line, i)
			}
			if prev, dup := ids[c.ID]; dup {
				return nil, fmt.Errorf("line %d: tool call id %q already used on line %d", line, c.ID, prev)
			}
			ids[c.ID] = line
			args, err := llm.CheckArguments("replay", llm.ToolCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments})
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", line, err)
			}
			t.ToolCalls[i].Arguments = args
		}
		s.Turns = append(s.Turns, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %v", line+1, err)
	}
	if len(s.Turns) == 0 {
		return nil, errors.New("transcript has no turns")
	}
	return s, nil
}

// Provider plays a Script. It is safe for concurrent use.
type Provider struct {
	cfg    llm.Config
	script *Script
}

var _ llm.Provider = (*Provider)(nil)

// New returns a Provider that plays script. cfg.Model is reported as the
// model and cfg.Pricing prices the scripted usage.
func New(cfg llm.Config, script *Script) *Provider {
	cfg.Name = "replay"
	if cfg.Model == "" {
		cfg.Model = "replay"
	}
	return &Provider{cfg: cfg, script: script}
}

// Name implements llm.Provider.
func (p *Provider) Name() string { return "replay" }

// Model implements llm.Provider.
func (p *Provider) Model() string { return p.cfg.Model }

// EstimateCost implements llm.Provider (see llm.EstimateCost).
func (p *Provider) EstimateCost(req *llm.Request) budget.Micros {
	return llm.EstimateCost(req, p.cfg.Pricing, p.cfg.MaxTokensFor(req))
}

func (p *Provider) diverged(turn int, format string, args ...any) *llm.Error {
	where := fmt.Sprintf("turn %d", turn+1)
	if turn < len(p.script.Turns) {
		where += fmt.Sprintf(" (%s line %d)", p.script.Name, p.script.Turns[turn].line)
	}
	return &llm.Error{Provider: "replay", Kind: llm.KindBadRequest, Err: ErrDiverged,
		Message: ErrDiverged.Error() + " at " + where + ": " + fmt.Sprintf(format, args...)}
}

// check finds the turn for req and checks req against the script.
func (p *Provider) check(req *llm.Request) (*Turn, error) {
	n := 0
	for _, m := range req.Messages {
		if m.Role != llm.RoleAssistant {
			continue
		}
		if n < len(p.script.Turns) {
			var got, want []string
			for _, part := range m.Parts {
				if part.Kind == llm.PartToolCall && part.ToolCall != nil {
					got = append(got, part.ToolCall.ID)
				}
			}
			for _, c := range p.script.Turns[n].ToolCalls {
				want = append(want, c.ID)
			}
			if !slices.Equal(got, want) {
				return nil, p.diverged(n, "the assistant message has tool calls %q, the script %q", got, want)
			}
		}
		n++
	}
	if n >= len(p.script.Turns) {
		return nil, p.diverged(n, "the script has only %d turns", len(p.script.Turns))
	}
	if len(req.Messages) == 0 || req.Messages[len(req.Messages)-1].Role != llm.RoleUser {
		return nil, p.diverged(n, "the request does not end with a user message")
	}
	t := &p.script.Turns[n]
	last := req.Messages[len(req.Messages)-1]
	var results []string
	var text strings.Builder
	for _, part := range last.Parts {
		switch {
		case part.Kind == llm.PartToolResult && part.ToolResult != nil:
			results = append(results, part.ToolResult.CallID)
		case part.Kind == llm.PartText:
			text.WriteString(part.Text)
		}
	}
	if n > 0 {
		var want []string
		for _, c := range p.script.Turns[n-1].ToolCalls {
			want = append(want, c.ID)
		}
		slices.Sort(want)
		got := slices.Sorted(slices.Values(results))
		if !slices.Equal(got, want) {
			return nil, p.diverged(n, "expected results for tool calls %q, got %q", want, got)
		}
	}
	if e := t.Expect.ToolResults; e != nil && len(results) != *e {
		return nil, p.diverged(n, "expected %d tool results, got %d", *e, len(results))
	}
	if t.Expect.UserContains != "" && !strings.Contains(text.String(), t.Expect.UserContains) {
		return nil, p.diverged(n, "the user message does not contain %q", t.Expect.UserContains)
	}
	return t, nil
}

// Stream implements llm.Provider: it checks req against the script and
// streams the turn. It sends nothing over the network.
func (p *Provider) Stream(ctx context.Context, req *llm.Request) iter.Seq2[llm.Event, error] {
	return func(yield func(llm.Event, error) bool) {
		t, err := p.check(req)
		if err != nil {
			yield(llm.Event{}, err)
			return
		}
		send := func(ev llm.Event) bool {
			if ctx.Err() != nil {
				yield(llm.Event{}, llm.ErrorFromGo(ctx, "replay", ctx.Err()))
				return false
			}
			return yield(ev, nil)
		}
		if t.Reasoning != "" {
			for piece := range pieces(t.Reasoning) {
				if !send(llm.Event{Kind: llm.EventReasoning, Text: piece}) {
					return
				}
			}
			if !send(llm.Event{Kind: llm.EventReasoningEnd}) {
				return
			}
		}
		for piece := range pieces(t.Text) {
			if !send(llm.Event{Kind: llm.EventText, Text: piece}) {
				return
			}
		}
		for i, c := range t.ToolCalls {
			call := llm.ToolCall{ID: c.ID, Name: c.Name}
			if !send(llm.Event{Kind: llm.EventToolCallStart, Index: i, ToolCall: call}) {
				return
			}
			for piece := range pieces(string(c.Arguments)) {
				if !send(llm.Event{Kind: llm.EventToolCallDelta, Index: i, Text: piece}) {
					return
				}
			}
			call.Arguments = slices.Clone(c.Arguments)
			if !send(llm.Event{Kind: llm.EventToolCallEnd, Index: i, ToolCall: call}) {
				return
			}
		}
		var u llm.Usage
		if t.Usage != nil {
			u = llm.Usage{InputTokens: t.Usage.InputTokens, OutputTokens: t.Usage.OutputTokens,
				CacheReadTokens: t.Usage.CacheReadTokens, CacheWriteTokens: t.Usage.CacheWriteTokens}
			u.Cost = p.cfg.Pricing.Cost(u)
		} else {
			var gen strings.Builder
			gen.WriteString(t.Reasoning)
			gen.WriteString(t.Text)
			for _, c := range t.ToolCalls {
				gen.Write(c.Arguments)
			}
			u = llm.EstimateUsage(req, gen.String(), p.cfg.Pricing)
		}
		stop := llm.StopReason(t.StopReason)
		if stop == "" {
			stop = llm.StopEndTurn
			if len(t.ToolCalls) > 0 {
				stop = llm.StopToolUse
			}
		}
		if send(llm.Event{Kind: llm.EventUsage, Usage: u}) {
			send(llm.Event{Kind: llm.EventStop, StopReason: stop})
		}
	}
}

// pieces splits s into pieces of up to 16 bytes, at character boundaries.
func pieces(s string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for len(s) > 0 {
			n := min(16, len(s))
			for n < len(s) && !utf8.RuneStart(s[n]) {
				n++
			}
			if !yield(s[:n]) {
				return
			}
			s = s[n:]
		}
	}
}
