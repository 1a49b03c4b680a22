//go:build linux

package helper

import "golang.org/x/sys/unix"

// AArch64, with 32-bit ARM (EABI, which has no socketcall) as compat.
const (
	nativeArch = unix.AUDIT_ARCH_AARCH64
	compatArch = unix.AUDIT_ARCH_ARM
)

var (
	nativeSocketNrs  = []uint32{unix.SYS_SOCKET}
	compatSocketNrs  = []uint32{281} // arm socket
	compatRefusedNrs = []uint32{}
)
