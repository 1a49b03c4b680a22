package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Import of the "mcpServers" JSON format other MCP hosts use (Claude
// Desktop's claude_desktop_config.json, Cursor's mcp.json, ...):
//
//	{"mcpServers": {
//	  "fs":  {"command": "npx", "args": ["-y", "pkg"], "env": {"K": "V"}},
//	  "api": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"}}
//	}}
//
// A server with a command becomes a stdio server; one with a url a
// streamable-http server, its headers env entries HEADER_<Name> with each
// '-' of the name a '_' (the MCP client sends them as headers, '_' back to
// '-'; a header name with '_' of its own cannot be imported). Values are taken literally: a "$" is
// written "$$" so that no ${VAR} is expanded from what the file said.
// Nothing grants trust: imported servers are untrusted and not
// auto-started until the user says otherwise. Auto-approval lists other
// hosts keep (autoApprove, alwaysAllow) are not imported.

// ImportedServer is one server read from an mcpServers file.
type ImportedServer struct {
	Name   string
	Server Server
}

// ImportError is a bad entry of an mcpServers file; Path is its JSON path
// (mcpServers["fs"].args[1]).
type ImportError struct {
	Path string
	Msg  string
}

func (e *ImportError) Error() string { return e.Path + ": " + e.Msg }

// ignoredImportKeys are keys of other hosts' entries that have no
// equivalent and are dropped with a warning.
var ignoredImportKeys = []string{"autoApprove", "alwaysAllow", "disabled", "timeout", "description"}

// ParseMCPServers reads an mcpServers JSON document. It returns the
// servers in the file's order, warnings about what was not imported, and
// every bad entry as an *ImportError (joined).
func ParseMCPServers(data []byte) ([]ImportedServer, []string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, &ImportError{Path: "$", Msg: "not a JSON object: " + err.Error()}
	}
	raw, ok := top["mcpServers"]
	if !ok {
		return nil, nil, &ImportError{Path: "$", Msg: `no "mcpServers" object`}
	}
	names, entries, err := orderedObject(raw)
	if err != nil {
		return nil, nil, &ImportError{Path: "mcpServers", Msg: err.Error()}
	}
	var out []ImportedServer
	var warns []string
	var errs []error
	for i, name := range names {
		path := "mcpServers[" + quoteJSON(name) + "]"
		s, w, err := importServer(path, name, entries[i])
		warns = append(warns, w...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ImportedServer{Name: name, Server: s})
	}
	if len(errs) > 0 {
		return nil, warns, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, warns, &ImportError{Path: "mcpServers", Msg: "no servers"}
	}
	return out, warns, nil
}

// orderedObject decodes a JSON object keeping its key order; a repeated
// key is an error.
func orderedObject(raw json.RawMessage) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		return nil, nil, errors.New("want a JSON object")
	}
	var names []string
	var vals []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k := tok.(string)
		if slices.Contains(names, k) {
			return nil, nil, fmt.Errorf("%s given twice", quoteJSON(k))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		names, vals = append(names, k), append(vals, v)
	}
	return names, vals, nil
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

var serverNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

var headerNameRE = regexp.MustCompile("^[0-9A-Za-z-]+$")

