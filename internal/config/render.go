package config

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"reflect"
	"strconv"
	"strings"
)

// Redacted returns a deep copy of c with secrets masked: model.api_key and
// the bot tokens keep their first four characters when they are long enough
// ("sk-a…(masked)"), and become "********" otherwise; every value of a
// server's env table becomes "********", since env is where secrets are
// passed to MCP servers, and so does a server's oauth.client_secret.
// Empty values stay empty.
func (c *Config) Redacted() *Config {
	out := *c
	out.Model.APIKey = mask(c.Model.APIKey)
	out.Telegram.BotToken = mask(c.Telegram.BotToken)
	out.Discord.BotToken = mask(c.Discord.BotToken)
	out.Model.Pricing = maps.Clone(c.Model.Pricing)
	out.Servers = make(map[string]Server, len(c.Servers))
	for name, s := range c.Servers {
		s.Args = append([]string(nil), s.Args...)
		env := make(map[string]string, len(s.Env))
		for k, v := range s.Env {
			env[k] = v
			if v != "" {
				env[k] = "********"
			}
		}
		s.Env = env
		s.OAuth.Scopes = append([]string(nil), s.OAuth.Scopes...)
		s.OAuth.ClientSecret = mask(s.OAuth.ClientSecret)
		out.Servers[name] = s
	}
	return &out
}

// maskedSuffix ends a masked value; masking is idempotent, so `config show`
// output loaded again shows the same thing.
const maskedSuffix = "…(masked)"

func mask(s string) string {
	switch {
	case s == "", s == "********", strings.HasSuffix(s, maskedSuffix):
		return s
	case len(s) >= 16:
		return s[:4] + maskedSuffix
	default:
		return "********"
	}
}

// WriteTOML writes c as a TOML document that decodes to the same
// configuration (secrets are not masked here; pass a Redacted copy). When
// origin is non-nil, each key gets a comment naming the layer that set it,
// as origin returns it ("from user (/home/u/.astrid/config.toml)"); origin
// receives the dotted key.
func (c *Config) WriteTOML(w io.Writer, origin func(key string) string) error {
	bw := bufio.NewWriter(w)
	r := &tomlWriter{w: bw, origin: origin}
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		r.section([]string{tagName(v.Type().Field(i))}, v.Field(i))
	}
	return bw.Flush()
}

type tomlWriter struct {
	w      *bufio.Writer
	origin func(string) string
	n      int // headers written
}

func (r *tomlWriter) section(path []string, v reflect.Value) {
	if v.Kind() == reflect.Map {
		for _, k := range sortedMapKeys(v) {
			r.section(append(path[:len(path):len(path)], k), v.MapIndex(reflect.ValueOf(k)))
		}
		return
	}
	if r.n > 0 {
		r.w.WriteString("\n")
	}
	r.n++
	fmt.Fprintf(r.w, "[%s]\n", joinKey(path))
	var sub []int
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Struct || (f.Kind() == reflect.Map && f.Type().Elem().Kind() == reflect.Struct) {
			sub = append(sub, i)
			continue
		}
		name := tagName(v.Type().Field(i))
		line := joinKey([]string{name}) + " = " + formatFileValue(f.Interface())
		if r.origin != nil {
			if o := r.origin(joinKey(append(path[:len(path):len(path)], name))); o != "" {
				line += "  # " + o
			}
		}
		r.w.WriteString(line + "\n")
	}
	for _, i := range sub {
		r.section(append(path[:len(path):len(path)], tagName(v.Type().Field(i))), v.Field(i))
	}
}

func sortedMapKeys(v reflect.Value) []string {
	m := map[string]struct{}{}
	for _, k := range v.MapKeys() {
		m[k.String()] = struct{}{}
	}
	return sortedKeys(m)
}

// formatValue renders a leaf value as TOML, for messages.
func formatValue(v any) string { return formatValueEsc(v, false) }

// formatFileValue renders a leaf value as TOML for a config file: a "$" in
// a string is written "$$" so that loading the file gives the same value.
func formatFileValue(v any) string { return formatValueEsc(v, true) }

func formatValueEsc(v any, dollars bool) string {
	q := quoteString
	if dollars {
		q = func(s string) string { return quoteString(strings.ReplaceAll(s, "$", "$$")) }
	}
	switch x := v.(type) {
	case string:
		return q(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return fmtFloat(x)
	case bool:
		return strconv.FormatBool(x)
	case []string:
		parts := make([]string, len(x))
		for i, s := range x {
			parts[i] = q(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []int64:
		parts := make([]string, len(x))
		for i, n := range x {
			parts[i] = strconv.FormatInt(n, 10)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]string:
		if len(x) == 0 {
			return "{}"
		}
		parts := make([]string, 0, len(x))
		for _, k := range sortedKeys(x) {
			parts = append(parts, joinKey([]string{k})+" = "+q(x[k]))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return fmt.Sprintf("%v", v)
}
