package capsulepkg

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/adhocore/gronx"
	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// ManifestFile is the name of a capsule's manifest in its directory.
const ManifestFile = "Capsule.toml"

// Bounds on a manifest. A manifest larger than MaxManifestSize is refused
// before parsing.
const (
	MaxManifestSize = 256 << 10
	maxList         = 256
	maxString       = 4 << 10
	maxLongString   = 64 << 10
	maxSchema       = 64 << 10
)

// Manifest is a decoded and validated Capsule.toml. Build it with
// ParseManifest; every field has passed the checks documented on it.
type Manifest struct {
	Package      Package           `toml:"package"`
	Component    *Component        `toml:"component"`
	Capabilities Capabilities      `toml:"capabilities"`
	Env          map[string]EnvVar `toml:"env"`
	Tools        []ToolDecl        `toml:"tool"`
	Commands     []CommandDecl     `toml:"command"`
	ContextFiles []ContextFileDecl `toml:"context_file"`
	Skills       []SkillDecl       `toml:"skill"`
	MCPServers   []MCPServerDecl   `toml:"mcp_server"`
	Cron         []CronDecl        `toml:"cron"`
	Interceptors []InterceptorDecl `toml:"interceptor"`
	Uplinks      []UplinkDecl      `toml:"uplink"`
	LLMProviders []LLMProviderDecl `toml:"llm_provider"`
	Dependencies map[string]string `toml:"dependencies"`
}

// Package is [package]. Name is the capsule id: 1 to 64 characters of
// a-z, 0-9, '_' and '-', starting with a letter.
type Package struct {
	Name          string `toml:"name"`
	Version       string `toml:"version"`
	Description   string `toml:"description"`
	AstridVersion string `toml:"astrid-version"`
}

// Component is [component]: the WASM module. Entrypoint is a relative
// path inside the capsule directory without "..". Hash is
// "blake3:<64 lower-case hex digits>" or empty (refused at load unless
// [capsules] allow_unhashed is set in the user configuration).
type Component struct {
	Entrypoint string `toml:"entrypoint"`
	Hash       string `toml:"hash"`
}

// Capabilities is [capabilities]: what the capsule's code may ask the host
// for. Anything not declared here is refused without asking anyone.
type Capabilities struct {
	// Net lists the hosts http_request may reach: "host" (ports 80 and
	// 443) or "host:port". No globs, no addresses in private ranges are
	// reachable anyway (policy refuses them).
	Net []string `toml:"net"`
	// HTTP enables http_request (Net must not be empty).
	HTTP bool `toml:"http"`
	// FSRead and FSWrite are roots, relative to the session's workspace or
	// absolute; reads may use both lists, writes only FSWrite.
	FSRead  []string `toml:"fs_read"`
	FSWrite []string `toml:"fs_write"`
	// KV enables the capsule's own key-value store.
	KV bool `toml:"kv"`
	// IPC lists the topics the capsule may publish and subscribe to; on
	// the bus each is prefixed with "<capsule id>/". An entry
	// "<other id>/<topic>" lets it subscribe to another capsule's topic
	// (never publish to it).
	IPC []string `toml:"ipc"`
	// Uplink lets the capsule register as a frontend and message users.
	Uplink bool `toml:"uplink"`
	// Cron lets the capsule schedule and cancel jobs at run time (jobs
	// declared with [[cron]] need no capability).
	Cron bool `toml:"cron"`
	// Elicit lets the capsule ask the session's user a question.
	Elicit bool `toml:"elicit"`
}

// EnvVar is [env.NAME]: a value the user gives at install. Type is
// "string" or "secret" (hidden when asked, stored 0600, never shown to
// the model). A secret has no default.
type EnvVar struct {
	Type        string `toml:"type"`
	Request     string `toml:"request"`
	Description string `toml:"description"`
	Default     string `toml:"default"`
}

// ToolDecl is one [[tool]]: a tool the capsule offers the agent. Name is a
// registry tool name (1 to 64 of a-z, 0-9, '_'); InputSchema is a JSON
// object schema, written as a TOML table or as a JSON string.
type ToolDecl struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	InputSchema any    `toml:"input_schema"`
	ReadOnly    bool   `toml:"read_only"`
	// Schema is InputSchema as compact JSON, set by ParseManifest.
	Schema json.RawMessage `toml:"-"`
}

