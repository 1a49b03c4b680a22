package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// rule is what the workspace layer may do with a key. See the package
// documentation for the full table.
type rule int

const (
	// wsDeny: the workspace layer may not set the key at all.
	wsDeny rule = iota
	// wsLower: a number the workspace may only lower. With
	// field.zeroUnlimited, 0 means "no limit": any value lowers an
	// unlimited base, and 0 never lowers a limited one.
	wsLower
	// wsUnion: a deny list the workspace may only grow; the result is the
	// base list followed by the workspace's new entries.
	wsUnion
	// wsSubset: an allow list the workspace may only shrink; every entry it
	// lists must already be in the base list, and the result is its list.
	wsSubset
	// wsStricter: an enum the workspace may only move along field.order,
	// which runs from loosest to strictest.
	wsStricter
	// wsTrueOnly: a boolean the workspace may only turn from false to true.
	wsTrueOnly
	// wsFalseOnly: a boolean the workspace may only turn from true to false.
	wsFalseOnly
	// wsServer: a field of an MCP server; see applyWorkspaceServers.
	wsServer
)

func (r rule) String() string {
	return [...]string{"deny", "lower", "union", "subset", "stricter", "true-only", "false-only", "server"}[r]
}

// field is the schema of one leaf key pattern (map names are "*").
type field struct {
	// check validates a value of the field's Go type; it must not panic on
	// any value of that type.
	check func(any) error
	ws    rule
	// zeroUnlimited marks a wsLower number whose 0 means "no limit".
	zeroUnlimited bool
	// order lists a wsStricter enum's values from loosest to strictest.
	order []string
}

