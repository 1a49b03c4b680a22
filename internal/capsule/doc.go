// Package capsule runs Astrid's extensions. A capsule is a directory with
// a Capsule.toml manifest that can combine a WASM component, MCP servers
// and static context (context files, skills, commands).
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
package capsule
