package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// source is one layer's input to resolve: what Load read from disk.
type source struct {
	layer  Layer
	file   string
	data   []byte
	exists bool
}

// envFill maps an environment variable to the key it fills. when, if set,
// restricts it to some providers.
type envFill struct {
	name      string
	key       string
	providers []string
}

// envFills are applied in order; the provider is filled first because the
// api key and url variables depend on it.
var envFills = []envFill{
	{name: "ASTRID_MODEL_PROVIDER", key: "model.provider"},
	{name: "ASTRID_MODEL", key: "model.model"},
	{name: "ANTHROPIC_API_KEY", key: "model.api_key", providers: []string{"anthropic", "claude"}},
	{name: "ANTHROPIC_BASE_URL", key: "model.api_url", providers: []string{"anthropic", "claude"}},
	{name: "OPENAI_API_KEY", key: "model.api_key", providers: []string{"openai"}},
	{name: "OPENAI_BASE_URL", key: "model.api_url", providers: []string{"openai"}},
	{name: "ZAI_API_KEY", key: "model.api_key", providers: []string{"zai"}},
	{name: "TELEGRAM_BOT_TOKEN", key: "telegram.bot_token"},
}

// serverDefaults are the values of server fields no layer set.
var serverDefaults = map[string]any{
	"transport":      "",
	"command":        "",
	"args":           []string{},
	"url":            "",
	"env":            map[string]string{},
	"cwd":            "",
	"binary_hash":    "",
	"auto_start":     false,
	"trusted":        false,
	"restart_policy": "never",

	"oauth.client_id":           "",
	"oauth.client_secret":       "",
	"oauth.scopes":              []string{},
	"oauth.redirect_url":        "",
	"oauth.client_metadata_url": "",
	"oauth.grant":               "",
	"oauth.private_key_file":    "",
}

// resolve merges the layers and validates the result. It does no I/O:
// sources carry the file contents and getenv the environment. sources must
// be in layer order (defaults, system, user, workspace); a source that does
// not exist contributes nothing.
func resolve(sources []source, getenv func(string) string) (*Resolved, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	errs := &errorList{}
	for _, s := range sources {
		errs.files = append(errs.files, s.file)
	}
	res := &Resolved{Origins: map[string]Layer{}}
	merged := map[string]*entry{}
	var docs []*layerDoc
	for _, s := range sources {
		res.Layers = append(res.Layers, LayerInfo{Name: s.layer, Path: s.file, Exists: s.exists})
		if !s.exists {
			docs = append(docs, nil)
			continue
		}
		mode := expandEnv
		if s.layer == LayerWorkspace {
			mode = expandForbid
		}
		docs = append(docs, decodeLayer(s.layer, s.file, s.data, mode, getenv, errs))
	}
	// Defaults, system and user override key by key, in that order.
	for i, doc := range docs {
		if doc == nil || sources[i].layer == LayerWorkspace {
			continue
		}
		for _, e := range doc.entries {
			merged[e.key] = e
		}
	}
	// The environment fills what no file set.
	fillFromEnv(merged, getenv, errs)
	checkLimits(merged, errs)
	// The workspace can only tighten the result.
	for i, doc := range docs {
		if doc != nil && sources[i].layer == LayerWorkspace {
			applyWorkspace(merged, doc, errs)
			clampLimits(merged)
		}
	}
	fillServerDefaults(merged)
	checkServers(merged, errs)
	if all := errs.sorted(); len(all) > 0 {
		return nil, all
	}
	cfg := &Config{}
	for _, k := range sortedKeys(merged) {
		e := merged[k]
		if err := setPath(reflect.ValueOf(cfg).Elem(), e.path, e.val); err != nil {
			errs.add(e.file, e.pos, e.key, "internal error: %v", err)
			continue
		}
		res.Origins[k] = e.layer
	}
	if all := errs.sorted(); len(all) > 0 {
		return nil, all
	}
	if cfg.Servers == nil {
		cfg.Servers = map[string]Server{}
	}
	if cfg.Model.Pricing == nil {
		cfg.Model.Pricing = map[string]Pricing{}
	}
	res.Config = cfg
	return res, nil
}