// fields is the schema: every leaf of Config, by pattern. A test checks it
// against the Config type in both directions.
var fields = map[string]field{
	"model.provider":       {check: str(modelProvider), ws: wsDeny},
	"model.model":          {check: str(token(256, false)), ws: wsDeny},
	"model.api_key":        {check: str(token(4096, true)), ws: wsDeny},
	"model.api_url":        {check: str(optional(modelURL)), ws: wsDeny},
	"model.max_tokens":     {check: intIn(1, 1_000_000), ws: wsLower},
	"model.temperature":    {check: floatIn(0, 2), ws: wsDeny},
	"model.context_window": {check: intIn(1, 10_000_000), ws: wsLower},
	// NOTE: pricing is wsDeny: a workspace that could price a model at 0
	// would switch the budget off.
	"model.pricing.*.input_per_mtok":       {check: floatIn(0, 10_000), ws: wsDeny},
	"model.pricing.*.output_per_mtok":      {check: floatIn(0, 10_000), ws: wsDeny},
	"model.pricing.*.cache_read_per_mtok":  {check: floatIn(0, 10_000), ws: wsDeny},
	"model.pricing.*.cache_write_per_mtok": {check: floatIn(0, 10_000), ws: wsDeny},

	"runtime.max_context_tokens": {check: intIn(1, 10_000_000), ws: wsLower},
	// NOTE: the system prompt is wsDeny: a file the agent may have written
	// must not be able to persist instructions into every future session.
	"runtime.system_prompt":       {check: str(noNUL), ws: wsDeny},
	"runtime.auto_summarize":      {check: anyBool, ws: wsDeny},
	"runtime.keep_recent_count":   {check: intIn(0, 10_000), ws: wsDeny},
	"runtime.max_turn_iterations": {check: intIn(1, 10_000), ws: wsLower},

	"security.approval_timeout_secs":               {check: intIn(1, 7*24*3600), ws: wsLower},
	"security.allow_always_ttl_secs":               {check: intIn(1, 366*24*3600), ws: wsLower},
	"security.token_clock_skew_secs":               {check: intIn(0, 3600), ws: wsLower},
	"security.policy.blocked_commands":             {check: strList(commandPattern), ws: wsUnion},
	"security.policy.denied_paths":                 {check: strList(pathGlob(true)), ws: wsUnion},
	"security.policy.denied_hosts":                 {check: strList(hostPattern), ws: wsUnion},
	"security.policy.allowed_hosts":                {check: strList(hostPattern), ws: wsSubset},
	"security.policy.max_argument_size":            {check: intIn(1, 1<<30), ws: wsLower},
	"security.policy.require_approval_for_delete":  {check: anyBool, ws: wsTrueOnly},
	"security.policy.require_approval_for_network": {check: anyBool, ws: wsTrueOnly},

	"budget.session_max_usd":    {check: floatPositive(1_000_000), ws: wsLower},
	"budget.per_action_max_usd": {check: floatPositive(1_000_000), ws: wsLower},
	"budget.workspace_max_usd":  {check: floatIn(0, 1_000_000), ws: wsLower, zeroUnlimited: true},
	"budget.warn_at_percent":    {check: intIn(1, 100), ws: wsLower},

	"rate_limits.requests_per_minute":   {check: intIn(0, 1_000_000), ws: wsLower, zeroUnlimited: true},
	"rate_limits.tool_calls_per_minute": {check: intIn(0, 1_000_000), ws: wsLower, zeroUnlimited: true},

	"servers.*.transport":      {check: str(oneOf("stdio", "streamable-http")), ws: wsServer},
	"servers.*.command":        {check: str(nonEmpty(noNUL)), ws: wsServer},
	"servers.*.args":           {check: strList(noNUL), ws: wsServer},
	"servers.*.url":            {check: str(optional(httpURL("http", "https"))), ws: wsServer},
	"servers.*.env":            {check: envMap, ws: wsServer},
	"servers.*.cwd":            {check: str(noNUL), ws: wsServer},
	"servers.*.binary_hash":    {check: str(optional(binaryHash)), ws: wsServer},
	"servers.*.auto_start":     {check: anyBool, ws: wsServer},
	"servers.*.trusted":        {check: anyBool, ws: wsServer},
	"servers.*.restart_policy": {check: str(oneOf("never", "on-failure", "always")), ws: wsServer},
	// NOTE: oauth.client_secret and oauth.private_key_file are refused in
	// the workspace layer by applyWorkspaceServer; the other oauth fields
	// are server fields.
	"servers.*.oauth.client_id":           {check: str(token(4096, true)), ws: wsServer},
	"servers.*.oauth.client_secret":       {check: str(token(4096, true)), ws: wsServer},
	"servers.*.oauth.scopes":              {check: strList(oauthScope), ws: wsServer},
	"servers.*.oauth.redirect_url":        {check: str(optional(loopbackURL)), ws: wsServer},
	"servers.*.oauth.client_metadata_url": {check: str(optional(clientMetadataURL)), ws: wsServer},
	"servers.*.oauth.grant":               {check: str(optional(oneOf(GrantAuthorizationCode, GrantClientCredentials))), ws: wsServer},
	"servers.*.oauth.private_key_file":    {check: str(optional(absPath)), ws: wsServer},

	"audit.checkpoint_interval_secs": {check: intIn(1, 24*3600), ws: wsLower},

	// NOTE: keys.* is wsDeny (the brief lists trusted_issuers among the
	// shrink-only lists and keys.* among the forbidden keys; forbidding is
	// the stricter reading).
	"keys.trusted_issuers": {check: strList(ed25519Issuer), ws: wsDeny},

	"workspace.mode":             {check: str(oneOf("safe", "guided", "autonomous")), ws: wsStricter, order: []string{"autonomous", "guided", "safe"}},
	"workspace.escape_policy":    {check: str(oneOf("ask", "deny")), ws: wsStricter, order: []string{"ask", "deny"}},
	"workspace.auto_allow_read":  {check: strList(pathGlob(false)), ws: wsSubset},
	"workspace.auto_allow_write": {check: strList(pathGlob(false)), ws: wsSubset},
	"workspace.never_allow":      {check: strList(pathGlob(false)), ws: wsUnion},

	"git.allow_push":       {check: anyBool, ws: wsFalseOnly},
	"git.allow_force_push": {check: anyBool, ws: wsFalseOnly},

	"hooks.enabled":               {check: anyBool, ws: wsDeny},
	"hooks.timeout_secs":          {check: intIn(1, 3600), ws: wsLower},
	"hooks.allow_workspace_hooks": {check: anyBool, ws: wsDeny},
	"hooks.allowed_hosts":         {check: strList(hostPattern), ws: wsSubset},

	"logging.level":  {check: str(oneOf("debug", "info", "warn", "error")), ws: wsDeny},
	"logging.format": {check: str(oneOf("text", "json")), ws: wsDeny},

	"gateway.listen_addr":                   {check: str(loopbackAddr), ws: wsDeny},
	"gateway.idle_shutdown_secs":            {check: intIn(0, 7*24*3600), ws: wsDeny},
	"gateway.health_interval_secs":          {check: intIn(1, 3600), ws: wsDeny},
	"gateway.session_cleanup_interval_secs": {check: intIn(1, 7*24*3600), ws: wsDeny},
	"gateway.metrics_addr":                  {check: str(optional(loopbackAddr)), ws: wsDeny},

	"timeouts.tool_secs":        {check: intIn(1, 24*3600), ws: wsLower},
	"timeouts.shell_secs":       {check: intIn(1, 24*3600), ws: wsLower},
	"timeouts.llm_request_secs": {check: intIn(1, 24*3600), ws: wsLower},
	"timeouts.mcp_request_secs": {check: intIn(1, 24*3600), ws: wsLower},

	"sessions.retention_days": {check: intIn(0, 36_500), ws: wsDeny},
	"sessions.max_active":     {check: intIn(0, 1_000_000), ws: wsDeny},

	"subagents.max_concurrent": {check: intIn(0, 64), ws: wsLower},
	"subagents.max_depth":      {check: intIn(0, 16), ws: wsLower},
	"subagents.timeout_secs":   {check: intIn(1, 24*3600), ws: wsLower},

	"telegram.bot_token":        {check: str(token(4096, true)), ws: wsDeny},
	"telegram.allowed_user_ids": {check: intList(1, math.MaxInt64), ws: wsDeny},
	"telegram.workspace_path":   {check: str(optional(absPath)), ws: wsDeny},
	"telegram.embedded":         {check: anyBool, ws: wsDeny},
	"telegram.daemon_url":       {check: str(optional(httpURL("ws", "wss", "http", "https"))), ws: wsDeny},

	"discord.bot_token":        {check: str(token(4096, true)), ws: wsDeny},
	"discord.application_id":   {check: str(optional(snowflake)), ws: wsDeny},
	"discord.allowed_user_ids": {check: strList(snowflake), ws: wsDeny},

	"retry.max_attempts":       {check: intIn(1, 20), ws: wsLower},
	"retry.initial_backoff_ms": {check: intIn(1, 600_000), ws: wsDeny},
	"retry.max_backoff_ms":     {check: intIn(1, 3_600_000), ws: wsDeny},

	"capsules.allow_unhashed": {check: anyBool, ws: wsDeny},
	"capsules.max_memory_mb":  {check: intIn(1, 64), ws: wsLower},
	"capsules.timeout_secs":   {check: intIn(1, 30), ws: wsLower},
}

