// Package capsule runs Astrid's extensions. A capsule is a directory with
// a Capsule.toml manifest that can combine a WASM component, MCP servers
// and static context (context files, skills, commands). Untrusted code
// runs only in WASM, where the only way out is a host function that
// passes the interceptor.
//
// # Manifest
//
// ParseManifest decodes Capsule.toml strictly: unknown keys, wrong types
// and duplicate keys are errors, and every problem is reported as
// "file:line:col: key: message" in one *ManifestError. The tables are
// [package], [component], [capabilities], [env.NAME], [[tool]],
// [[command]], [[context_file]], [[skill]], [[mcp_server]], [[cron]],
// [[interceptor]], [[uplink]], [[llm_provider]] and [dependencies]; their
// fields and checks are documented on the Go types (Manifest and the
// *Decl types).
//
// # Install, grant, load
//
// Manager.Install parses the manifest, checks the component's BLAKE3 hash
// and that it compiles, shows the requests to the user (InstallOptions),
// collects [env] values, copies the files the manifest names to
// Dir/<name>, and records the grant in Dir/<name>.grant.json (0600):
// the capabilities granted, the env values (secrets included, never shown
// to the model), and the id of a capability token for capsule://<name>/*
// (invoke, persistent, GrantTTL) whose approval is an audit entry of the
// install. Manager.Load refuses a capsule whose manifest now asks for
// more than was granted, or whose .wasm does not match the manifest's
// hash (an unhashed manifest loads only with [capsules] allow_unhashed,
// which only the user configuration can set). Remove revokes the token
// and deletes the capsule's kv store and files.
//
// # Engine
//
// One wazero runtime per Manager compiles every component, with memory
// capped at Limits.MaxMemoryMB (64 MiB at most) and a compilation cache
// on disk. Each loaded capsule has one instance, created on first use;
// calls into it are serialised and bounded by Limits.Timeout (30 s at
// most): the call's context closes the module at the deadline, so an
// infinite loop stops there. After any trap, exit or deadline the
// instance is dropped and the next call gets a fresh one. Instances get
// no files, arguments or environment from WASI; their stdout and stderr
// go to the log, bounded.
//
// # Host functions and the gate
//
// The ABI (see package sdk) is one uniform function type. Each gated host
// call is first checked against the capsule's declared and granted
// capabilities: anything else is refused without asking anyone and
// recorded in the audit log as a denied decision with rule RuleGrant (or
// RuleLimit for a size, count or rate limit). What passes is run through
// Interceptor.Run as an action of the session the capsule was called in:
//
//	fs_*          file_read / file_write / file_delete / file_list of the
//	              resolved path, which must be under a granted root
//	http_request  network action on host:port with every resolved
//	              address (policy denies loopback, private and metadata
//	              ranges); only those addresses are dialled
//	kv_*          capsule://<id>/kv
//	ipc_*         capsule://<id>/ipc
//	uplink_*      capsule://<id>/uplink
//	cron_*        capsule://<id>/cron
//	elicit        capsule://<id>/elicit
//
// Tool calls are capsule://<id>/tool.<name> actions and cron runs
// capsule://<id>/cron.<name> actions in CronSession(id); both, like the
// capsule-scoped host calls, are covered by the install token. File and
// network actions get no token: they are judged like the session's own
// (workspace mode, allowances, the human).
//
// # Plugging into the runtime
//
//   - Tools: Options.Tools (a *tools.Registry) receives each loaded
//     capsule's tools and loses them at unload; Manager.Tools lists them.
//   - Daemon: Backend.ListCapsules, LoadCapsule and UnloadCapsule are
//     Manager.List, Load and Unload.
//   - Cron: Manager.Start runs the scheduler (Tick every second).
//   - Hooks: the runtime calls Manager.Hook for BeforeToolCall and
//     AfterToolCall; a failing hook blocks a BeforeToolCall.
//   - Static context: Manager.Static returns context files, skills and
//     commands.
//   - Uplink and elicit: Options.Uplink and Options.Elicit, implemented by
//     the runtime over the session's frontend.
package capsule