// fillFromEnv sets the keys of envFills that no file layer set (their origin
// is still the defaults) from non-empty environment variables.
func fillFromEnv(merged map[string]*entry, getenv func(string) string, errs *errorList) {
	for _, f := range envFills {
		cur := merged[f.key]
		if cur == nil || cur.layer != LayerDefault {
			continue
		}
		v := getenv(f.name)
		if v == "" {
			continue
		}
		if len(f.providers) > 0 {
			p, _ := merged["model.provider"].val.(string)
			if !slices.Contains(f.providers, p) {
				continue
			}
		}
		file := "env:" + f.name
		if err := fields[cur.pattern].check(v); err != nil {
			errs.add(file, Pos{}, f.key, "%v", err)
			continue
		}
		merged[f.key] = &entry{path: cur.path, key: cur.key, pattern: cur.pattern, val: v, layer: Layer(file), file: file}
	}
}

// fillServerDefaults gives every field of every configured server a value,
// with the defaults layer as origin.
func fillServerDefaults(merged map[string]*entry) {
	names := map[string][]string{}
	for _, e := range merged {
		if len(e.path) >= 3 && e.path[0] == "servers" {
			names[e.path[1]] = e.path[:2]
		}
	}
	for _, prefix := range names {
		for field, v := range serverDefaults {
			path := append(slices.Clip(prefix), strings.Split(field, ".")...)
			key := joinKey(path)
			if _, ok := merged[key]; ok {
				continue
			}
			merged[key] = &entry{path: path, key: key, pattern: "servers.*." + field, val: v, layer: LayerDefault, file: defaultsFile}
		}
	}
}

// checkLimits validates the rules between limits of the system, user and
// env layers. Each error is reported at the first key it names; keys that
// already have an error are skipped.
func checkLimits(merged map[string]*entry, errs *errorList) {
	get := func(key string) *entry {
		if errs.bad[key] {
			return nil
		}
		return merged[key]
	}
	report := func(e *entry, format string, args ...any) {
		errs.add(e.file, e.pos, e.key, format, args...)
	}
	for _, p := range limitPairs {
		lo, hi := get(p.lower), get(p.upper)
		if lo != nil && hi != nil && number(lo.val) > number(hi.val) {
			report(lo, "%s is higher than %s %s", formatValue(lo.val), p.upper, formatValue(hi.val))
		}
	}
}

// limitPairs are keys whose value must not exceed another's.
var limitPairs = []struct{ lower, upper string }{
	{"budget.per_action_max_usd", "budget.session_max_usd"},
	{"runtime.max_context_tokens", "model.context_window"},
	{"retry.initial_backoff_ms", "retry.max_backoff_ms"},
}

// clampLimits lowers the first key of each limit pair to the second when
// the workspace layer lowered the second below it: lowering the session
// budget also caps the per-action budget. It only ever lowers a value, and
// the origin of a lowered value is the workspace.
func clampLimits(merged map[string]*entry) {
	for _, p := range limitPairs {
		lo, hi := merged[p.lower], merged[p.upper]
		if lo == nil || hi == nil || hi.layer != LayerWorkspace || number(lo.val) <= number(hi.val) {
			continue
		}
		c := withVal(lo, hi.val)
		c.layer, c.file, c.pos = hi.layer, hi.file, hi.pos
		merged[p.lower] = c
	}
}

// checkServers validates each MCP server's transport against its command
// and url, skipping servers that already have an error.
func checkServers(merged map[string]*entry, errs *errorList) {
	report := func(e *entry, format string, args ...any) {
		errs.add(e.file, e.pos, e.key, format, args...)
	}
	for _, k := range sortedKeys(merged) {
		t := merged[k]
		if len(t.path) != 3 || t.path[0] != "servers" || t.path[2] != "transport" {
			continue
		}
		prefix := joinKey(t.path[:2])
		if slices.ContainsFunc(sortedKeys(errs.bad), func(k string) bool { return k == prefix || strings.HasPrefix(k, prefix+".") }) {
			continue
		}
		cmd, _ := merged[prefix+".command"].val.(string)
		u, _ := merged[prefix+".url"].val.(string)
		switch t.val {
		case "":
			// Point at what the user wrote, not at the filled-in default.
			at := t
			if e := firstServerEntry(merged, prefix); e != nil {
				at = e
			}
			errs.add(at.file, at.pos, t.key, "server %q needs a transport (stdio or streamable-http)", t.path[1])
		case "stdio":
			if cmd == "" {
				report(t, "a stdio server needs a command")
			}
			if u != "" {
				report(merged[prefix+".url"], "url is only for the streamable-http transport")
			}
		case "streamable-http":
			if u == "" {
				report(t, "a streamable-http server needs a url")
			}
			if cmd != "" {
				report(merged[prefix+".command"], "command is only for the stdio transport")
			}
		}
		checkServerOAuth(merged, prefix, t.val == "streamable-http", report)
	}
}

