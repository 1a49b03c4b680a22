package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"

	"github.com/pelletier/go-toml/v2"

	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// maxSparkField bounds each persona field.
const maxSparkField = 200

// persona is the agent's persona, kept in $ASTRID_HOME/spark.toml.
type persona struct {
	Callsign string `toml:"callsign" json:"callsign,omitempty"`
	Class    string `toml:"class" json:"class,omitempty"`
	Aura     string `toml:"aura" json:"aura,omitempty"`
	Signal   string `toml:"signal" json:"signal,omitempty"`
	Core     string `toml:"core" json:"core,omitempty"`
}

// spark is spark{action, …}: it reads and evolves the persona. The file
// lives in $ASTRID_HOME, out of reach of every other tool; only this tool
// writes it, field by field, each bounded and stripped of control
// characters, and only after the interceptor allowed it (kind capsule,
// capsule://astrid/spark).
type spark struct {
	path string

	mu sync.Mutex
	p  persona // guarded by mu
}

func newSpark(path string) (*spark, error) {
	s := &spark{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("spark: %w", err)
	}
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.p); err != nil {
		return nil, fmt.Errorf("spark: %s: %w", path, err)
	}
	return s, nil
}

type sparkArgs struct {
	Action   string  `json:"action"`
	Callsign *string `json:"callsign"`
	Class    *string `json:"class"`
	Aura     *string `json:"aura"`
	Signal   *string `json:"signal"`
	Core     *string `json:"core"`
}

func (s *spark) Spec() tools.Spec {
	return tools.Spec{
		Name: "spark",
		Description: `Read or evolve your persona (callsign, class, aura, signal, core), which is part of your system prompt in every session.
action "get" returns it; action "set" changes the fields given (each at most 200 characters).`,
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "action": {"type": "string", "enum": ["get", "set"]},
    "callsign": {"type": "string"}, "class": {"type": "string"}, "aura": {"type": "string"},
    "signal": {"type": "string"}, "core": {"type": "string"}
  },
  "required": ["action"],
  "additionalProperties": false
}`),
	}
}

func (s *spark) Prepare(sess security.Session, raw json.RawMessage) (security.Action, security.Executor, error) {
	var a sparkArgs
	if err := strictJSON(raw, &a); err != nil {
		return security.Action{}, nil, fmt.Errorf("spark: %w", err)
	}
	if a.Action != "get" && a.Action != "set" {
		return security.Action{}, nil, fmt.Errorf("spark: action %q: want get or set", a.Action)
	}
	for _, f := range []*string{a.Callsign, a.Class, a.Aura, a.Signal, a.Core} {
		if f != nil && len(*f) > maxSparkField {
			return security.Action{}, nil, fmt.Errorf("spark: fields are at most %d characters", maxSparkField)
		}
	}
	uri, err := security.CapsuleURI("astrid", "spark")
	if err != nil {
		return security.Action{}, nil, err
	}
	act := security.Action{Kind: security.Capsule, Resource: uri, Args: raw, Session: sess, Summary: "Persona: " + a.Action}
	if a.Action == "get" {
		act.Risk = security.Low
	}
	return act, security.ExecutorFunc(func(context.Context, security.Action) ([]byte, error) {
		if a.Action == "get" {
			s.mu.Lock()
			defer s.mu.Unlock()
			return json.Marshal(s.p)
		}
		return s.set(a)
	}), nil
}

func (s *spark) set(a sparkArgs) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.p
	for _, f := range []struct {
		v   *string
		dst *string
	}{{a.Callsign, &next.Callsign}, {a.Class, &next.Class}, {a.Aura, &next.Aura}, {a.Signal, &next.Signal}, {a.Core, &next.Core}} {
		if f.v != nil {
			*f.dst = cleanField(*f.v)
		}
	}
	b, err := toml.Marshal(next)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".spark-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return nil, err
	}
	s.p = next
	return json.Marshal(next)
}

// cleanField keeps one line of printable text.
func cleanField(v string) string {
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, v)
	return strings.TrimSpace(v)
}

// persona renders the persona for the system prompt ("" when unset).
func (s *spark) persona() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.p
	if p == (persona{}) {
		return ""
	}
	var b strings.Builder
	b.WriteString("Your persona (set through the spark tool):")
	for _, f := range [][2]string{{"callsign", p.Callsign}, {"class", p.Class}, {"aura", p.Aura}, {"signal", p.Signal}, {"core", p.Core}} {
		if f[1] != "" {
			fmt.Fprintf(&b, "\n- %s: %s", f[0], f[1])
		}
	}
	return b.String()
}