// CommandDecl is one [[command]]: a slash command that expands to Prompt
// (static; no code runs).
type CommandDecl struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	Prompt      string `toml:"prompt"`
}

// ContextFileDecl is one [[context_file]]: a file of the capsule directory
// injected into the session's context.
type ContextFileDecl struct {
	Path        string `toml:"path"`
	Description string `toml:"description"`
}

// SkillDecl is one [[skill]]: a named instruction file of the capsule
// directory the agent can load.
type SkillDecl struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	Path        string `toml:"path"`
}

// MCPServerDecl is one [[mcp_server]]: an MCP server the capsule owns,
// started through the sandbox helper. Command is a file of the capsule
// (a relative path with a slash, "bin/server": installed with the
// capsule), or a binary the user sees named at install: an absolute path
// or a bare name looked up on the daemon's PATH ("node").
type MCPServerDecl struct {
	Name    string            `toml:"name" json:"name"`
	Command string            `toml:"command" json:"command"`
	Args    []string          `toml:"args" json:"args,omitempty"`
	Env     map[string]string `toml:"env" json:"env,omitempty"`
}

// CronDecl is one [[cron]]: a job the host runs on Schedule (five-field
// cron syntax or a gronx macro such as "@hourly") by calling the
// capsule's cron entry point with Name and Action.
type CronDecl struct {
	Name     string `toml:"name"`
	Schedule string `toml:"schedule"`
	Action   string `toml:"action"`
}

// InterceptorDecl is one [[interceptor]]: the capsule's hook entry point is
// called for Event (see InterceptorEvents), optionally only for one Tool.
type InterceptorDecl struct {
	Event string `toml:"event"`
	Tool  string `toml:"tool"`
}

// UplinkDecl is one [[uplink]]: a frontend the capsule provides.
type UplinkDecl struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
}

// LLMProviderDecl is one [[llm_provider]]: a model provider the capsule
// serves.
type LLMProviderDecl struct {
	Name        string   `toml:"name"`
	Description string   `toml:"description"`
	Models      []string `toml:"models"`
}

// InterceptorEvents are the events an [[interceptor]] may name.
var InterceptorEvents = []string{"BeforeToolCall", "AfterToolCall", "SessionStart", "SessionEnd", "UserPrompt"}

// Problem is one thing wrong with a manifest, at a 1-based line and
// column (zero when the problem has no single place, such as a missing
// table).
type Problem struct {
	Line, Col int
	// Key is the dotted key path, with array-table indices ("tool.1.name").
	Key string
	Msg string
}

// ManifestError lists every problem found in a manifest file.
type ManifestError struct {
	File     string
	Problems []Problem
}