// mapNameChecks validate the names of map entries (the "*" of a pattern).
var mapNameChecks = map[string]func(string) error{
	"servers": func(s string) error {
		if s == "" || len(s) > 64 || !isBareKey(s) || s[0] == '-' || s[0] == '_' {
			return fmt.Errorf("server name %q: want 1-64 letters, digits, '-' or '_', starting with a letter or digit", s)
		}
		return nil
	},
	"model.pricing": func(s string) error {
		if err := token(256, false)(s); err != nil {
			return fmt.Errorf("model name %q: %v", s, err)
		}
		return nil
	},
}

// The check constructors below wrap a typed check into a func(any) error.
// A value of the wrong Go type is an error, never a panic.

func str(f func(string) error) func(any) error {
	return func(v any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("must be a string")
		}
		return f(s)
	}
}

func strList(f func(string) error) func(any) error {
	return func(v any) error {
		l, ok := v.([]string)
		if !ok {
			return fmt.Errorf("must be an array of strings")
		}
		var errs []error
		for _, s := range l {
			if err := f(s); err != nil {
				errs = append(errs, fmt.Errorf("%q: %w", s, err))
			}
		}
		return joinMsgs(errs)
	}
}

// joinMsgs joins errors on one line ("; "), so each FieldError stays one line.
func joinMsgs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

func intIn(lo, hi int64) func(any) error {
	return func(v any) error {
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("must be an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
		}
		return nil
	}
}

func intList(lo, hi int64) func(any) error {
	return func(v any) error {
		l, ok := v.([]int64)
		if !ok {
			return fmt.Errorf("must be an array of integers")
		}
		for _, n := range l {
			if n < lo || n > hi {
				return fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
			}
		}
		return nil
	}
}

func floatIn(lo, hi float64) func(any) error {
	return func(v any) error {
		f, ok := v.(float64)
		if !ok {
			return fmt.Errorf("must be a number")
		}
		if math.IsNaN(f) || f < lo || f > hi {
			return fmt.Errorf("%s is out of range [%s, %s]", fmtFloat(f), fmtFloat(lo), fmtFloat(hi))
		}
		return nil
	}
}

