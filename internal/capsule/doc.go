// Package capsule runs Astrid's extensions. A capsule is a directory with
// a Capsule.toml manifest that can combine a WASM component, MCP servers
// and static context (context files, skills, commands). Untrusted code
// runs only in WASM, where the only way out is a host function that
// passes the interceptor.
//
// # Packages on disk
//
// The manifest (Capsule.toml), hash and ABI checks, install, grants,
// sealed secrets, list, info, remove and compile live in package
// internal/capsulepkg, which links no WebAssembly engine so that the CLI
// can use it. Manager.Install, Info, Remove and InstalledCapsules use its
// user layer (Manager.Store, $ASTRID_HOME/capsules). Manager.Load refuses a
// capsule whose manifest now asks for more than was granted, whose .wasm
// does not match the manifest's hash, or whose sealed secrets do not open
// (capsulepkg.Store.Verify, Sealer.OpenEnv); refusals are audited with
// RuleHash.
//
// # Workspace capsules
//
// LoadWorkspace loads the capsules of <workspace>/.astrid/capsules
// (installed with `astrid capsule install --workspace`), only when the
// user trusted the workspace (Options.Trust, the hooks trust), only as
// granted at install (hash included), with ids "<name>.ws-<digest>". Their
// tools are registered for that workspace only (WorkspaceToolSink), their
// hooks see that workspace's sessions only, and their tools refuse calls
// from other workspaces. The runtime calls LoadWorkspace before each model
// call; Rescan unloads them when trust is revoked.
//
// # Model providers
//
// A Provider (model.provider = "capsule:<id>/<name>") serves an
// [[llm_provider]] as an llm.Provider: each turn is one KindComplete call,
// run as the action capsule://<id>/llm.<name> in ModelSession(id); the
// answer is checked (tool calls need a name and an object of arguments)
// and replayed as a stream. The tool calls it proposes are judged by the
// interceptor like any model's.
//
// # MCP servers
//
// A capsule's [[mcp_server]] entries run as MCP servers it owns, through
// the runtime's MCP manager (Options.MCP, mcp.Manager.AddOwned), started
// at load and stopped at unload. Naming, trust and the sandbox profile
// built from the capsule's grants are described in mcp.go.
//
// # Deferred host calls
//
// A host call whose approval nobody answered is recorded, resumed exactly
// once through the interceptor's RunDeferred when a human approves it (or
// marked denied), and its outcome handed to the capsule by the host
// function deferred_result; see deferred.go.
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