func (e *ManifestError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
		}
		b.WriteString(": ")
		if p.Key != "" {
			b.WriteString(p.Key + ": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

var (
	nameRE  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	toolRE  = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	envRE   = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)
	topicRE = regexp.MustCompile(`^([a-z][a-z0-9_-]{0,63}/)?[a-z0-9][a-z0-9_.-]{0,63}$`)
	hashRE  = regexp.MustCompile(`^blake3:[0-9a-f]{64}$`)
)

// ParseManifest decodes and validates a Capsule.toml. file names the file
// in errors. Decoding is strict: unknown keys, wrong types and duplicate
// keys are errors. Every problem found is reported in one *ManifestError
// with its line and column; nothing is returned unless all checks pass.
func ParseManifest(file string, data []byte) (*Manifest, error) {
	merr := &ManifestError{File: file}
	if len(data) > MaxManifestSize {
		merr.Problems = append(merr.Problems, Problem{Msg: fmt.Sprintf("manifest is larger than %d bytes", MaxManifestSize)})
		return nil, merr
	}
	if !utf8.Valid(data) {
		merr.Problems = append(merr.Problems, Problem{Msg: "manifest is not valid UTF-8"})
		return nil, merr
	}
	var m Manifest
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var sme *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case errors.As(err, &sme):
			for _, e := range sme.Errors {
				l, c := e.Position()
				merr.Problems = append(merr.Problems, Problem{Line: l, Col: c, Key: strings.Join(e.Key(), "."), Msg: "unknown key"})
			}
		case errors.As(err, &de):
			l, c := de.Position()
			merr.Problems = append(merr.Problems, Problem{Line: l, Col: c, Key: strings.Join(de.Key(), "."), Msg: strings.TrimPrefix(de.Error(), "toml: ")})
		default:
			merr.Problems = append(merr.Problems, Problem{Msg: strings.TrimPrefix(err.Error(), "toml: ")})
		}
		return nil, merr
	}
	v := &validator{pos: keyPositions(data), err: merr}
	v.manifest(&m)
	if len(merr.Problems) > 0 {
		sort.SliceStable(merr.Problems, func(i, j int) bool {
			a, b := merr.Problems[i], merr.Problems[j]
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, merr
	}
	return &m, nil
}

// validator collects problems with positions.
type validator struct {
	pos map[string][2]int
	err *ManifestError
}

func (v *validator) addf(key, format string, args ...any) {
	p := Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
	// The position of the key, or of its nearest ancestor with one.
	for k := key; k != ""; {
		if lc, ok := v.pos[k]; ok {
			p.Line, p.Col = lc[0], lc[1]
			break
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	v.err.Problems = append(v.err.Problems, p)
}

func (v *validator) str(key, s string, required bool, max int) bool {
	switch {
	case s == "" && required:
		v.addf(key, "is required")
		return false
	case len(s) > max:
		v.addf(key, "is longer than %d bytes", max)
		return false
	case strings.ContainsRune(s, 0):
		v.addf(key, "contains NUL")
		return false
	}
	return true
}

func (v *validator) list(key string, n int) bool {
	if n > maxList {
		v.addf(key, "has %d entries, more than %d", n, maxList)
		return false
	}
	return true
}

func (v *validator) manifest(m *Manifest) {
	p := m.Package
	if v.str("package.name", p.Name, true, 64) && !nameRE.MatchString(p.Name) {
		v.addf("package.name", "%q: want 1-64 of a-z, 0-9, '_' and '-', starting with a letter", p.Name)
	}
	if v.str("package.version", p.Version, true, 64) && !semverish(p.Version) {
		v.addf("package.version", "%q is not a version (want MAJOR.MINOR.PATCH)", p.Version)
	}
	v.str("package.description", p.Description, false, maxString)
	v.str("package.astrid-version", p.AstridVersion, false, 64)

	if c := m.Component; c != nil {
		if v.str("component.entrypoint", c.Entrypoint, true, 256) {
			if !relPath(c.Entrypoint) || !strings.HasSuffix(c.Entrypoint, ".wasm") {
				v.addf("component.entrypoint", "%q: want a relative path to a .wasm file inside the capsule directory", c.Entrypoint)
			}
		}
		if c.Hash != "" && !hashRE.MatchString(c.Hash) {
			v.addf("component.hash", "want \"blake3:\" and 64 lower-case hex digits")
		}
	}
	v.capabilities(m)
	v.env(m.Env)
	v.tools(m)
	v.static(m)
	v.cron(m)
	v.rest(m)
}

func (v *validator) capabilities(m *Manifest) {
	c := m.Capabilities
	if v.list("capabilities.net", len(c.Net)) {
		for i, h := range c.Net {
			key := "capabilities.net"
			if v.str(key, h, true, 255) {
				if _, _, err := SplitHost(h); err != nil {
					v.addf(key, "entry %d: %v", i+1, err)
				}
			}
		}
	}
	if c.HTTP && len(c.Net) == 0 {
		v.addf("capabilities.http", "http needs at least one host in capabilities.net")
	}
	for _, k := range []struct {
		key   string
		roots []string
	}{{"capabilities.fs_read", c.FSRead}, {"capabilities.fs_write", c.FSWrite}} {
		if !v.list(k.key, len(k.roots)) {
			continue
		}
		for i, r := range k.roots {
			if !v.str(k.key, r, true, 1024) {
				continue
			}
			if slices.Contains(strings.Split(r, "/"), "..") {
				v.addf(k.key, "entry %d: %q contains ..", i+1, r)
			}
		}
	}
	if v.list("capabilities.ipc", len(c.IPC)) {
		for _, t := range c.IPC {
			if !topicRE.MatchString(t) {
				v.addf("capabilities.ipc", "topic %q: want 1-64 of a-z, 0-9, '_', '-' and '.', optionally after \"<capsule>/\"", t)
			}
		}
	}
	if len(m.Uplinks) > 0 && !c.Uplink {
		v.addf("uplink", "[[uplink]] needs capabilities.uplink = true")
	}
}

func (v *validator) env(env map[string]EnvVar) {
	if len(env) > 64 {
		v.addf("env", "has %d variables, more than 64", len(env))
		return
	}
	for name, e := range env {
		key := "env." + name
		if !envRE.MatchString(name) {
			v.addf(key, "variable name: want A-Z, 0-9 and '_', starting with a letter")
		}
		switch e.Type {
		case "string", "secret":
		case "":
			v.addf(key+".type", "is required (string or secret)")
		default:
			v.addf(key+".type", "%q: want string or secret", e.Type)
		}
		if e.Type == "secret" && e.Default != "" {
			v.addf(key+".default", "a secret has no default")
		}
		v.str(key+".request", e.Request, false, maxString)
		v.str(key+".description", e.Description, false, maxString)
		v.str(key+".default", e.Default, false, maxString)
	}
}

func (v *validator) tools(m *Manifest) {
	if !v.list("tool", len(m.Tools)) {
		return
	}
	seen := map[string]bool{}
	for i := range m.Tools {
		t := &m.Tools[i]
		key := "tool." + strconv.Itoa(i)
		if v.str(key+".name", t.Name, true, 64) {
			if !toolRE.MatchString(t.Name) {
				v.addf(key+".name", "%q: want 1-64 of a-z, 0-9 and '_'", t.Name)
			} else if seen[t.Name] {
				v.addf(key+".name", "tool %q is declared twice", t.Name)
			}
			seen[t.Name] = true
		}
		v.str(key+".description", t.Description, true, maxLongString)
		var schema []byte
		switch s := t.InputSchema.(type) {
		case nil:
			schema = []byte(`{"type":"object"}`)
		case string:
			schema = []byte(s)
		case map[string]any:
			b, err := json.Marshal(s)
			if err != nil {
				v.addf(key+".input_schema", "cannot be written as JSON: %v", err)
				continue
			}
			schema = b
		default:
			v.addf(key+".input_schema", "want a table or a JSON string")
			continue
		}
		var obj map[string]any
		if len(schema) > maxSchema {
			v.addf(key+".input_schema", "is larger than %d bytes", maxSchema)
		} else if err := json.Unmarshal(schema, &obj); err != nil || obj == nil {
			v.addf(key+".input_schema", "is not a JSON object")
		} else if typ, _ := obj["type"].(string); typ != "object" {
			v.addf(key+".input_schema", "type must be \"object\"")
		} else {
			var buf bytes.Buffer
			if err := json.Compact(&buf, schema); err == nil {
				t.Schema = buf.Bytes()
			}
		}
	}
	if len(m.Tools) > 0 && m.Component == nil {
		v.addf("tool", "tools need a [component] to run them")
	}
}

func (v *validator) static(m *Manifest) {
	if v.list("command", len(m.Commands)) {
		seen := map[string]bool{}
		for i, c := range m.Commands {
			key := "command." + strconv.Itoa(i)
			if v.str(key+".name", c.Name, true, 64) && (!toolRE.MatchString(c.Name) || seen[c.Name]) {
				v.addf(key+".name", "%q: want a unique name of a-z, 0-9 and '_'", c.Name)
			}
			seen[c.Name] = true
			v.str(key+".description", c.Description, false, maxString)
			v.str(key+".prompt", c.Prompt, true, maxLongString)
		}
	}
	if v.list("context_file", len(m.ContextFiles)) {
		for i, c := range m.ContextFiles {
			key := "context_file." + strconv.Itoa(i)
			if v.str(key+".path", c.Path, true, 256) && !relPath(c.Path) {
				v.addf(key+".path", "%q: want a relative path inside the capsule directory", c.Path)
			}
			v.str(key+".description", c.Description, false, maxString)
		}
	}
	if v.list("skill", len(m.Skills)) {
		for i, s := range m.Skills {
			key := "skill." + strconv.Itoa(i)
			if v.str(key+".name", s.Name, true, 64) && !toolRE.MatchString(s.Name) {
				v.addf(key+".name", "%q: want a-z, 0-9 and '_'", s.Name)
			}
			v.str(key+".description", s.Description, false, maxString)
			if v.str(key+".path", s.Path, true, 256) && !relPath(s.Path) {
				v.addf(key+".path", "%q: want a relative path inside the capsule directory", s.Path)
			}
		}
	}
}

func (v *validator) cron(m *Manifest) {
	if !v.list("cron", len(m.Cron)) {
		return
	}
	g := gronx.New()
	seen := map[string]bool{}
	for i, c := range m.Cron {
		key := "cron." + strconv.Itoa(i)
		if v.str(key+".name", c.Name, true, 64) && (!toolRE.MatchString(c.Name) || seen[c.Name]) {
			v.addf(key+".name", "%q: want a unique name of a-z, 0-9 and '_'", c.Name)
		}
		seen[c.Name] = true
		if v.str(key+".schedule", c.Schedule, true, 128) && !g.IsValid(c.Schedule) {
			v.addf(key+".schedule", "%q is not a valid cron expression", c.Schedule)
		}
		v.str(key+".action", c.Action, false, maxString)
	}
	if len(m.Cron) > 0 && m.Component == nil {
		v.addf("cron", "cron jobs need a [component] to run them")
	}
}

func (v *validator) rest(m *Manifest) {
	if v.list("mcp_server", len(m.MCPServers)) {
		for i, s := range m.MCPServers {
			key := "mcp_server." + strconv.Itoa(i)
			if v.str(key+".name", s.Name, true, 64) && !nameRE.MatchString(s.Name) {
				v.addf(key+".name", "%q: want a-z, 0-9, '_' and '-', starting with a letter", s.Name)
			}
			if v.str(key+".command", s.Command, true, 1024) && s.Command != "" && strings.Contains(s.Command, "/") && !strings.HasPrefix(s.Command, "/") && !relPath(s.Command) {
				v.addf(key+".command", "%q: a command inside the capsule is a clean relative path such as \"bin/server\"", s.Command)
			}
			if v.list(key+".args", len(s.Args)) {
				for _, a := range s.Args {
					v.str(key+".args", a, false, maxString)
				}
			}
			for k, val := range s.Env {
				if !envRE.MatchString(k) {
					v.addf(key+".env."+k, "variable name: want A-Z, 0-9 and '_'")
				}
				v.str(key+".env."+k, val, false, maxString)
			}
		}
	}
	if v.list("interceptor", len(m.Interceptors)) {
		for i, ic := range m.Interceptors {
			key := "interceptor." + strconv.Itoa(i)
			if !slices.Contains(InterceptorEvents, ic.Event) {
				v.addf(key+".event", "%q: want one of %s", ic.Event, strings.Join(InterceptorEvents, ", "))
			}
			if ic.Tool != "" && !toolRE.MatchString(ic.Tool) {
				v.addf(key+".tool", "%q is not a tool name", ic.Tool)
			}
		}
		if len(m.Interceptors) > 0 && m.Component == nil {
			v.addf("interceptor", "interceptors need a [component] to run them")
		}
	}
	if v.list("uplink", len(m.Uplinks)) {
		for i, u := range m.Uplinks {
			key := "uplink." + strconv.Itoa(i)
			if v.str(key+".name", u.Name, true, 64) && !nameRE.MatchString(u.Name) {
				v.addf(key+".name", "%q: want a-z, 0-9, '_' and '-', starting with a letter", u.Name)
			}
			v.str(key+".description", u.Description, false, maxString)
		}
	}
	if v.list("llm_provider", len(m.LLMProviders)) {
		for i, p := range m.LLMProviders {
			key := "llm_provider." + strconv.Itoa(i)
			if v.str(key+".name", p.Name, true, 64) && !nameRE.MatchString(p.Name) {
				v.addf(key+".name", "%q: want a-z, 0-9, '_' and '-', starting with a letter", p.Name)
			}
			v.str(key+".description", p.Description, false, maxString)
			if v.list(key+".models", len(p.Models)) {
				for _, mo := range p.Models {
					v.str(key+".models", mo, true, 256)
				}
			}
		}
	}
	if len(m.LLMProviders) > 0 && m.Component == nil {
		v.addf("llm_provider", "model providers need a [component] to run them")
	}
	if len(m.Dependencies) > maxList {
		v.addf("dependencies", "has more than %d entries", maxList)
	}
	for name, req := range m.Dependencies {
		if !nameRE.MatchString(name) {
			v.addf("dependencies."+name, "capsule name: want a-z, 0-9, '_' and '-', starting with a letter")
		}
		v.str("dependencies."+name, req, true, 64)
	}
}

// semverish accepts MAJOR.MINOR.PATCH with an optional -pre or +build
// suffix.
func semverish(s string) bool {
	core, _, _ := strings.Cut(s, "+")
	core, _, _ = strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 9 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// relPath reports whether p is a clean relative slash path without "..".
func relPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && path.Clean(p) == p && p != "." &&
		!slices.Contains(strings.Split(p, "/"), "..") && !strings.ContainsAny(p, "\\\x00")
}

// SplitHost parses a capabilities.net entry: "host" or "host:port", a DNS
// name or an IP address, lower case, no globs. A bare host allows ports 80
// and 443 (port 0 is returned).
func SplitHost(s string) (host string, port int, err error) {
	host = s
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return "", 0, fmt.Errorf("host %q: port must be 1-65535", s)
		}
		host, port = h, n
	}
	if host == "" || len(host) > 253 {
		return "", 0, fmt.Errorf("host %q: empty or too long", s)
	}
	if net.ParseIP(host) != nil {
		return host, port, nil
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return "", 0, fmt.Errorf("host %q: bad label", s)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", 0, fmt.Errorf("host %q: want a lower-case DNS name or an IP address (no globs)", s)
			}
		}
	}
	return host, port, nil
}

