package config

// Config is the resolved configuration. Field tags name the TOML keys; the
// JSON names are the same so `config show --format json` matches the files.
//
// Durations are integer seconds (`_secs`) or milliseconds (`_ms`), money is a
// float in US dollars, sizes are bytes unless the key says otherwise. A zero
// value means "unlimited" only where the field's comment says so.
type Config struct {
	Model      Model             `toml:"model" json:"model"`
	Runtime    Runtime           `toml:"runtime" json:"runtime"`
	Security   Security          `toml:"security" json:"security"`
	Budget     Budget            `toml:"budget" json:"budget"`
	RateLimits RateLimits        `toml:"rate_limits" json:"rate_limits"`
	Servers    map[string]Server `toml:"servers" json:"servers"`
	Audit      Audit             `toml:"audit" json:"audit"`
	Keys       Keys              `toml:"keys" json:"keys"`
	Workspace  Workspace         `toml:"workspace" json:"workspace"`
	Git        Git               `toml:"git" json:"git"`
	Hooks      Hooks             `toml:"hooks" json:"hooks"`
	Logging    Logging           `toml:"logging" json:"logging"`
	Gateway    Gateway           `toml:"gateway" json:"gateway"`
	Timeouts   Timeouts          `toml:"timeouts" json:"timeouts"`
	Sessions   Sessions          `toml:"sessions" json:"sessions"`
	Subagents  Subagents         `toml:"subagents" json:"subagents"`
	Telegram   Telegram          `toml:"telegram" json:"telegram"`
	Discord    Discord           `toml:"discord" json:"discord"`
	Retry      Retry             `toml:"retry" json:"retry"`
	Capsules   Capsules          `toml:"capsules" json:"capsules"`
}

// Model selects the LLM provider and its limits.
type Model struct {
	// Provider is one of anthropic, claude (an alias of anthropic), openai,
	// zai or replay (recorded exchanges, for tests), or
	// "capsule:<capsule id>/<name>": the [[llm_provider]] <name> of an
	// installed capsule, whose WASM component answers each turn (see
	// package sdk, kind 4 complete); its tool calls are judged like any
	// model's.
	Provider string `toml:"provider" json:"provider"`
	// Model is the provider's model name.
	Model string `toml:"model" json:"model"`
	// APIKey is a secret; `config show` masks it.
	APIKey string `toml:"api_key" json:"api_key"`
	// APIURL overrides the provider's base URL (OpenAI-compatible URLs
	// include /v1, Anthropic URLs do not). Empty means the provider default.
	APIURL        string  `toml:"api_url" json:"api_url"`
	MaxTokens     int64   `toml:"max_tokens" json:"max_tokens"`
	Temperature   float64 `toml:"temperature" json:"temperature"`
	ContextWindow int64   `toml:"context_window" json:"context_window"`
	// Pricing is keyed by model name; the budget uses it to price calls.
	Pricing map[string]Pricing `toml:"pricing" json:"pricing"`
}

// Pricing is a model's price in US dollars per million tokens.
type Pricing struct {
	InputPerMTok      float64 `toml:"input_per_mtok" json:"input_per_mtok"`
	OutputPerMTok     float64 `toml:"output_per_mtok" json:"output_per_mtok"`
	CacheReadPerMTok  float64 `toml:"cache_read_per_mtok" json:"cache_read_per_mtok"`
	CacheWritePerMTok float64 `toml:"cache_write_per_mtok" json:"cache_write_per_mtok"`
}

// Runtime tunes the agent loop.
type Runtime struct {
	MaxContextTokens int64 `toml:"max_context_tokens" json:"max_context_tokens"`
	// SystemPrompt, when non-empty, replaces the built-in system prompt.
	SystemPrompt  string `toml:"system_prompt" json:"system_prompt"`
	AutoSummarize bool   `toml:"auto_summarize" json:"auto_summarize"`
	// KeepRecentCount is how many recent messages summarisation keeps verbatim.
	KeepRecentCount int64 `toml:"keep_recent_count" json:"keep_recent_count"`
	// MaxTurnIterations bounds model/tool round trips in one turn.
	MaxTurnIterations int64 `toml:"max_turn_iterations" json:"max_turn_iterations"`
}