func floatPositive(hi float64) func(any) error {
	return func(v any) error {
		f, ok := v.(float64)
		if !ok {
			return fmt.Errorf("must be a number")
		}
		if math.IsNaN(f) || f <= 0 || f > hi {
			return fmt.Errorf("%s is out of range (0, %s]", fmtFloat(f), fmtFloat(hi))
		}
		return nil
	}
}

func anyBool(v any) error {
	if _, ok := v.(bool); !ok {
		return fmt.Errorf("must be a boolean")
	}
	return nil
}

func optional(f func(string) error) func(string) error {
	return func(s string) error {
		if s == "" {
			return nil
		}
		return f(s)
	}
}

func nonEmpty(f func(string) error) func(string) error {
	return func(s string) error {
		if s == "" {
			return errors.New("must not be empty")
		}
		return f(s)
	}
}

// modelProvider accepts the built-in providers and
// "capsule:<capsule id>/<llm_provider name>", an [[llm_provider]] of an
// installed capsule (checked when the daemon starts).
func modelProvider(s string) error {
	if rest, ok := strings.CutPrefix(s, "capsule:"); ok {
		id, name, ok := strings.Cut(rest, "/")
		if !ok || id == "" || name == "" || strings.ContainsAny(name, "/*") || strings.ContainsAny(id, "*") {
			return fmt.Errorf("%q: want capsule:<capsule id>/<llm_provider name>", s)
		}
		return noNUL(s)
	}
	return oneOf("anthropic", "claude", "openai", "zai", "replay")(s)
}

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		if slices.Contains(vals, s) {
			return nil
		}
		return fmt.Errorf("%q is not one of %s", s, strings.Join(vals, ", "))
	}
}

func noNUL(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("must not contain NUL bytes")
	}
	return nil
}

// token accepts a single printable word: model names, API keys, bot tokens.
// NOTE: a newline in an API key would become header injection.
func token(max int, allowEmpty bool) func(string) error {
	return func(s string) error {
		if s == "" {
			if allowEmpty {
				return nil
			}
			return errors.New("must not be empty")
		}
		if len(s) > max {
			return fmt.Errorf("longer than %d bytes", max)
		}
		for _, r := range s {
			if r <= ' ' || r == 0x7f || r == '\uFFFD' {
				return errors.New("must not contain spaces or control characters")
			}
		}
		return nil
	}
}

// oauthScope is one OAuth scope token (RFC 6749 section 3.3).
func oauthScope(s string) error {
	if s == "" {
		return errors.New("a scope must not be empty")
	}
	if len(s) > 256 {
		return errors.New("a scope is longer than 256 bytes")
	}
	for _, r := range s {
		if r <= ' ' || r > '~' || r == '"' || r == '\\' {
			return errors.New("a scope is printable ASCII without spaces, quotes or backslashes")
		}
	}
	return nil
}

