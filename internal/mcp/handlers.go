package mcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// limiter allows n requests per sliding minute and reports a flood when
// the requests in one minute, refused ones included, reach n*flood.
type limiter struct {
	mu    sync.Mutex
	n     int
	flood int
	seen  []time.Time // guarded by mu; every request in the last minute
	now   func() time.Time
}

func newLimiter(n, flood int) *limiter {
	return &limiter{n: n, flood: flood, now: time.Now}
}

// take reports whether a request may go ahead, and whether the server is
// flooding.
func (l *limiter) take() (ok, flood bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	cut := 0
	for cut < len(l.seen) && now.Sub(l.seen[cut]) >= time.Minute {
		cut++
	}
	l.seen = append(l.seen[cut:], now)
	return len(l.seen) <= l.n, len(l.seen) >= l.n*l.flood
}

// ErrRateLimited is the error a server gets for a request over its rate.
var ErrRateLimited = errors.New("rate limit exceeded; try again later")

// admit applies a rate limit and stops a flooding server.
func (c *conn) admit(l *limiter, what string) error {
	ok, flood := l.take()
	if flood {
		c.violation("a flood of " + what + " requests")
		return ErrRateLimited
	}
	if !ok {
		return ErrRateLimited
	}
	return nil
}

type rootsHandler struct{ c *conn }

func (h rootsHandler) ListRoots(ctx context.Context, _ mcpgo.ListRootsRequest) (*mcpgo.ListRootsResult, error) {
	res := &mcpgo.ListRootsResult{Roots: []mcpgo.Root{}}
	roots := []string{h.c.srv.workspace}
	if h.c.srv.workspace == "" {
		roots = h.c.srv.m.o.Roots.Roots(h.c.srv.name)
	}
	// NOTE: a server a workspace added learns that workspace only, never
	// the roots of the user's other sessions.
	for _, r := range roots {
		if !filepath.IsAbs(r) {
			continue
		}
		u := url.URL{Scheme: "file", Path: filepath.Clean(r)}
		res.Roots = append(res.Roots, mcpgo.Root{URI: u.String(), Name: filepath.Base(r)})
	}
	return res, nil
}

type samplingHandler struct{ c *conn }

// maxSampleMessages bounds the messages of one sampling request.
const maxSampleMessages = 100

func (h samplingHandler) CreateMessage(ctx context.Context, req mcpgo.CreateMessageRequest) (*mcpgo.CreateMessageResult, error) {
	c := h.c
	if err := c.admit(c.sampleLimit, "sampling"); err != nil {
		return nil, err
	}
	p := req.CreateMessageParams
	if len(p.Messages) == 0 || len(p.Messages) > maxSampleMessages {
		return nil, fmt.Errorf("sampling needs 1 to %d messages", maxSampleMessages)
	}
	if p.MaxTokens <= 0 {
		return nil, errors.New("sampling needs a positive maxTokens")
	}
	raw, _ := json.Marshal(p)
	sr := SampleRequest{Server: c.srv.name, Session: c.session(), SystemPrompt: p.SystemPrompt, MaxTokens: p.MaxTokens,
		StopSequences: p.StopSequences, Params: raw}
	if p.Temperature != 0 {
		t := p.Temperature
		sr.Temperature = &t
	}
	if p.ModelPreferences != nil {
		for _, hint := range p.ModelPreferences.Hints {
			sr.ModelHints = append(sr.ModelHints, hint.Name)
		}
	}
	for _, m := range p.Messages {
		sr.Messages = append(sr.Messages, SampleMessage{Role: string(m.Role), Text: contentText(m.Content)})
	}
	out, err := c.srv.m.o.Sampler.Sample(ctx, sr)
	if err != nil {
		return nil, err
	}
	stop := out.StopReason
	if stop == "" {
		stop = "endTurn"
	}
	return &mcpgo.CreateMessageResult{
		SamplingMessage: mcpgo.SamplingMessage{Role: mcpgo.RoleAssistant, Content: mcpgo.NewTextContent(out.Text)},
		Model:           out.Model,
		StopReason:      stop,
	}, nil
}