// HashHex returns the hex digits of a "blake3:..." manifest hash ("" when
// the hash is empty).
func (c *Component) HashHex() string {
	return strings.TrimPrefix(c.Hash, "blake3:")
}

// hashBytes decodes a validated "blake3:..." hash.
func hashBytes(h string) ([]byte, error) {
	if !hashRE.MatchString(h) {
		return nil, fmt.Errorf("hash %q: want blake3: and 64 hex digits", h)
	}
	return hex.DecodeString(strings.TrimPrefix(h, "blake3:"))
}

// keyPositions maps every dotted key path of data to its line and column.
// Array tables get their index as a path element ("tool.0.name").
func keyPositions(data []byte) map[string][2]int {
	lines := []int{0}
	for i, c := range data {
		if c == '\n' {
			lines = append(lines, i+1)
		}
	}
	at := func(off uint32) [2]int {
		o := int(off)
		i := sort.Search(len(lines), func(i int) bool { return lines[i] > o }) - 1
		i = max(i, 0)
		return [2]int{i + 1, o - lines[i] + 1}
	}
	out := map[string][2]int{}
	counts := map[string]int{}
	join := func(prefix string, keys *unstable.Node) string {
		full := prefix
		for k := keys; k.Valid(); k = k.Next() {
			if full != "" {
				full += "."
			}
			full += string(k.Data)
			if _, ok := out[full]; !ok {
				out[full] = at(k.Raw.Offset)
			}
		}
		return full
	}
	var visitKV func(prefix string, kv *unstable.Node)
	visitKV = func(prefix string, kv *unstable.Node) {
		val := kv.Value()
		full := join(prefix, val.Next())
		if val.Kind == unstable.InlineTable {
			for c := val.Child(); c.Valid(); c = c.Next() {
				if c.Kind == unstable.KeyValue {
					visitKV(full, c)
				}
			}
		}
	}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = join("", e.Child())
		case unstable.ArrayTable:
			name := ""
			for k := e.Child(); k.Valid(); k = k.Next() {
				if name != "" {
					name += "."
				}
				name += string(k.Data)
			}
			n := counts[name]
			counts[name]++
			table = name + "." + strconv.Itoa(n)
			if _, ok := out[table]; !ok {
				out[table] = at(e.Child().Raw.Offset)
			}
			if _, ok := out[name]; !ok {
				out[name] = out[table]
			}
		case unstable.KeyValue:
			visitKV(table, e)
		}
	}
	return out
}