// loopbackURL is an OAuth redirect URL Astrid can listen on: plain http
// on a loopback address with an explicit port, without query or fragment.
// NOTE: any other host would send the authorization code elsewhere.
func loopbackURL(s string) error {
	if err := httpURL("http")(s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	h := u.Hostname()
	if ip, err := netip.ParseAddr(h); (err != nil || !ip.IsLoopback()) && h != "localhost" {
		return errors.New("the redirect URL must be on a loopback address (127.0.0.1, [::1] or localhost)")
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return errors.New("the redirect URL needs an explicit port (1-65535)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("the redirect URL must not have a query or fragment")
	}
	return nil
}

// clientMetadataURL is a client ID metadata document's URL: https with a
// path, no fragment.
func clientMetadataURL(s string) error {
	if err := httpURL("https")(s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if u.Path == "" || u.Path == "/" {
		return errors.New("a client metadata URL needs a path")
	}
	if u.Fragment != "" {
		return errors.New("a client metadata URL must not have a fragment")
	}
	return nil
}

func httpURL(schemes ...string) func(string) error {
	return func(s string) error {
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("not a valid URL: %v", errors.Unwrap(err))
		}
		if !slices.Contains(schemes, u.Scheme) {
			return fmt.Errorf("URL scheme must be %s", strings.Join(schemes, " or "))
		}
		if u.Host == "" {
			return errors.New("URL has no host")
		}
		if u.User != nil {
			return errors.New("URL must not contain credentials")
		}
		if strings.ContainsAny(s, " \t\r\n") {
			return errors.New("URL must not contain whitespace")
		}
		return nil
	}
}

// modelURL accepts an http(s) API URL, or a file:///absolute/path naming
// the transcript of the replay provider.
func modelURL(s string) error {
	if rest, ok := strings.CutPrefix(s, "file://"); ok {
		if !strings.HasPrefix(rest, "/") || strings.ContainsAny(rest, "\x00\r\n") {
			return errors.New("a file URL must name an absolute path (file:///path/to/transcript.jsonl)")
		}
		return nil
	}
	return httpURL("http", "https")(s)
}

// commandPattern accepts a command name or a glob over names ("mkfs.*").
func commandPattern(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if strings.ContainsAny(s, "/ \t\r\n\x00") {
		return errors.New("must be a command name without '/' or whitespace")
	}
	if !doublestar.ValidatePattern(s) {
		return errors.New("invalid glob pattern")
	}
	return nil
}

// pathGlob accepts a doublestar glob; absolute ones must start with / or ~/.
func pathGlob(absolute bool) func(string) error {
	return func(s string) error {
		if s == "" {
			return errors.New("must not be empty")
		}
		if err := noNUL(s); err != nil {
			return err
		}
		if absolute && !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "~/") {
			return errors.New("must be an absolute path glob (starting with / or ~/)")
		}
		if !doublestar.ValidatePattern(s) {
			return errors.New("invalid glob pattern")
		}
		return nil
	}
}

// hostPattern accepts "host", "*.domain", an IP, each optionally with
// ":port" (IPv6 with a port in brackets), or an address range in CIDR form
// ("10.0.0.0/8", "fd00::/8").
func hostPattern(s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if strings.ContainsAny(s, "/@ \t\r\n\x00") {
		return errors.New("not host or host:port")
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return fmt.Errorf("not host or host:port")
		}
		host, port = h, p
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not in 1-65535", port)
		}
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	name := strings.TrimPrefix(host, "*.")
	if name == "" || len(name) > 253 {
		return errors.New("not a host name")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || !isBareKey(label) || strings.Contains(label, "_") ||
			label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("not a host name (letters, digits, '-' and an optional leading '*.')")
		}
	}
	return nil
}

// loopbackAddr accepts host:port where host is a loopback IP or localhost.
// NOTE: the daemon and its metrics listen on loopback only.
func loopbackAddr(s string) error {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not host:port")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not in 0-65535", p)
	}
	if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("host %q is not a loopback address (127.0.0.1, ::1 or localhost)", h)
	}
	return nil
}

// ed25519Issuer accepts "ed25519:<standard base64 of 32 bytes>".
func ed25519Issuer(s string) error {
	b64, ok := strings.CutPrefix(s, "ed25519:")
	if !ok {
		return errors.New(`must start with "ed25519:"`)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return errors.New("not standard base64")
	}
	if len(key) != 32 {
		return fmt.Errorf("an ed25519 public key is 32 bytes, not %d", len(key))
	}
	return nil
}

// binaryHash accepts "blake3:<64 hex>" or "sha256:<64 hex>" (lowercase).
func binaryHash(s string) error {
	algo, hex, ok := strings.Cut(s, ":")
	if !ok || (algo != "blake3" && algo != "sha256") {
		return errors.New(`must be "blake3:<hex>" or "sha256:<hex>"`)
	}
	if len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return errors.New("digest must be 64 lowercase hex digits")
	}
	return nil
}

func absPath(s string) error {
	if !strings.HasPrefix(s, "/") {
		return errors.New("must be an absolute path")
	}
	return noNUL(s)
}

// snowflake accepts a Discord ID: 1-20 decimal digits.
func snowflake(s string) error {
	if s == "" || len(s) > 20 || strings.Trim(s, "0123456789") != "" {
		return errors.New("must be a Discord ID (decimal digits)")
	}
	return nil
}

func envMap(v any) error {
	m, ok := v.(map[string]string)
	if !ok {
		return fmt.Errorf("must be a table of strings")
	}
	var errs []error
	for _, k := range sortedKeys(m) {
		if !isEnvName(k) {
			errs = append(errs, fmt.Errorf("%q is not a valid environment variable name", k))
		} else if err := noNUL(m[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	return joinMsgs(errs)
}

// fmtFloat formats f as TOML would.
func fmtFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	format := byte('f')
	if math.Abs(f) >= 1e21 {
		format = 'g'
	}
	s := strconv.FormatFloat(f, format, -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}
