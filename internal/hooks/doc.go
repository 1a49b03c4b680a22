// Package hooks runs user-defined handlers at points of an agent's life:
// before and after tool calls, around approvals, at session start and end,
// before the conversation is summarised, around sub-agents and around the
// daemon itself. A hook can observe, and on the events that allow it,
// block an action, send it to the human, or rewrite a tool call's
// arguments.
//
// # Discovery and trust
//
// Hooks are read from two files:
//
//	$ASTRID_HOME/hooks/hooks.toml       the user's hooks, always loaded
//	<workspace>/.astrid/hooks/hooks.toml the workspace's hooks
//
// A workspace's hooks come from a repository the agent (or anyone who
// committed to it) may have written, so they run only when the
// configuration allows workspace hooks (hooks.allow_workspace_hooks) and
// the user trusted that workspace's hooks once (Trust.Trust, "astrid hooks
// trust"). Trust is recorded, with a SHA-256 digest of the workspace's
// hooks directory, in the 0600 file $ASTRID_HOME/hooks/trusted.json; a
// hooks directory that changed since it was trusted is untrusted again.
// An untrusted workspace's hooks are listed (so the user can see them)
// and never run.
//
// Each hooks directory is copied, when it is loaded, into a private
// staging directory outside $ASTRID_HOME (the sandbox never grants
// $ASTRID_HOME), and commands run from that copy: what runs is what was
// loaded and trusted, even if the files change afterwards. A change to
// either hooks directory or to the trust file makes the Set stale
// (Set.Stale); the runtime then loads the hooks again before the next
// event, so edits apply without restarting the daemon.
//
// # File format
//
// hooks.toml is decoded strictly: unknown keys, wrong types and invalid
// values are errors that name the file and line. Each [[hook]] table is
// one hook:
//
//	[[hook]]
//	name = "no-env-files"          # required, unique within the file
//	event = "PreToolCall"          # required, one of the events below
//	tools = ["write_file"]         # matchers (tool events only), see below
//	servers = ["github"]
//	glob = ["mcp__*__delete_*"]
//	regex = "^(write|edit)_file$"
//	command = ["./check.sh", "-v"] # a command handler, or
//	url = "http://127.0.0.1:8080/" # an HTTP handler (exactly one of them)
//	fail_action = "block"          # block | warn | ignore
//	priority = 10                  # lower runs first; default 0
//	async = false                  # never for blocking events
//	timeout_secs = 10              # ≤ hooks.timeout_secs, the default
//
// Matchers select the tool calls a hook sees on PreToolCall, PostToolCall
// and ToolError: tools lists exact tool names, servers lists MCP server
// names (tools named mcp__SERVER__*), glob lists doublestar patterns and
// regex is an RE2 expression, both matched against the tool name. A hook
// without matchers sees every call; with several matchers, a call that
// any of them matches. Matchers on other events are an error.
//
// # Events and payloads
//
// Every handler receives one JSON object, a Payload, with "event", "time",
// "hook" and the fields of its event:
//
//	SessionStart   session_id, workspace, principal, frontend, resumed
//	SessionEnd     session_id, workspace, reason
//	UserPrompt     session_id, workspace, turn, prompt               (blocking)
//	PreToolCall    session_id, workspace, turn, call_id, tool, server,
//	               arguments                                          (blocking)
//	PostToolCall   session_id, workspace, turn, call_id, tool, server,
//	               arguments (as run), output (first 4 KiB)
//	ToolError      session_id, workspace, turn, call_id, tool, server,
//	               arguments, error (first 4 KiB), reason: "error",
//	               "denied" (policy, approval or a hook) or "cancelled"
//	PreApproval    session_id, workspace, request            (blocking)
//	PostApproval   session_id, workspace, request, answer
//	Notification   session_id, workspace, level (info, warn, error),
//	               message: an approval waits, a budget warning, a
//	               turn failed
//	PreCompact     session_id, workspace, turn, messages (how many are
//	               summarised), tokens (the estimate that overflowed)
//	SubagentStart  session_id (the sub-agent's), parent_session_id,
//	               workspace, description, prompt, depth     (blocking)
//	SubagentStop   the same without prompt, and stop_reason
//	DaemonStart    (nothing beyond the common fields)
//	DaemonStop     reason
//
// SessionStart fires when a session is created and when a saved one is
// loaded again (resumed: true); SessionEnd when it is ended (reason
// "ended") or the daemon shuts down ("shutdown"). UserPrompt fires for
// the user's prompts, not for a sub-agent's (SubagentStart carries that).
// A blocked UserPrompt ends the turn with stop reason "blocked"; a blocked
// PreApproval answers Deny without asking the human; a blocked
// SubagentStart fails the task tool call.
//
// # Capsule interceptors
//
// Capsules declare WASM hook handlers as [[interceptor]] exports (package
// capsule, Manager.Hook). The runtime calls their BeforeToolCall after the
// PreToolCall hooks of this package, on the arguments as they will run,
// and a block or a failure there refuses the call; AfterToolCall notes are
// added to the result the model sees; SessionStart, SessionEnd and
// UserPrompt are observed only.
//
// # Handler responses
//
// A handler answers with one JSON object (a command on stdout, an HTTP
// handler in a 2xx response body):
//
//	{"decision": "continue"}
//	{"decision": "block", "reason": "writes to .env files are not allowed"}
//	{"decision": "ask", "reason": "this touches production"}
//	{"decision": "modify", "arguments": {"file_path": "out.txt", ...}}
//
// block is honoured on the blocking events (marked above); ask and modify
// on PreToolCall only. ask sends the call to the human even when a token,
// allowance or mode would have allowed it. modify replaces the call's
// arguments: the later hooks see the new ones, and the tool call is then
// judged by the security interceptor on the modified action, so a rewrite
// can never get past policy; the audit's decision entry names the hook
// and the digest of the original arguments.
//
// A deferred tool call (nobody answered its approval in time) passes the
// PreToolCall hooks again when a human approves it, just before it runs
// (turn is empty, call_id is the approval's id): block refuses it, and so
// does modify, since the human approved the original arguments; ask
// stands answered by the approval.
//
// # Failure
//
// A handler fails when it cannot start, exits non-zero, runs past its
// timeout, prints anything but one JSON object of the form above (empty
// output included), or answers with a decision its event does not take.
// Its fail_action then applies: block refuses the action, warn logs and
// goes on, ignore goes on silently. The default is block on the blocking
// (security-relevant) events and warn elsewhere; block on an event that
// cannot be blocked is a configuration error.
//
// Commands run through the sandbox helper: read-only system directories
// and the staged hooks directory, a private temporary directory, no
// network, and an environment of PATH, HOME, LANG, ASTRID_HOOK_EVENT and
// ASTRID_HOOK_NAME only (never the daemon's, which holds API keys). HTTP
// handlers may post only to a loopback address or a host listed in
// hooks.allowed_hosts.
//
// Async hooks (allowed on non-blocking events only) run in the background;
// their answers are ignored and their failures logged. Set.Close waits for
// them.
package hooks
