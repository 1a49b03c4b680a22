// Package sdk is the Go SDK for Astrid capsules: WebAssembly modules, built
// with the standard Go toolchain, that offer tools, cron jobs and hooks to
// an Astrid agent and reach the outside world only through host functions
// that Astrid's interceptor judges.
//
// # Writing a capsule
//
// A capsule is a main package that registers its handlers from init
// functions (main is never called):
//
//	//go:build wasip1
//
//	package main
//
//	import "github.com/astrid-runtime/astrid/sdk"
//
//	func init() {
//		sdk.HandleTool("greet", func(a struct{ Name string `json:"name"` }) (string, error) {
//			return "hello " + a.Name, nil
//		})
//	}
//
//	func main() {}
//
// Build it as a WASI reactor and pin its hash in Capsule.toml (`astrid
// capsule compile DIR` does both):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o greet.wasm .
//
// Every tool must be declared in the manifest's [[tool]] table, every cron
// job in [[cron]] (or scheduled with CronSchedule), and every capability
// the code uses in [capabilities]; the host refuses anything undeclared
// without asking anyone, and records the refusal in the audit log. See
// examples/notes for a complete capsule.
//
// The wrappers (KVGet, ReadFile, HTTP, ...) exist only for GOOS=wasip1.
// The ABI constants and JSON types in abi.go and types.go build everywhere;
// the host uses them too.
//
// # ABI, version 1
//
// Memory. The module exports its linear memory as "memory". Pointers are
// byte offsets into it; a (ptr, len) pair names len bytes at ptr, and
// len 0 needs no valid ptr. The host caps the memory (64 MiB at most) and
// every call's duration (30 s at most); a module that runs out of memory
// or time is stopped and a fresh instance serves the next call.
//
// Guest exports. Besides "memory" and the "_initialize" function that
// -buildmode=c-shared generates (the host calls it once per instance):
//
//	astrid_abi_v1() -> i32
//	    returns ABIVersion (1).
//	astrid_alloc(size i32) -> ptr i32
//	    returns a buffer of size bytes that the host fills before the
//	    next astrid_call; valid until that call returns.
//	astrid_call(kind, name_len, input_len i32) -> i32
//	    the buffer holds name_len bytes of name then input_len bytes of
//	    input. Before returning, the guest calls the host function
//	    "output" exactly once with its output (or error text) and
//	    returns 0 for success or 1 for an error. Kinds:
//	      1 tool  name: tool name, input: JSON arguments object,
//	              output: text for the model
//	      2 cron  name: job name, input: the job's action, output: ignored
//	      3 hook  name: interceptor event, input: JSON HookEvent,
//	              output: JSON HookVerdict
//	      4 complete  name: an [[llm_provider]] name, input: JSON
//	              CompletionRequest, output: JSON CompletionResponse
//	              (RegisterProvider). The capsule is then the model of
//	              the sessions (model.provider = "capsule:<id>/<name>");
//	              the tool calls it returns are proposals, judged by the
//	              interceptor like any model's.
//
// The host calls into an instance from one goroutine at a time.
//
// Host functions. Module "astrid"; every function has the type
//
//	(a_ptr, a_len, b_ptr, b_len, out_ptr, out_cap i32) -> i64
//
// a and b are the inputs (unused ones are 0, 0); out is a buffer for the
// result. The i64 result r packs a status and a payload length:
//
//	status = r >> 32      (Status: 0 ok, 1 denied, 2 not found,
//	                       3 invalid, 4 limit, 5 failed, 6 deferred)
//	n      = r & 0xffffffff
//
// If n <= out_cap the payload was written to out. Otherwise nothing was
// written, and the host keeps the payload until the guest's next host
// call: the guest calls "result" with a buffer of n bytes to take it (any
// other call discards it). For a status other than 0 the payload is a
// UTF-8 error message. A pointer range outside memory traps (the call
// ends and the instance is replaced). The a argument is at most 64 KiB.
//
//	function        a               b          payload
//	result          -               -          the pending payload
//	output          output bytes    -          - (at most 1 MiB)
//	log             level byte      message    - (d, i, w, e; 200 lines of 4 KiB per call)
//	config_get      env name        -          the [env] value
//	fs_exists       path            -          "true" or "false"
//	fs_mkdir        path            -          - (parents too)
//	fs_readdir      path            -          JSON []FileInfo (1000 at most)
//	fs_stat         path            -          JSON FileInfo
//	fs_read         path            -          the file (8 MiB at most)
//	fs_write        path            data       - (8 MiB at most)
//	fs_unlink       path            -          - (a file or an empty directory)
//	http_request    JSON HTTPRequest -         JSON HTTPResponse
//	kv_get          key             -          the value
//	kv_set          key             value      - (key 256 B, value 1 MiB, 64 MiB in all)
//	kv_delete       key             -          -
//	kv_list         prefix          -          JSON []string (1000 at most)
//	ipc_publish     topic           payload    - (64 KiB; 64 per call)
//	ipc_subscribe   topic           -          -
//	ipc_poll        topic           -          JSON []Message
//	uplink_register name            -          -
//	uplink_send     text            -          -
//	cron_schedule   job name        schedule   -
//	cron_cancel     job name        -          -
//	elicit          JSON ElicitRequest -       the user's answer
//	deferred_result approval id     -          the deferred call's payload (see below)
//
// Paths are relative to the session's workspace or absolute; they are
// resolved (symlinks, "..") and must fall under a root of
// capabilities.fs_read or fs_write (fs_write only, for changes). http
// reaches only hosts in capabilities.net. kv is private to the capsule and
// persisted. ipc topics are prefixed with the capsule's id on the bus.
//
// Gating. log, config_get, result, output and ipc_poll are served without
// the interceptor. Every other call is first checked against the
// capabilities the manifest declared and the user granted at install (an
// undeclared one is refused with status 1 and audited, nobody is asked),
// then judged by Astrid's interceptor as an action of the session the
// capsule was called in: file functions as file actions on the resolved
// path, http_request as a network action on the host and every address it
// resolved to, the rest as capsule://<id>/<capability>. The interceptor
// may ask the session's user, which counts against the call's time limit;
// if nobody can answer, the status is 6 (deferred).
//
// Deferred calls. A deferred call's payload is "approval <id>: <reason>"
// (the error reads "deferred: approval <id>: ..."; DeferredID extracts
// the id). The host keeps the call. When a human later answers approval
// <id> (astrid approvals, or any frontend), the host makes the call again,
// exactly once, with the capsule's grants and the policy in force then,
// and only if it is still exactly the approved action; a refused approval
// is recorded as a denial. The capsule takes the outcome with
// deferred_result(id) (DeferredResult): the payload and status the call
// had (1 denied for a refused approval), or status 6 while the approval
// waits. An outcome is delivered once, then forgotten; it survives a
// restart of the daemon; only the capsule that made the call can read it
// (another gets status 2). A capsule has at most 100 deferred calls
// waiting; past that its deferrals say their result will not be
// delivered.
package sdk
