// Package sandbox runs native processes (the bash tool, stdio MCP servers)
// inside an operating-system sandbox: on Linux, Landlock filesystem and
// network rules, no_new_privs and resource limits that hold for the process
// and every descendant.
//
// # Design: a re-exec helper
//
// A process can only restrict itself, and the daemon must stay unrestricted.
// So the daemon does not sandbox the target directly: [Sandbox.Command]
// starts the daemon's own executable with the hidden argument [HelperArg]
// (astridd __sandbox-exec). That helper process, package sandbox/helper,
// reads the policy, applies it to itself and then execve(2)s the target.
// Landlock domains, no_new_privs and rlimits survive execve and are
// inherited by every child, so the restriction holds for the whole process
// tree and cannot be undone from inside it.
//
//	astridd ──fork/exec──▶ astridd __sandbox-exec ──execve──▶ /bin/sh -c …
//	 (daemon)               setrlimit, no_new_privs,           (restricted,
//	                        seccomp, landlock_restrict_self    as are its children)
//
// The package is split in two so that the CLI, which only probes the ABI
// for `astrid doctor`, does not link go-landlock and its psx thread
// machinery: this package (parent side, ABI probe, wire format) imports
// only golang.org/x/sys/unix; package sandbox/helper (child side) is the
// only one that imports go-landlock, and only astridd links it.
//
// # Wire format of the policy
//
// The helper receives its policy as a [Spec], JSON-encoded in the
// environment variable [SpecEnv]; the helper's environment holds nothing
// else but GOMAXPROCS=1, and its argument list is exactly [HelperArg]. The
// target's program, arguments and environment are fields of the Spec, so
// nothing the target is given can be read as policy, and the helper never passes its own
// environment on: the target gets exactly Spec.Env. The encoded Spec is at
// most [MaxSpecSize] bytes and [DecodeSpec] is strict: unknown fields,
// trailing data, relative or unclean paths, NUL bytes and oversized lists
// are rejected before anything is applied.
//
// The helper reports a setup failure on an inherited close-on-exec pipe
// (fd 3) and exits with status 125 without running the target. A
// successful execve closes the pipe empty, so [Cmd.Start] knows whether the
// sandbox was applied before it returns.
//
// # What is enforced
//
//   - Filesystem (Landlock ABI ≥ [MinABI]): everything the kernel's ABI can
//     restrict is handled (the full access set of that ABI version, never a
//     silent best-effort downgrade); only the Profile's ReadOnly and
//     ReadWrite hierarchies are granted. ReadWrite grants include "refer", so
//     files can be moved within and between writable hierarchies, but never
//     linked or moved in from a read-only or ungranted one.
//   - Network (ABI ≥ 4): TCP bind and connect are denied except for the
//     ports in [Network]; at ABI ≥ 10 UDP is handled the same way. A seccomp
//     filter refuses Multipath TCP sockets, which Landlock does not cover.
//   - IPC scopes (ABI ≥ 6): no signals to, and no abstract UNIX socket
//     connections to, processes outside the sandbox (the daemon included).
//   - no_new_privs: setuid and file-capability binaries (sudo, su, ping)
//     cannot gain privileges.
//   - Resource limits ([Limits]): CPU seconds, address space, file size,
//     open files, processes; core dumps off. Soft and hard limits are equal,
//     so the target cannot raise them.
//   - Time: the context given to [Sandbox.Command] bounds the whole process
//     group: SIGTERM, then SIGKILL after a grace period. When the main
//     process exits, whatever it left in its group is killed too.
//
// Cost: about 7 ms per command over a plain fork/exec of /bin/true on the
// 2-core test machine (BenchmarkStart): the helper's Go start-up, the rule
// set-up and one more execve.
//
// Where Landlock is missing or too old, [Sandbox.Available] is false,
// [Sandbox.New] logs a loud warning, and commands still run through the
// helper (rlimits, no_new_privs, process-group kill) but report
// [Cmd.Sandboxed] false, so the security interceptor asks for approval of
// every command. Nothing pretends.
//
// # Security reasoning
//
// NOTE: $ASTRID_HOME (keys, audit database, tokens, config) is listed in
// [Options.Protected]. A rule that is, contains or lies inside a protected
// path is refused with a [*ProtectedPathError], after resolving symlinks,
// whatever the caller asks for, in the daemon and again in the helper.
// Since Landlock grants whole hierarchies, refusing rules that contain the
// home is what keeps it out of reach: nothing else grants it.
//
// NOTE: Landlock rules bind to inodes at the moment the helper opens them,
// and access is judged on the path the kernel resolves, so symlinks and
// /proc/self/root tricks inside the workspace lead to the real target and
// are judged there. A hard link created inside the sandbox from a file
// outside the writable hierarchies is refused (no "refer" right there). A
// hard link made outside the sandbox beforehand, by someone else, is a
// second name inside the workspace and is writable like any workspace
// file: Landlock cannot tell the names apart.
//
// NOTE: the default profile does not grant /proc: on the kernel this was
// tested on, a sandboxed process could read its parent's (the daemon's)
// /proc/<pid>/environ despite Landlock's ptrace scoping. See
// DefaultShellProfile.
//
// NOTE: the target's environment is only what the Profile says. The
// daemon's own environment holds provider API keys and must never leak in.
//
// NOTE: Landlock applies to root too, but root keeps its capabilities:
// RLIMIT_NPROC is not enforced for uid 0 at all, and /etc is readable as a
// whole (including /etc/shadow for root). Run the daemon as an unprivileged
// user; under root only the timeout bounds a fork bomb.
//
// NOTE: a process that calls setsid(2) or setpgid(2) leaves the process
// group and survives the timeout kill. It stays inside the Landlock domain
// and its rlimits (RLIMIT_CPU bounds its CPU), but it can outlive the
// command; a cgroup or PID namespace would close this gap.
//
// NOTE: Landlock's network rules cover TCP only below ABI 10: with ABI 4 to
// 9 a sandboxed process can still send UDP (DNS included) and use other
// protocol families. Network denial is therefore a strong barrier for TCP
// and an incomplete one overall; an approved host allowlist will go through
// a proxy (a follow-up), and a granted escape is a TCP port in
// [Network.ConnectTCP].
//
// # macOS
//
// On darwin the helper execs /usr/bin/sandbox-exec with a generated SBPL
// profile (deny by default; the same read-only and read-write subpaths;
// network denied unless ports are granted). It compiles but is not tested
// by this repository's CI.
package sandbox
