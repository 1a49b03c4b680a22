//go:build linux

package helper

import "golang.org/x/sys/unix"

// x86-64 with its x32 ABI (the same arch, syscall numbers with bit 30 set),
// and i386 as the compat architecture.
const (
	nativeArch = unix.AUDIT_ARCH_X86_64
	compatArch = unix.AUDIT_ARCH_I386
	x32Bit     = 0x40000000
)

var (
	nativeSocketNrs  = []uint32{unix.SYS_SOCKET, x32Bit | unix.SYS_SOCKET}
	compatSocketNrs  = []uint32{359} // i386 socket
	compatRefusedNrs = []uint32{102} // i386 socketcall
)
