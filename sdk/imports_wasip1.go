//go:build wasip1

package sdk

import "unsafe"

// One declaration per host function; all share the type
// (a_ptr, a_len, b_ptr, b_len, out_ptr, out_cap i32) -> i64.

//go:wasmimport astrid result
func hostResult(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid output
func hostOutput(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid log
func hostLog(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid config_get
func hostConfigGet(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid fs_exists
func hostFSExists(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid fs_mkdir
func hostFSMkdir(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid fs_readdir
func hostFSReadDir(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid fs_stat
func hostFSStat(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid fs_read
func hostFSRead(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid fs_write
func hostFSWrite(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid fs_unlink
func hostFSUnlink(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid http_request
func hostHTTPRequest(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid kv_get
func hostKVGet(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid kv_set
func hostKVSet(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid kv_delete
func hostKVDelete(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid kv_list
func hostKVList(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid ipc_publish
func hostIPCPublish(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid ipc_subscribe
func hostIPCSubscribe(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid ipc_poll
func hostIPCPoll(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid uplink_register
func hostUplinkRegister(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid uplink_send
func hostUplinkSend(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid cron_schedule
func hostCronSchedule(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid cron_cancel
func hostCronCancel(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid elicit
func hostElicit(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

//go:wasmimport astrid deferred_result
func hostDeferredResult(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64
