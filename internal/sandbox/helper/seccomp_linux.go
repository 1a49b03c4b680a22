//go:build linux && (amd64 || arm64)

package helper

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data (little-endian: the low half of args[2]).
const (
	offNr    = 0
	offArch  = 4
	offArg2L = 16 + 2*8
)

// blockMPTCP installs a seccomp filter, on every thread (TSYNC), that makes
// socket(2) with protocol IPPROTO_MPTCP fail with EPROTONOSUPPORT, as on a
// kernel without Multipath TCP; programs then fall back to plain TCP, which
// Landlock governs. NOTE: Landlock's TCP rules do not apply to MPTCP
// sockets, so without this filter a process denied the network could still
// connect anywhere. Syscalls of the compat architecture (32-bit binaries)
// get the same check on socket(2), and socketcall(2), whose arguments a
// filter cannot read, is refused outright.
//
// It needs no_new_privs, which is set before.
func blockMPTCP() error {
	deny := unix.SECCOMP_RET_ERRNO | uint32(unix.EPROTONOSUPPORT)
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: jt, Jf: jf, K: k}
	}
	ld := func(off uint32) unix.SockFilter { return stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
	ret := func(v uint32) unix.SockFilter { return stmt(unix.BPF_RET|unix.BPF_K, v) }

	// checkProto: if args[2] == IPPROTO_MPTCP deny, else allow.
	checkProto := []unix.SockFilter{
		ld(offArg2L),
		jeq(unix.IPPROTO_MPTCP, 0, 1),
		ret(deny),
		ret(unix.SECCOMP_RET_ALLOW),
	}
	// dispatch builds: for each socket nr, jump to checkProto; for each
	// refused nr, deny; otherwise allow. checkProto follows immediately.
	dispatch := func(socketNrs, refusedNrs []uint32) []unix.SockFilter {
		prog := []unix.SockFilter{ld(offNr)}
		n := len(socketNrs) + 2*len(refusedNrs) + 1 // instructions after the load, before checkProto
		for i, nr := range socketNrs {
			prog = append(prog, jeq(nr, uint8(n-1-i), 0))
		}
		for _, nr := range refusedNrs {
			prog = append(prog, jeq(nr, 0, 1), ret(deny))
		}
		prog = append(prog, ret(unix.SECCOMP_RET_ALLOW))
		return append(prog, checkProto...)
	}
	native := dispatch(nativeSocketNrs, nil)
	compat := dispatch(compatSocketNrs, compatRefusedNrs)
	// arch == native ? native : (arch == compat ? compat : allow)
	prog := []unix.SockFilter{
		ld(offArch),
		jeq(nativeArch, 0, uint8(len(native))),
	}
	prog = append(prog, native...)
	prog = append(prog, jeq(compatArch, 0, uint8(len(compat))))
	prog = append(prog, compat...)
	prog = append(prog, ret(unix.SECCOMP_RET_ALLOW))

	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r1, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp (MPTCP filter): %w", errno)
	}
	if r1 != 0 {
		return fmt.Errorf("seccomp (MPTCP filter): thread %d could not be synchronized", r1)
	}
	return nil
}
