// Package config loads Astrid's layered TOML configuration.
//
// # Layers
//
// Load merges these layers, lowest first:
//
//  1. default: the embedded defaults.toml, which sets every key.
//  2. system: /etc/astrid/config.toml (LoadOptions.SystemFile in tests).
//  3. user: $ASTRID_HOME/config.toml.
//  4. env: environment variables, for keys no file above set.
//  5. workspace: <workspace>/.astrid/config.toml, tighten-only.
//
// A missing file is skipped; a file that exists but cannot be read is an
// error (skipping a workspace file would drop its restrictions). Files are
// limited to 1 MiB, lists to 4096 entries, strings to 64 KiB.
//
// # Decoding
//
// Each file is parsed as TOML and checked against the schema (the Config
// type and the fields table) before anything is merged. Every problem is
// collected, not just the first: unknown keys, wrong types, values out of
// range or malformed (enums, globs, URLs, host patterns, addresses, keys,
// hashes), and cross-field rules on the merged result (a stdio server needs
// a command and no url, a streamable-http server a url and no command; only
// a streamable-http server has an [oauth] table, whose client_secret or
// private_key_file (one of them) needs a client_id, whose client_credentials
// grant needs one of them, and whose redirect_url must be a loopback http
// URL with a port;
// limits below). Load returns them
// as Errors, a list of *FieldError{File, Line, Col, Key, Msg} printed as
// "file:line:col: key: message". Integers are accepted where a float is
// expected; nan and inf are not.
//
// String values in the system and user files may use ${NAME}, replaced by
// the environment variable NAME; an unset or empty variable is an error.
// "$$" is a literal "$", and any other "$" is kept as is. The workspace
// layer may not reference the environment at all: a file in the repository
// must not be able to copy a secret into, say, a URL it controls.
//
// # Merging
//
// The system and user layers override the defaults key by key; the user
// overrides the system. A leaf is a scalar, a whole list or a whole string
// map (servers.*.env): a list set by a layer replaces the lower one.
// Servers and model pricing merge by name, then key by key.
//
// The environment fills the keys that neither the system nor the user
// file set, and the origin of such a key is "env:NAME":
//
//	ASTRID_MODEL_PROVIDER  model.provider
//	ASTRID_MODEL           model.model
//	ANTHROPIC_API_KEY      model.api_key  (provider anthropic or claude)
//	ANTHROPIC_BASE_URL     model.api_url  (provider anthropic or claude)
//	OPENAI_API_KEY         model.api_key  (provider openai)
//	OPENAI_BASE_URL        model.api_url  (provider openai)
//	ZAI_API_KEY            model.api_key  (provider zai)
//	TELEGRAM_BOT_TOKEN     telegram.bot_token
//
// The provider is the merged one, so ASTRID_MODEL_PROVIDER=openai selects
// OPENAI_API_KEY when no file sets the provider.
//
// # The workspace layer can only tighten
//
// The workspace file lives in a repository the agent may have written to,
// so it is compared with the merged result of the layers below it (the
// "base") and can only make the configuration stricter. Each attempt to
// loosen is an error naming the key and both values; nothing is silently
// ignored. The rule of each key:
//
//	lower (a higher value is an error):
//	  model.max_tokens, model.context_window,
//	  runtime.max_context_tokens, runtime.max_turn_iterations,
//	  security.approval_timeout_secs, security.allow_always_ttl_secs,
//	  security.token_clock_skew_secs, security.policy.max_argument_size,
//	  budget.*, rate_limits.*, audit.checkpoint_interval_secs,
//	  hooks.timeout_secs, timeouts.*, subagents.*, retry.max_attempts,
//	  capsules.max_memory_mb, capsules.timeout_secs
//	  For budget.workspace_max_usd and rate_limits.*, 0 means unlimited:
//	  any value lowers an unlimited base and 0 never lowers a limit.
//	union (deny lists only grow; base entries first):
//	  security.policy.blocked_commands, security.policy.denied_paths,
//	  security.policy.denied_hosts, workspace.never_allow
//	subset (allow lists only shrink; an entry not in the base is an error):
//	  security.policy.allowed_hosts, workspace.auto_allow_read,
//	  workspace.auto_allow_write, hooks.allowed_hosts
//	stricter (along the order loosest → strictest):
//	  workspace.mode          autonomous → guided → safe
//	  workspace.escape_policy ask → deny
//	true only:  security.policy.require_approval_for_delete,
//	            security.policy.require_approval_for_network
//	false only: git.allow_push, git.allow_force_push
//	servers: the workspace may add MCP servers under new names. They are
//	  forced untrusted and never auto-started (setting trusted or
//	  auto_start to true is an error), they cannot carry an OAuth client
//	  secret (oauth.client_secret) or name a private key
//	  (oauth.private_key_file), and a server that the system or user
//	  layer defines cannot be modified (its oauth table included).
//	not settable (everything else): model.provider, model.model,
//	  model.api_key, model.api_url, model.temperature, model.pricing
//	  (a price of 0 would switch the budget off), runtime.system_prompt
//	  (instructions persisted by the agent), runtime.auto_summarize,
//	  runtime.keep_recent_count, keys.* (including trusted_issuers),
//	  hooks.enabled, hooks.allow_workspace_hooks, logging.*, gateway.*,
//	  sessions.*, telegram.*, discord.*, retry.initial_backoff_ms,
//	  retry.max_backoff_ms, capsules.allow_unhashed.
//
// Some limits bound others: budget.per_action_max_usd ≤ session_max_usd,
// runtime.max_context_tokens ≤ model.context_window, retry.initial_backoff_ms
// ≤ max_backoff_ms. Among the system, user and env layers a violation is an
// error; when the workspace lowers the upper limit below the lower one, the
// lower one is capped to it (a further tightening, with workspace origin).
//
// When in doubt a key is not settable by the workspace. The fields table in
// fields.go is the single source of these rules; TestWorkspaceRules pins
// every key's rule to this list, and each rule has a test in which a
// workspace tries to loosen and fails.
//
// # Purity
//
// Load's only I/O is reading the three files. Decoding, merging and
// validation (resolve) are pure functions of the file contents and a
// getenv function, which is what the tests and the fuzz target call.
package config