// Security holds approval timing and the policy.
type Security struct {
	// ApprovalTimeoutSecs is how long an approval request waits before the
	// action is deferred.
	ApprovalTimeoutSecs int64 `toml:"approval_timeout_secs" json:"approval_timeout_secs"`
	// AllowAlwaysTTLSecs is the lifetime of tokens minted by "Allow Always".
	AllowAlwaysTTLSecs int64 `toml:"allow_always_ttl_secs" json:"allow_always_ttl_secs"`
	// TokenClockSkewSecs is the clock skew tolerated when checking token times.
	TokenClockSkewSecs int64  `toml:"token_clock_skew_secs" json:"token_clock_skew_secs"`
	Policy             Policy `toml:"policy" json:"policy"`
}

// Policy is the hard boundary: nothing (no token, no approval) overrides it.
type Policy struct {
	// BlockedCommands are command names (globs such as "mkfs.*") refused
	// wherever they appear in a shell command.
	BlockedCommands []string `toml:"blocked_commands" json:"blocked_commands"`
	// DeniedPaths are absolute path globs (doublestar syntax, "~/" allowed).
	DeniedPaths []string `toml:"denied_paths" json:"denied_paths"`
	// DeniedHosts and AllowedHosts are host patterns: "example.com",
	// "*.example.com", optionally with ":port". An empty AllowedHosts means
	// any host not denied (subject to approval).
	DeniedHosts  []string `toml:"denied_hosts" json:"denied_hosts"`
	AllowedHosts []string `toml:"allowed_hosts" json:"allowed_hosts"`
	// MaxArgumentSize is the largest tool argument, in bytes.
	MaxArgumentSize           int64 `toml:"max_argument_size" json:"max_argument_size"`
	RequireApprovalForDelete  bool  `toml:"require_approval_for_delete" json:"require_approval_for_delete"`
	RequireApprovalForNetwork bool  `toml:"require_approval_for_network" json:"require_approval_for_network"`
}

// Budget limits spending in US dollars.
type Budget struct {
	SessionMaxUSD   float64 `toml:"session_max_usd" json:"session_max_usd"`
	PerActionMaxUSD float64 `toml:"per_action_max_usd" json:"per_action_max_usd"`
	// WorkspaceMaxUSD is the cumulative limit per workspace; 0 means none.
	WorkspaceMaxUSD float64 `toml:"workspace_max_usd" json:"workspace_max_usd"`
	// WarnAtPercent is the share of a limit at which frontends warn (1-100).
	WarnAtPercent int64 `toml:"warn_at_percent" json:"warn_at_percent"`
}

// RateLimits bound request rates per session; 0 means unlimited.
type RateLimits struct {
	RequestsPerMinute  int64 `toml:"requests_per_minute" json:"requests_per_minute"`
	ToolCallsPerMinute int64 `toml:"tool_calls_per_minute" json:"tool_calls_per_minute"`
}

// Server is one MCP server. Transport stdio needs Command; streamable-http
// needs URL.
type Server struct {
	Transport string            `toml:"transport" json:"transport"`
	Command   string            `toml:"command" json:"command"`
	Args      []string          `toml:"args" json:"args"`
	URL       string            `toml:"url" json:"url"`
	Env       map[string]string `toml:"env" json:"env"`
	Cwd       string            `toml:"cwd" json:"cwd"`
	// BinaryHash pins the command's binary: "blake3:<64 hex>" or
	// "sha256:<64 hex>". Empty means unpinned.
	BinaryHash string `toml:"binary_hash" json:"binary_hash"`
	AutoStart  bool   `toml:"auto_start" json:"auto_start"`
	// Trusted servers' tools may be auto-approved by tokens and allowances;
	// untrusted servers always ask.
	Trusted bool `toml:"trusted" json:"trusted"`
	// RestartPolicy is never (the default), on-failure or always.
	RestartPolicy string `toml:"restart_policy" json:"restart_policy"`
	// OAuth configures OAuth 2.1 authorization of a streamable-http
	// server ([servers.NAME.oauth]); every field is optional.
	OAuth ServerOAuth `toml:"oauth" json:"oauth"`
}

