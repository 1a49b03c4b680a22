package hooks

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/pelletier/go-toml/v2"
)

// Bounds on a hooks.toml.
const (
	MaxFileBytes = 256 << 10
	MaxHooks     = 256
)

// ParseError is an invalid hooks.toml: File and Line locate the problem
// (Line 0 when unknown).
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

type rawFile struct {
	Hook []rawHook `toml:"hook"`
}

type rawHook struct {
	Name        string   `toml:"name"`
	Event       string   `toml:"event"`
	Tools       []string `toml:"tools"`
	Servers     []string `toml:"servers"`
	Glob        []string `toml:"glob"`
	Regex       string   `toml:"regex"`
	Command     []string `toml:"command"`
	URL         string   `toml:"url"`
	FailAction  string   `toml:"fail_action"`
	Priority    int      `toml:"priority"`
	Async       bool     `toml:"async"`
	TimeoutSecs int64    `toml:"timeout_secs"`
}

var hookHeader = regexp.MustCompile(`^\s*\[\[\s*hook\s*\]\]`)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Parse decodes and validates the hooks.toml named file with content
// data. maxTimeout is the configured hooks.timeout_secs: the default
// timeout and the largest allowed. The hooks' Dir is left empty.
func Parse(file string, data []byte, maxTimeout time.Duration) ([]*Hook, error) {
	if len(data) > MaxFileBytes {
		return nil, &ParseError{File: file, Msg: fmt.Sprintf("larger than %d bytes", MaxFileBytes)}
	}
	var raw rawFile
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) && len(sm.Errors) > 0 {
			row, _ := sm.Errors[0].Position()
			return nil, &ParseError{File: file, Line: row, Msg: "unknown key " + strings.Join(sm.Errors[0].Key(), ".")}
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, &ParseError{File: file, Line: row, Msg: de.Error()}
		}
		return nil, &ParseError{File: file, Msg: err.Error()}
	}
	if len(raw.Hook) > MaxHooks {
		return nil, &ParseError{File: file, Msg: fmt.Sprintf("more than %d hooks", MaxHooks)}
	}
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, MaxFileBytes+1)
	for n := 1; sc.Scan(); n++ {
		if hookHeader.MatchString(sc.Text()) {
			lines = append(lines, n)
		}
	}
	seen := map[string]bool{}
	out := make([]*Hook, 0, len(raw.Hook))
	for i, r := range raw.Hook {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		h, err := r.validate(maxTimeout)
		if err != nil {
			return nil, &ParseError{File: file, Line: line, Msg: fmt.Sprintf("hook %q: %v", r.Name, err)}
		}
		if seen[h.Name] {
			return nil, &ParseError{File: file, Line: line, Msg: fmt.Sprintf("hook %q is defined twice", h.Name)}
		}
		seen[h.Name] = true
		h.File, h.Line = file, line
		out = append(out, h)
	}
	return out, nil
}

func (r rawHook) validate(maxTimeout time.Duration) (*Hook, error) {
	h := &Hook{Name: r.Name, Event: Event(r.Event), Tools: r.Tools, Servers: r.Servers, Glob: r.Glob,
		Command: r.Command, URL: r.URL, Priority: r.Priority, Async: r.Async, FailAction: FailAction(r.FailAction)}
	if !namePattern.MatchString(r.Name) {
		return nil, errors.New("name must be 1-64 letters, digits, '_', '.' or '-'")
	}
	if !h.Event.Valid() {
		return nil, fmt.Errorf("unknown event %q", r.Event)
	}
	for _, g := range r.Glob {
		if !doublestar.ValidatePattern(g) {
			return nil, fmt.Errorf("invalid glob %q", g)
		}
	}
	if r.Regex != "" {
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			return nil, fmt.Errorf("invalid regex: %v", err)
		}
		h.Regex = re
	}
	if !h.Event.ToolEvent() && (len(r.Tools)+len(r.Servers)+len(r.Glob) > 0 || r.Regex != "") {
		return nil, fmt.Errorf("matchers apply to tool events only, not %s", h.Event)
	}
	switch {
	case len(r.Command) > 0 && r.URL != "":
		return nil, errors.New("set command or url, not both")
	case len(r.Command) > 0:
		if r.Command[0] == "" || strings.ContainsRune(strings.Join(r.Command, ""), 0) {
			return nil, errors.New("command has an empty program or a NUL byte")
		}
		if !filepath.IsAbs(r.Command[0]) && strings.Contains(r.Command[0], "/") {
			if c := filepath.Clean(r.Command[0]); c == ".." || strings.HasPrefix(c, "../") {
				return nil, errors.New("a relative command must stay inside the hooks directory")
			}
		}
	case r.URL != "":
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("url %q is not an http(s) URL without credentials", r.URL)
		}
	default:
		return nil, errors.New("set command or url")
	}
	switch h.FailAction {
	case "":
		h.FailAction = FailWarn
		if h.Event.Blocking() {
			h.FailAction = FailBlock
		}
	case FailBlock:
		if !h.Event.Blocking() {
			return nil, fmt.Errorf("fail_action block: %s cannot be blocked", h.Event)
		}
	case FailWarn, FailIgnore:
	default:
		return nil, fmt.Errorf("fail_action %q is not block, warn or ignore", r.FailAction)
	}
	if h.Async && (h.Event.Pre() || h.Event.Blocking()) {
		return nil, fmt.Errorf("%s hooks cannot be async", h.Event)
	}
	switch {
	case r.TimeoutSecs < 0:
		return nil, errors.New("timeout_secs is negative")
	case r.TimeoutSecs == 0:
		h.Timeout = maxTimeout
	case time.Duration(r.TimeoutSecs)*time.Second > maxTimeout:
		return nil, fmt.Errorf("timeout_secs %d is above hooks.timeout_secs (%s)", r.TimeoutSecs, maxTimeout)
	default:
		h.Timeout = time.Duration(r.TimeoutSecs) * time.Second
	}
	return h, nil
}