// checkServerOAuth validates a server's [oauth] table against its
// transport: only a streamable-http server sets one, and a client secret
// needs its client id. Empty values count as unset.
func checkServerOAuth(merged map[string]*entry, prefix string, http bool, report func(*entry, string, ...any)) {
	for _, k := range sortedKeys(merged) {
		e := merged[k]
		if !strings.HasPrefix(k, prefix+".oauth.") || isZero(e.val) {
			continue
		}
		if !http {
			report(e, "oauth is only for the streamable-http transport")
			return
		}
	}
	set := func(field string) *entry {
		if e := merged[prefix+".oauth."+field]; e != nil && !isZero(e.val) {
			return e
		}
		return nil
	}
	secret, key, id := set("client_secret"), set("private_key_file"), set("client_id")
	if secret != nil && id == nil {
		report(secret, "a client_secret needs a client_id")
	}
	if key != nil && id == nil {
		report(key, "a private_key_file needs a client_id")
	}
	if secret != nil && key != nil {
		report(key, "a client authenticates with a client_secret or a private_key_file, not both")
	}
	if g := set("grant"); g != nil && g.val == GrantClientCredentials && (id == nil || secret == nil && key == nil) {
		report(g, "the client_credentials grant needs a client_id and a client_secret or private_key_file")
	}
}

// isZero reports whether a leaf value is empty: "", an empty list or map.
func isZero(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case []string:
		return len(x) == 0
	case map[string]string:
		return len(x) == 0
	}
	return false
}

// firstServerEntry returns the first entry of a server set by a file.
func firstServerEntry(merged map[string]*entry, prefix string) *entry {
	for _, k := range sortedKeys(merged) {
		if e := merged[k]; strings.HasPrefix(k, prefix+".") && e.layer != LayerDefault {
			return e
		}
	}
	return nil
}

// workspaceCredentials are the server fields a workspace cannot set, with
// what setting one would do: a repository must not make Astrid present
// the user's credentials to a server it names.
var workspaceCredentials = map[string]string{
	"servers.*.oauth.client_secret":    "set a client secret",
	"servers.*.oauth.private_key_file": "name a private key",
}