// ServerOAuth is how Astrid identifies itself to the authorization server
// of an MCP server. Without ClientID, Astrid uses a client ID metadata
// document (ClientMetadataURL, when the authorization server supports
// them) or registers dynamically.
type ServerOAuth struct {
	// ClientID and ClientSecret are a pre-registered client; the secret
	// is for confidential clients and is best given as ${ENV}. The
	// workspace layer cannot set ClientSecret.
	ClientID     string `toml:"client_id" json:"client_id"`
	ClientSecret string `toml:"client_secret" json:"client_secret"`
	// Scopes, when set, are requested instead of the scopes the server
	// suggests (a step-up still adds the scopes a server demands).
	Scopes []string `toml:"scopes" json:"scopes"`
	// RedirectURL is the loopback address the authorization server
	// redirects the browser to, http://127.0.0.1:PORT/PATH (or localhost,
	// [::1]); empty means http://127.0.0.1:<free port>/callback.
	RedirectURL string `toml:"redirect_url" json:"redirect_url"`
	// ClientMetadataURL is the https URL of Astrid's client ID metadata
	// document, used as the client ID where the authorization server
	// supports it.
	ClientMetadataURL string `toml:"client_metadata_url" json:"client_metadata_url"`
	// Grant is authorization_code (the default, also when empty: a user
	// authorizes in a browser) or client_credentials (SEP-1046: Astrid authenticates as
	// the pre-registered client itself, with no user, for machine
	// accounts). client_credentials needs ClientID and either
	// ClientSecret or PrivateKeyFile.
	Grant string `toml:"grant" json:"grant"`
	// PrivateKeyFile is the absolute path of a PEM private key (PKCS#8,
	// or SEC 1 / PKCS#1; EC P-256 or P-384, RSA, or Ed25519) the client
	// authenticates with by a signed JWT (private_key_jwt, RFC 7523),
	// instead of a client secret. The file must be the user's, mode 0600
	// and not a symlink. The workspace layer cannot set it.
	PrivateKeyFile string `toml:"private_key_file" json:"private_key_file"`
}

// OAuth grants of ServerOAuth.Grant.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
)

// Audit configures the tamper-evident log.
type Audit struct {
	// CheckpointIntervalSecs is how often a signed checkpoint is written.
	CheckpointIntervalSecs int64 `toml:"checkpoint_interval_secs" json:"checkpoint_interval_secs"`
}

// Keys lists the capability token issuers the runtime trusts besides its
// own key.
type Keys struct {
	// TrustedIssuers are "ed25519:<standard base64 of the 32-byte key>".
	TrustedIssuers []string `toml:"trusted_issuers" json:"trusted_issuers"`
}

// Workspace configures the agent's boundary.
type Workspace struct {
	// Mode is safe (ask about everything), guided (auto-approve reads) or
	// autonomous (trust the agent within the workspace).
	Mode string `toml:"mode" json:"mode"`
	// EscapePolicy is ask or deny: what happens when the agent reaches
	// outside the workspace.
	EscapePolicy string `toml:"escape_policy" json:"escape_policy"`
	// AutoAllowRead and AutoAllowWrite are path globs (relative to the
	// workspace, or absolute) approved without asking.
	AutoAllowRead  []string `toml:"auto_allow_read" json:"auto_allow_read"`
	AutoAllowWrite []string `toml:"auto_allow_write" json:"auto_allow_write"`
	// NeverAllow are path globs refused whatever the mode.
	NeverAllow []string `toml:"never_allow" json:"never_allow"`
}

// Git limits what the agent may do with git remotes.
type Git struct {
	AllowPush      bool `toml:"allow_push" json:"allow_push"`
	AllowForcePush bool `toml:"allow_force_push" json:"allow_force_push"`
}

// Hooks configures hook discovery and execution.
type Hooks struct {
	Enabled     bool  `toml:"enabled" json:"enabled"`
	TimeoutSecs int64 `toml:"timeout_secs" json:"timeout_secs"`
	// AllowWorkspaceHooks lets hooks found in <workspace>/.astrid/hooks run.
	AllowWorkspaceHooks bool `toml:"allow_workspace_hooks" json:"allow_workspace_hooks"`
	// AllowedHosts are the hosts HTTP hooks may post to besides loopback
	// (names, *.suffix, host:port or CIDR prefixes).
	AllowedHosts []string `toml:"allowed_hosts" json:"allowed_hosts"`
}

