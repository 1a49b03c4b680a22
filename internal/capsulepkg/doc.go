// Package capsulepkg handles capsules as packages on disk, without running
// any of their code: it parses and validates Capsule.toml, checks a
// component's BLAKE3 hash and the shape of its WASM module (imports and
// exports, read from the binary), installs a capsule into a layer
// directory after the user granted what it asks for, records the grant
// (with [env] secrets sealed), lists, describes, re-verifies and removes
// installed capsules, and builds Go capsules (Compile).
//
// It links no WebAssembly engine, so the thin CLI can use it; package
// internal/capsule runs what it installs.
//
// # Layers
//
// A Store is one layer of installed capsules: the user's
// ($ASTRID_HOME/capsules) or a workspace's (<workspace>/.astrid/capsules,
// see WorkspaceStore). A capsule's files live in Dir/<name>/; its grant
// lives in GrantDir/<name>.grant.json (mode 0600), which for both layers
// is under $ASTRID_HOME, outside anything a workspace can write: no file
// shipped with a capsule or a repository can pose as a grant.
//
// # Secrets
//
// [env.NAME] values of type "secret" are sealed with AES-256-GCM under a
// key kept in $ASTRID_HOME/keys/capsule-secrets.key (see Sealer) before
// the grant is written; the capsule name and variable name are the
// additional data, so a sealed value cannot be moved to another variable
// or capsule. Only the capsule runtime opens them, for the capsule's
// config_get.
package capsulepkg