// applyWorkspace merges the workspace layer into merged under the
// tighten-only rules, reporting every attempt to loosen.
func applyWorkspace(merged map[string]*entry, doc *layerDoc, errs *errorList) {
	servers := map[string][]*entry{}
	for _, w := range doc.entries {
		f := fields[w.pattern]
		if f.ws == wsServer {
			servers[w.path[1]] = append(servers[w.path[1]], w)
			continue
		}
		base := merged[w.key]
		reject := func(format string, args ...any) {
			errs.add(w.file, w.pos, w.key, format, args...)
		}
		if base == nil || f.ws == wsDeny {
			reject("the workspace layer cannot set this key (only %s and user config can)", LayerSystem)
			continue
		}
		from := describe(base)
		switch f.ws {
		case wsLower:
			wv, bv := number(w.val), number(base.val)
			switch {
			case f.zeroUnlimited && bv == 0:
			case f.zeroUnlimited && wv == 0:
				reject("0 (unlimited) would loosen %s from %s: the workspace layer can only lower it", formatValue(base.val), from)
				continue
			case wv > bv:
				reject("%s is higher than %s from %s: the workspace layer can only lower it", formatValue(w.val), formatValue(base.val), from)
				continue
			}
			merged[w.key] = w
		case wsUnion:
			out := slices.Clone(base.val.([]string))
			for _, s := range w.val.([]string) {
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
			merged[w.key] = withVal(w, out)
		case wsSubset:
			bl := base.val.([]string)
			var extra []string
			for _, s := range w.val.([]string) {
				if !slices.Contains(bl, s) {
					extra = append(extra, quoteString(s))
				}
			}
			if len(extra) > 0 {
				reject("%s not in the list from %s: the workspace layer can only remove entries", strings.Join(extra, ", "), from)
				continue
			}
			merged[w.key] = w
		case wsStricter:
			wi, bi := slices.Index(f.order, w.val.(string)), slices.Index(f.order, base.val.(string))
			if wi < bi {
				reject("%q is looser than %q from %s: the workspace layer can only choose a stricter value (%s)", w.val, base.val, from, strings.Join(f.order, " → "))
				continue
			}
			merged[w.key] = w
		case wsTrueOnly:
			if !w.val.(bool) && base.val.(bool) {
				reject("cannot turn off what %s turned on: the workspace layer can only set it to true", from)
				continue
			}
			merged[w.key] = w
		case wsFalseOnly:
			if w.val.(bool) && !base.val.(bool) {
				reject("cannot turn on what %s turned off: the workspace layer can only set it to false", from)
				continue
			}
			merged[w.key] = w
		default:
			reject("internal error: unknown workspace rule %v", f.ws)
		}
	}
	for _, name := range sortedKeys(servers) {
		applyWorkspaceServer(merged, doc, name, servers[name], errs)
	}
}

// applyWorkspaceServer adds one MCP server defined by the workspace layer.
// It may not touch a server an earlier layer defined; the servers it adds
// are never trusted and never auto-started (setting either to true is an
// error, not silently ignored).
func applyWorkspaceServer(merged map[string]*entry, doc *layerDoc, name string, ws []*entry, errs *errorList) {
	prefix := joinKey([]string{"servers", name})
	for _, k := range sortedKeys(merged) {
		if e := merged[k]; strings.HasPrefix(k, prefix+".") {
			for _, w := range ws {
				errs.add(w.file, w.pos, w.key, "server %q is defined by %s: the workspace layer cannot modify it", name, describe(e))
			}
			return
		}
	}
	ok := true
	for _, w := range ws {
		field := w.path[2]
		if (field == "trusted" || field == "auto_start") && w.val == true {
			errs.add(w.file, w.pos, w.key, "servers added by the workspace layer are never trusted and never auto-started")
			ok = false
		}
		if what, credential := workspaceCredentials[w.pattern]; credential && !isZero(w.val) {
			errs.add(w.file, w.pos, w.key, "the workspace layer cannot %s (only %s and user config can)", what, LayerSystem)
			ok = false
		}
	}
	if !ok {
		return
	}
	for _, w := range ws {
		merged[w.key] = w
	}
	for _, field := range []string{"trusted", "auto_start"} {
		path := []string{"servers", name, field}
		key := joinKey(path)
		merged[key] = &entry{path: path, key: key, pattern: "servers.*." + field, val: false, layer: LayerWorkspace, file: doc.file, pos: doc.tables[prefix]}
	}
}

// describe names the layer an entry came from, for error messages.
func describe(e *entry) string {
	switch e.layer {
	case LayerDefault:
		return "the defaults"
	case LayerSystem, LayerUser, LayerWorkspace:
		return fmt.Sprintf("%s config %s", e.layer, e.file)
	}
	return string(e.layer)
}

func withVal(e *entry, v any) *entry {
	c := *e
	c.val = v
	return &c
}

func number(v any) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

// setPath stores v at path inside the struct value root.
func setPath(root reflect.Value, path []string, v any) error {
	cur := root
	for i, part := range path {
		switch cur.Kind() {
		case reflect.Struct:
			f, ok := fieldByTag(cur.Type(), part)
			if !ok {
				return fmt.Errorf("no field %q", part)
			}
			cur = cur.FieldByIndex(f.Index)
		case reflect.Map:
			if cur.Type().Elem().Kind() != reflect.Struct {
				return fmt.Errorf("cannot descend into %s", cur.Type())
			}
			if cur.IsNil() {
				cur.Set(reflect.MakeMap(cur.Type()))
			}
			k := reflect.ValueOf(part)
			elem := reflect.New(cur.Type().Elem()).Elem()
			if old := cur.MapIndex(k); old.IsValid() {
				elem.Set(old)
			}
			if err := setPath(elem, path[i+1:], v); err != nil {
				return err
			}
			cur.SetMapIndex(k, elem)
			return nil
		default:
			return fmt.Errorf("cannot descend into %s", cur.Type())
		}
	}
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Type() != cur.Type() {
		return fmt.Errorf("value of type %T does not fit %s", v, cur.Type())
	}
	cur.Set(rv)
	return nil
}