// Logging configures the daemon log.
type Logging struct {
	// Level is debug, info, warn or error; Format is text or json.
	Level  string `toml:"level" json:"level"`
	Format string `toml:"format" json:"format"`
}

// Gateway configures the daemon's listener and housekeeping.
type Gateway struct {
	// ListenAddr is host:port on a loopback address; port 0 picks a free one.
	ListenAddr                 string `toml:"listen_addr" json:"listen_addr"`
	IdleShutdownSecs           int64  `toml:"idle_shutdown_secs" json:"idle_shutdown_secs"`
	HealthIntervalSecs         int64  `toml:"health_interval_secs" json:"health_interval_secs"`
	SessionCleanupIntervalSecs int64  `toml:"session_cleanup_interval_secs" json:"session_cleanup_interval_secs"`
	// MetricsAddr is a loopback host:port for metrics; empty disables them.
	MetricsAddr string `toml:"metrics_addr" json:"metrics_addr"`
}

// Timeouts bound individual operations, in seconds.
type Timeouts struct {
	ToolSecs       int64 `toml:"tool_secs" json:"tool_secs"`
	ShellSecs      int64 `toml:"shell_secs" json:"shell_secs"`
	LLMRequestSecs int64 `toml:"llm_request_secs" json:"llm_request_secs"`
	MCPRequestSecs int64 `toml:"mcp_request_secs" json:"mcp_request_secs"`
}

// Sessions configures session retention.
type Sessions struct {
	// RetentionDays deletes idle sessions after this many days; 0 keeps them.
	RetentionDays int64 `toml:"retention_days" json:"retention_days"`
	// MaxActive bounds concurrently open sessions; 0 means unlimited.
	MaxActive int64 `toml:"max_active" json:"max_active"`
}

// Subagents bounds delegation to child agents.
type Subagents struct {
	MaxConcurrent int64 `toml:"max_concurrent" json:"max_concurrent"`
	MaxDepth      int64 `toml:"max_depth" json:"max_depth"`
	TimeoutSecs   int64 `toml:"timeout_secs" json:"timeout_secs"`
}

// Telegram configures the Telegram frontend.
type Telegram struct {
	// BotToken is a secret; `config show` masks it.
	BotToken       string  `toml:"bot_token" json:"bot_token"`
	AllowedUserIDs []int64 `toml:"allowed_user_ids" json:"allowed_user_ids"`
	// WorkspacePath is the absolute workspace the bot's sessions use.
	WorkspacePath string `toml:"workspace_path" json:"workspace_path"`
	// Embedded runs the runtime in the bot process instead of connecting
	// to DaemonURL.
	Embedded  bool   `toml:"embedded" json:"embedded"`
	DaemonURL string `toml:"daemon_url" json:"daemon_url"`
}

// Discord configures the Discord frontend.
type Discord struct {
	// BotToken is a secret; `config show` masks it.
	BotToken      string `toml:"bot_token" json:"bot_token"`
	ApplicationID string `toml:"application_id" json:"application_id"`
	// AllowedUserIDs are Discord user snowflakes (decimal strings).
	AllowedUserIDs []string `toml:"allowed_user_ids" json:"allowed_user_ids"`
}

// Retry configures retries of failed LLM and MCP requests.
type Retry struct {
	MaxAttempts      int64 `toml:"max_attempts" json:"max_attempts"`
	InitialBackoffMS int64 `toml:"initial_backoff_ms" json:"initial_backoff_ms"`
	MaxBackoffMS     int64 `toml:"max_backoff_ms" json:"max_backoff_ms"`
}

// Capsules configures the WASM extension runtime.
type Capsules struct {
	// AllowUnhashed loads capsules whose manifest pins no hash (development).
	AllowUnhashed bool `toml:"allow_unhashed" json:"allow_unhashed"`
	// MaxMemoryMB is the WASM memory ceiling (at most 64).
	MaxMemoryMB int64 `toml:"max_memory_mb" json:"max_memory_mb"`
	// TimeoutSecs bounds one call into a capsule (at most 30).
	TimeoutSecs int64 `toml:"timeout_secs" json:"timeout_secs"`
}