// contentText renders sampling content for a human and a model: text as
// is, other kinds as a placeholder.
func contentText(content any) string {
	switch v := content.(type) {
	case mcpgo.TextContent:
		return v.Text
	case *mcpgo.TextContent:
		return v.Text
	case mcpgo.ImageContent:
		return "[image " + v.MIMEType + "]"
	case mcpgo.AudioContent:
		return "[audio " + v.MIMEType + "]"
	case []any:
		out := ""
		for _, x := range v {
			out += contentText(x)
		}
		return out
	case map[string]any:
		if t, _ := v["type"].(string); t == "text" {
			s, _ := v["text"].(string)
			return s
		}
		t, _ := v["type"].(string)
		return "[" + t + "]"
	}
	return fmt.Sprintf("[%T]", content)
}

type elicitationHandler struct{ c *conn }

// maxSchemaProps bounds the fields of an elicitation form.
const maxSchemaProps = 64

func (h elicitationHandler) Elicit(ctx context.Context, req mcpgo.ElicitationRequest) (*mcpgo.ElicitationResult, error) {
	c := h.c
	if err := c.admit(c.elicitLimit, "elicitation"); err != nil {
		return nil, err
	}
	p := req.Params
	er := ElicitRequest{ID: newID(), Server: c.srv.name, Session: c.session(), Mode: p.Mode, Message: clipRunes(p.Message, 4000)}
	if er.Mode == "" {
		er.Mode = mcpgo.ElicitationModeForm
	}
	var schema flatSchema
	switch er.Mode {
	case mcpgo.ElicitationModeForm:
		raw, err := json.Marshal(p.RequestedSchema)
		if err != nil {
			return nil, err
		}
		if len(raw) > c.srv.m.limits.SchemaBytes {
			return nil, errors.New("requested schema too large")
		}
		if err := json.Unmarshal(raw, &schema); err != nil {
			return nil, fmt.Errorf("requested schema: %w", err)
		}
		if len(schema.Properties) > maxSchemaProps {
			return nil, fmt.Errorf("requested schema has more than %d fields", maxSchemaProps)
		}
		er.Schema = raw
	case mcpgo.ElicitationModeURL:
		domain, err := parseElicitURL(p.URL)
		if err != nil {
			return nil, err
		}
		er.URL, er.Domain, er.ElicitationID = p.URL, domain, clipRunes(p.ElicitationID, 256)
	default:
		return nil, fmt.Errorf("unknown elicitation mode %q", clipRunes(er.Mode, 32))
	}
	m := c.srv.m
	ectx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.elicits[er.ID] = cancel
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.elicits, er.ID)
		m.mu.Unlock()
		cancel()
	}()
	var ans ElicitResult
	var err error
	if er.Mode == mcpgo.ElicitationModeURL {
		ans, err = c.elicitURL(ectx, er)
	} else {
		ans, err = m.o.Elicitor.Elicit(ectx, er)
	}
	if err != nil {
		return &mcpgo.ElicitationResult{ElicitationResponse: mcpgo.ElicitationResponse{Action: mcpgo.ElicitationResponseActionCancel}}, nil
	}
	res := &mcpgo.ElicitationResult{}
	switch ans.Action {
	case "accept":
		res.Action = mcpgo.ElicitationResponseActionAccept
		if er.Mode == mcpgo.ElicitationModeForm {
			res.Content = schema.withDefaults(ans.Content)
		}
	case "decline":
		res.Action = mcpgo.ElicitationResponseActionDecline
	default:
		res.Action = mcpgo.ElicitationResponseActionCancel
	}
	return res, nil
}

// flatSchema is the part of an elicitation schema the client reads: the
// properties and their defaults.
type flatSchema struct {
	Properties map[string]struct {
		Default json.RawMessage `json:"default"`
	} `json:"properties"`
}

// withDefaults fills the fields the user left out with the schema's
// defaults (SEP-1034).
func (s flatSchema) withDefaults(content map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range content {
		out[k] = v
	}
	for k, p := range s.Properties {
		if _, ok := out[k]; ok || len(p.Default) == 0 {
			continue
		}
		var v any
		if json.Unmarshal(p.Default, &v) == nil {
			out[k] = v
		}
	}
	return out
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
