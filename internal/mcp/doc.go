// Package mcp is Astrid's MCP host: it runs the configured MCP servers,
// offers their tools to the model through the security interceptor, and
// answers the servers' own requests (roots, sampling, elicitation) through
// interfaces the runtime implements.
//
// # Servers
//
// A Manager holds every server configured under [servers.NAME]:
//
//	m, err := mcp.New(mcp.Options{Servers: cfg.Servers, Sandbox: sb, ...})
//	m.StartAutoStart(ctx)           // auto_start servers (trusted ones only)
//	info, err := m.Start(ctx, "fs") // astrid.startServer
//	m.List()                        // astrid.listServers
//	m.ListTools("fs")               // astrid.listTools
//	m.Stop(ctx, "fs")               // astrid.stopServer
//	detach := m.Attach(reg)         // keep a tools.Registry in sync
//
// A stdio server runs through the sandbox helper (package sandbox): its
// command is resolved on PATH, hashed with BLAKE3 (or SHA-256) and compared
// with binary_hash when one is pinned — a mismatch refuses the start, is
// returned as a *HashMismatchError and audited — and it runs with
// ServerProfile: read-only system directories and its own files, a private
// HOME and TMPDIR, its cwd writable, no network, an environment of PATH,
// HOME, LANG and its configured env only. A Streamable HTTP server is
// reached with the SDK's transport, which resumes an SSE stream with
// Last-Event-ID after the server's retry hint.
//
// The protocol is pinned per connection: 2025-11-25 is asked for, and a
// server may answer 2025-06-18 or 2025-03-26; anything else refuses the
// connection. Later revisions plug in by extending Protocols.
//
// Lifecycle: Start returns once the server answered initialize and listed
// its tools (within StartTimeout). A supervisor pings it every
// HealthInterval; when it dies or fails a ping, restart_policy decides:
// never (it stays failed or stopped), on-failure (restart after a failure,
// with exponential backoff, at most MaxRetries times), always (restart
// whenever it ends). Stop and Close shut a stdio server down by closing
// its stdin, waiting StopGrace, then SIGTERM and SIGKILL to its process
// group. The tool list is refreshed on notifications/tools/list_changed.
//
// # Tools
//
// Each tool is offered as a tools.Tool named mcp__<server>__<tool>. Its
// Prepare builds a security.MCPTool action on mcp://server/tool with the
// arguments as given; the interceptor judges it (policy, tokens and
// allowances, budget, approval, audit) before the call reaches the server.
// A tool of an untrusted server (every server a workspace adds) is
// AlwaysAsk: a human answers every call. Annotations come from the server
// and are untrusted: destructiveHint raises the risk, nothing lowers it,
// and readOnlyHint of a trusted server only marks the tool as safe to run
// in parallel. Tools that support tasks are called as tasks and polled to
// the end; a cancelled turn cancels the call (notifications/cancelled) or
// the task (tasks/cancel). Progress notifications become Events carrying
// the calling session.
//
// # Fail closed
//
// A server is untrusted input. A message over Limits.MessageBytes, a line
// on a stdio server's stdout that is not JSON, or a flood of elicitation
// or sampling requests is a *ViolationError: the server is stopped and
// not restarted, whatever its restart policy. A server that does not
// answer fails the call after RequestTimeout and, if it ignores pings
// too, is restarted or stopped. Tool results are cut at
// Limits.ResultChars; names, schemas and descriptions are bounded.
//
// # OAuth
//
// A Streamable HTTP server that answers 401 is authorized with OAuth 2.1
// (MCP 2025-11-25, "Authorization"; oauth*.go), unless its configuration
// sends its own Authorization header (env HEADER_Authorization). The
// protected resource metadata comes from the challenge's resource_metadata
// (on the server's origin only) or the path-based, then root, well-known
// URL, and must name a resource covering the server's URL; the
// authorization server's metadata from the RFC 8414 and OpenID well-known
// URLs (path-aware), and must name the issuer asked for, https endpoints
// (http only on loopback) and PKCE S256. A server of MCP 2025-03-26,
// whose challenge names no metadata and whose well-known URLs all answer
// 404, is authorized by its own origin: the origin's authorization server
// metadata (which may name an issuer on that origin), else the default
// endpoints /authorize, /token and /register there; any other discovery
// failure is an error. The client is the configured one
// ([servers.NAME.oauth] client_id and secret), a client ID metadata
// document (client_metadata_url) where supported, or a dynamic
// registration. Scopes: the configured ones, else the challenge's, else
// scopes_supported, else none. The user consents through
// Options.OAuth.Authorizer (the frontend shows the URL; the request names
// the session whose tool call needs it, for a step-up, and with
// OAuthOptions.SessionsOnly one that no session needs goes no further than
// *AuthorizationRequiredError); the browser comes
// back to a loopback listener, whose state (and iss, RFC 9207) is checked
// before the code is exchanged with the PKCE verifier and the resource
// (RFC 8707), authenticated by client_secret_basic, client_secret_post,
// private_key_jwt (RFC 7523: a 5-minute JWT with a fresh jti, for the
// issuer as audience, signed ES256, ES384, RS256 or EdDSA with the key of
// oauth.private_key_file) or none. With oauth.grant = "client_credentials"
// (extension SEP-1046) no user is involved: the configured client gets its
// token from the token endpoint by its secret or its key, and gets a new
// one the same way when it expires. Tokens are refreshed before expiry and
// after a 401; a 403
// insufficient_scope is a step-up with the scopes demanded, at most
// maxStepUps per request. Tokens live in Options.OAuth.Dir (one 0600
// file per server, bound to its URL; a file others can read is refused),
// never in logs, events or audit entries; authorizations are audited as
// mcp_oauth_authorize. Manager.Login and Logout back `astrid servers
// login|logout`.
//
// # The servers' requests
//
// Roots returns the workspace roots of the sessions using a server;
// RootsChanged tells the servers. Sampler and Elicitor take a server's
// sampling and elicitation requests to the runtime, which asks the human;
// each is rate limited per server. The session of such a request is the
// one session with a tool call running on that server, or "" when that is
// not a single session. Omitted form fields get the schema's defaults.
//
// A server may ask that its sampling or elicitation request run as a task
// of the client (tasks.requests in the client's capabilities;
// clienttasks.go): the client answers with the task at once, the request
// takes the same way to the human in the background, and the server polls
// tasks/get, waits on tasks/result, lists and cancels its own tasks (no
// other connection's). Tasks are kept at most their ttl and 10 minutes,
// 32 per connection, and end with the connection.
package mcp