func importServer(path, name string, raw json.RawMessage) (Server, []string, error) {
	bad := func(sub, format string, args ...any) error {
		return &ImportError{Path: path + sub, Msg: fmt.Sprintf(format, args...)}
	}
	if !serverNameRE.MatchString(name) {
		return Server{}, nil, bad("", "server name must be 1-64 letters, digits, '-' or '_', starting with a letter or digit")
	}
	var e struct {
		Command   *string           `json:"command"`
		Args      []string          `json:"args"`
		Env       map[string]string `json:"env"`
		Cwd       string            `json:"cwd"`
		URL       *string           `json:"url"`
		Headers   map[string]string `json:"headers"`
		Type      string            `json:"type"`
		Transport string            `json:"transport"`
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil || keys == nil {
		return Server{}, nil, bad("", "want a JSON object")
	}
	var warns []string
	known := []string{"command", "args", "env", "cwd", "url", "headers", "type", "transport"}
	for _, k := range sortedKeys(keys) {
		switch {
		case slices.Contains(known, k):
		case slices.Contains(ignoredImportKeys, k):
			warns = append(warns, fmt.Sprintf("%s.%s: not imported (Astrid asks before every call it has no grant for)", path, k))
		default:
			return Server{}, nil, bad("."+k, "unknown key (known: %s)", strings.Join(known, ", "))
		}
	}
	for _, k := range known {
		v, ok := keys[k]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, map[string]any{
			"command": &e.Command, "args": &e.Args, "env": &e.Env, "cwd": &e.Cwd, "url": &e.URL,
			"headers": &e.Headers, "type": &e.Type, "transport": &e.Transport,
		}[k]); err != nil {
			want := map[string]string{"args": "an array of strings", "env": "an object of strings", "headers": "an object of strings"}[k]
			if want == "" {
				want = "a string"
			}
			return Server{}, nil, bad("."+k, "want %s", want)
		}
	}
	kind := e.Type
	if kind == "" {
		kind = e.Transport
	}
	var s Server
	switch {
	case e.Command != nil && e.URL != nil:
		return Server{}, nil, bad("", "has both command and url; want one")
	case e.Command != nil:
		if kind != "" && kind != "stdio" {
			return Server{}, nil, bad(".type", "%q does not go with a command (want stdio)", kind)
		}
		if strings.TrimSpace(*e.Command) == "" {
			return Server{}, nil, bad(".command", "empty")
		}
		if len(e.Headers) > 0 {
			return Server{}, nil, bad(".headers", "headers are for url servers")
		}
		s = Server{Transport: "stdio", Command: *e.Command, Args: e.Args, Env: e.Env, Cwd: e.Cwd}
	case e.URL != nil:
		switch kind {
		case "", "http", "streamable-http", "streamableHttp":
		case "sse":
			return Server{}, nil, bad(".type", "the legacy SSE transport is not supported; Astrid speaks Streamable HTTP")
		default:
			return Server{}, nil, bad(".type", "%q does not go with a url (want http)", kind)
		}
		if !strings.HasPrefix(*e.URL, "https://") && !strings.HasPrefix(*e.URL, "http://") {
			return Server{}, nil, bad(".url", "want an http(s) URL")
		}
		if len(e.Args) > 0 || len(e.Env) > 0 || e.Cwd != "" {
			return Server{}, nil, bad("", "args, env and cwd are for command servers")
		}
		s = Server{Transport: "streamable-http", URL: *e.URL}
		for _, h := range sortedKeys(e.Headers) {
			if !headerNameRE.MatchString(h) {
				return Server{}, nil, bad(".headers["+quoteJSON(h)+"]", "want a header name of letters, digits and '-'")
			}
			if s.Env == nil {
				s.Env = map[string]string{}
			}
			s.Env["HEADER_"+strings.ReplaceAll(h, "-", "_")] = e.Headers[h]
		}
	default:
		return Server{}, nil, bad("", "want a command (stdio) or a url (Streamable HTTP)")
	}
	for k, v := range s.Env {
		if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			return Server{}, nil, bad(".env", "contains NUL")
		}
	}
	return s, warns, nil
}

// RenderServers writes servers as [servers.NAME] tables for a config
// file, in order, with "$" written "$$" (taken literally on load).
func RenderServers(servers []ImportedServer) string {
	var b strings.Builder
	for _, is := range servers {
		s := is.Server
		fmt.Fprintf(&b, "\n[servers.%s]\n", is.Name)
		fmt.Fprintf(&b, "transport = %s\n", formatFileValue(s.Transport))
		if s.Command != "" {
			fmt.Fprintf(&b, "command = %s\n", formatFileValue(s.Command))
		}
		if len(s.Args) > 0 {
			fmt.Fprintf(&b, "args = %s\n", formatFileValue(s.Args))
		}
		if s.URL != "" {
			fmt.Fprintf(&b, "url = %s\n", formatFileValue(s.URL))
		}
		if s.Cwd != "" {
			fmt.Fprintf(&b, "cwd = %s\n", formatFileValue(s.Cwd))
		}
		if len(s.Env) > 0 {
			fmt.Fprintf(&b, "env = %s\n", formatFileValue(s.Env))
		}
	}
	return b.String()
}

// serverTableRE matches the header of a server's table or sub-table.
var serverTableRE = regexp.MustCompile(`^\s*\[\s*servers\s*\.\s*("?)([A-Za-z0-9_-]+)("?)\s*(\.[^\]]*)?\]\s*(#.*)?$`)

var anyTableRE = regexp.MustCompile(`^\s*\[`)

// RemoveServerTables removes the [servers.NAME] table (and its
// [servers.NAME.*] sub-tables) from a config file's text, up to the next
// table header; the rest of the file, comments included, is kept. found
// says whether there was one.
func RemoveServerTables(data []byte, name string) (out []byte, found bool) {
	lines := strings.SplitAfter(string(data), "\n")
	var b strings.Builder
	skipping := false
	for _, l := range lines {
		if anyTableRE.MatchString(l) {
			m := serverTableRE.FindStringSubmatch(strings.TrimRight(l, "\r\n"))
			skipping = m != nil && m[2] == name
			found = found || skipping
		}
		if !skipping {
			b.WriteString(l)
		}
	}
	return []byte(b.String()), found
}
