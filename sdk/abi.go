package sdk

// The names and numbers of the ABI, shared by the host (package
// internal/capsule) and guests. See the package comment for the contract.

// ABIVersion is the version of the ABI described in the package comment.
// A guest declares it by exporting ExportABI.
const ABIVersion = 1

// HostModule is the module name of every host function.
const HostModule = "astrid"

// Host functions, imported by guests from HostModule. Every one has the
// type (a_ptr, a_len, b_ptr, b_len, out_ptr, out_cap i32) -> i64.
const (
	FnResult         = "result"
	FnOutput         = "output"
	FnLog            = "log"
	FnConfigGet      = "config_get"
	FnFSExists       = "fs_exists"
	FnFSMkdir        = "fs_mkdir"
	FnFSReadDir      = "fs_readdir"
	FnFSStat         = "fs_stat"
	FnFSRead         = "fs_read"
	FnFSWrite        = "fs_write"
	FnFSUnlink       = "fs_unlink"
	FnHTTPRequest    = "http_request"
	FnKVGet          = "kv_get"
	FnKVSet          = "kv_set"
	FnKVDelete       = "kv_delete"
	FnKVList         = "kv_list"
	FnIPCPublish     = "ipc_publish"
	FnIPCSubscribe   = "ipc_subscribe"
	FnIPCPoll        = "ipc_poll"
	FnUplinkRegister = "uplink_register"
	FnUplinkSend     = "uplink_send"
	FnCronSchedule   = "cron_schedule"
	FnCronCancel     = "cron_cancel"
	FnElicit         = "elicit"
	FnDeferredResult = "deferred_result"
)

// HostFunctions lists every host function name.
var HostFunctions = []string{
	FnResult, FnOutput, FnLog, FnConfigGet,
	FnFSExists, FnFSMkdir, FnFSReadDir, FnFSStat, FnFSRead, FnFSWrite, FnFSUnlink,
	FnHTTPRequest,
	FnKVGet, FnKVSet, FnKVDelete, FnKVList,
	FnIPCPublish, FnIPCSubscribe, FnIPCPoll,
	FnUplinkRegister, FnUplinkSend,
	FnCronSchedule, FnCronCancel,
	FnElicit,
	FnDeferredResult,
}

// Guest exports.
const (
	// ExportAlloc is alloc(size i32) -> ptr i32: a buffer of size bytes
	// the host fills before ExportCall. It stays valid until the call
	// returns.
	ExportAlloc = "astrid_alloc"
	// ExportCall is call(kind, name_len, input_len i32) -> i32: the name
	// and input are in the last buffer from ExportAlloc, name first.
	// It returns 0 for success and 1 for an error; the output (or the
	// error text) was given with FnOutput.
	ExportCall = "astrid_call"
	// ExportABI is abi_v1() -> i32 returning ABIVersion; the host refuses a
	// module without it.
	ExportABI = "astrid_abi_v1"
)

// Kinds of ExportCall.
const (
	KindTool = 1 // name: tool name; input: the JSON arguments; output: text for the model
	KindCron = 2 // name: job name; input: the job's action; output: ignored
	KindHook = 3 // name: interceptor event; input: JSON HookEvent; output: JSON HookVerdict
	// KindComplete asks an [[llm_provider]] for the model's next turn.
	KindComplete = 4 // name: provider name; input: JSON CompletionRequest; output: JSON CompletionResponse
)

// Status is the high half of a host function's result.
type Status uint32

// Statuses. For any status but StatusOK the payload is an error message.
const (
	StatusOK       Status = 0
	StatusDenied   Status = 1 // refused: not declared, or the interceptor or the user said no
	StatusNotFound Status = 2 // no such key, file or config value
	StatusInvalid  Status = 3 // malformed argument
	StatusLimit    Status = 4 // a size, count or rate limit was hit
	StatusFailed   Status = 5 // the operation failed (I/O, network, timeout)
	StatusDeferred Status = 6 // waiting for a human's approval; retry later
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusDenied:
		return "denied"
	case StatusNotFound:
		return "not found"
	case StatusInvalid:
		return "invalid"
	case StatusLimit:
		return "limit"
	case StatusFailed:
		return "failed"
	case StatusDeferred:
		return "deferred"
	}
	return "unknown status"
}

// Pack builds a host function result from a status and payload length.
func Pack(s Status, n uint32) uint64 { return uint64(s)<<32 | uint64(n) }

// Unpack splits a host function result.
func Unpack(r uint64) (Status, uint32) { return Status(r >> 32), uint32(r) }

// Log levels for FnLog (the a argument, one byte).
const (
	LevelDebug = 'd'
	LevelInfo  = 'i'
	LevelWarn  = 'w'
	LevelError = 'e'
)
