//go:build wasip1

//lint:file-ignore U1000 staticcheck does not see that the host calls the go:wasmexport functions.

package sdk

import (
	"encoding/json"
	"unsafe"
)

type hostFunc func(ap unsafe.Pointer, al uint32, bp unsafe.Pointer, bl uint32, op unsafe.Pointer, oc uint32) uint64

// out receives results that fit; larger ones are taken with FnResult.
var out = make([]byte, 64<<10)

func ptr(b []byte) (unsafe.Pointer, uint32) {
	if len(b) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

// call invokes a host function and returns its payload, or an *Error.
func call(fn hostFunc, a, b []byte) ([]byte, error) {
	ap, al := ptr(a)
	bp, bl := ptr(b)
	st, n := Unpack(fn(ap, al, bp, bl, unsafe.Pointer(unsafe.SliceData(out)), uint32(len(out))))
	var payload []byte
	if int(n) <= len(out) {
		payload = append([]byte(nil), out[:n]...)
	} else {
		payload = make([]byte, n)
		pp, pl := ptr(payload)
		if rs, rn := Unpack(hostResult(nil, 0, nil, 0, pp, pl)); rs != StatusOK || rn != n {
			return nil, &Error{Status: StatusFailed, Msg: "lost a large result"}
		}
	}
	if st != StatusOK {
		return nil, &Error{Status: st, Msg: string(payload)}
	}
	return payload, nil
}

// inbox holds the name and input of the current call (see ExportAlloc).
var inbox []byte

//go:wasmexport astrid_alloc
func guestAlloc(size uint32) unsafe.Pointer {
	if cap(inbox) < int(size) {
		inbox = make([]byte, size)
	}
	inbox = inbox[:size]
	if size == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(inbox))
}

//go:wasmexport astrid_abi_v1
func guestABI() uint32 { return ABIVersion }

//go:wasmexport astrid_call
func guestCall(kind, nameLen, inputLen uint32) uint32 {
	if uint64(nameLen)+uint64(inputLen) > uint64(len(inbox)) {
		return finish(nil, &Error{Status: StatusInvalid, Msg: "call outside the input buffer"})
	}
	name := string(inbox[:nameLen])
	input := append([]byte(nil), inbox[nameLen:nameLen+inputLen]...)
	switch kind {
	case KindTool:
		h, ok := tools[name]
		if !ok {
			return finish(nil, &Error{Status: StatusNotFound, Msg: "no tool " + name})
		}
		text, err := h(input)
		return finish([]byte(text), err)
	case KindCron:
		h, ok := crons[name]
		if !ok {
			return finish(nil, &Error{Status: StatusNotFound, Msg: "no cron job " + name})
		}
		return finish(nil, h(string(input)))
	case KindHook:
		h, ok := hooks[name]
		if !ok {
			return finish([]byte("{}"), nil)
		}
		var ev HookEvent
		if err := json.Unmarshal(input, &ev); err != nil {
			return finish(nil, err)
		}
		v, err := h(ev)
		if err != nil {
			return finish(nil, err)
		}
		b, err := json.Marshal(v)
		return finish(b, err)
	case KindComplete:
		h, ok := provs[name]
		if !ok {
			return finish(nil, &Error{Status: StatusNotFound, Msg: "no provider " + name})
		}
		var req CompletionRequest
		if err := json.Unmarshal(input, &req); err != nil {
			return finish(nil, err)
		}
		resp, err := h(req)
		if err != nil {
			return finish(nil, err)
		}
		b, err := json.Marshal(resp)
		return finish(b, err)
	}
	return finish(nil, &Error{Status: StatusInvalid, Msg: "unknown call kind"})
}

// finish hands the output (or the error text) to the host.
func finish(output []byte, err error) uint32 {
	if err != nil {
		msg := err.Error()
		p, n := ptr([]byte(msg))
		hostOutput(p, n, nil, 0, nil, 0)
		return 1
	}
	p, n := ptr(output)
	hostOutput(p, n, nil, 0, nil, 0)
	return 0
}
