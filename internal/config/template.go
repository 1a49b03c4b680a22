package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
)

// WorkspaceTemplate returns the commented workspace config that `astrid
// init` writes: every key the workspace layer may set, commented out, with
// its default value and its rule. The template itself, and the file you get
// by uncommenting every key, are valid workspace layers.
func WorkspaceTemplate() ([]byte, error) {
	res, err := resolve([]source{{layer: LayerDefault, file: defaultsFile, data: defaultsTOML, exists: true}}, nil)
	if err != nil {
		return nil, fmt.Errorf("embedded defaults: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(`# Astrid workspace configuration.
#
# This file can only TIGHTEN the system and user configuration: limits only
# go down, deny lists only grow, allow lists only shrink, modes only get
# stricter. Anything looser is an error (see "astrid config validate").
# It cannot set API keys, URLs, tokens, trusted keys or the gateway, and it
# cannot read environment variables (${VAR}).
#
# Uncomment a line to use it. The values shown are the built-in defaults,
# except deny lists, which start empty here: their entries are added.
`)
	v := reflect.ValueOf(res.Config).Elem()
	for i := range v.NumField() {
		templateSection(&b, []string{tagName(v.Type().Field(i))}, v.Field(i))
	}
	b.WriteString(`
# MCP servers the workspace adds are never trusted and never auto-started,
# and servers defined by the system or user config cannot be changed here.
# [servers.example]
# transport = "stdio"            # or "streamable-http" with url = "https://..."
# command = "example-mcp-server"
# args = ["--root", "."]
`)
	return b.Bytes(), nil
}

func templateSection(b *bytes.Buffer, path []string, v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return // servers and pricing: see WorkspaceTemplate
	}
	var lines []string
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Type.Kind() == reflect.Struct || f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct {
			continue
		}
		key := append(path[:len(path):len(path)], tagName(f))
		fd := fields[strings.Join(key, ".")]
		if fd.ws == wsDeny {
			continue
		}
		val := v.Field(i).Interface()
		if fd.ws == wsUnion {
			val = []string{} // entries are added to the base, so start empty
		}
		lines = append(lines, fmt.Sprintf("# %s = %s  # %s", tagName(f), formatFileValue(val), ruleHint(fd)))
	}
	if len(lines) > 0 {
		fmt.Fprintf(b, "\n[%s]\n%s\n", joinKey(path), strings.Join(lines, "\n"))
	}
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.Struct {
			templateSection(b, append(path[:len(path):len(path)], tagName(v.Type().Field(i))), v.Field(i))
		}
	}
}

func ruleHint(f field) string {
	switch f.ws {
	case wsLower:
		if f.zeroUnlimited {
			return "may only be lowered (0 = unlimited)"
		}
		return "may only be lowered"
	case wsUnion:
		return "entries are added to the base list"
	case wsSubset:
		return "may only remove entries of the base list"
	case wsStricter:
		return "may only get stricter: " + strings.Join(f.order, " → ")
	case wsTrueOnly:
		return "may only be set to true"
	case wsFalseOnly:
		return "may only be set to false"
	}
	return f.ws.String()
}
