//go:build linux

package helper

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// noFilterName is the name under which this test binary runs the helper
// without the MPTCP filter: the control that shows the filter matters.
const noFilterName = "helper-without-mptcp-filter"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case sandbox.HelperArg:
			os.Exit(run(os.Args[2:], options{noMPTCPFilter: filepath.Base(os.Args[0]) == noFilterName}))
		case "__mptcp-connect":
			os.Exit(mptcpConnect(os.Args[2]))
		}
	}
	goleak.VerifyTestMain(m)
}

// mptcpConnect connects to addr over Multipath TCP with raw syscalls.
func mptcpConnect(addr string) int {
	ap, err := netipAddrPort(addr)
	if err != nil {
		return 2
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP)
	if err != nil {
		os.Stderr.WriteString("socket: " + err.Error() + "\n")
		return 1
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, ap); err != nil {
		os.Stderr.WriteString("connect: " + err.Error() + "\n")
		return 1
	}
	os.Stdout.WriteString("mptcp connected\n")
	return 0
}

func netipAddrPort(addr string) (*unix.SockaddrInet4, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: p}
	copy(sa.Addr[:], net.ParseIP(host).To4())
	return sa, nil
}

// TestMPTCPBlocked: Landlock's TCP rules do not cover Multipath TCP. With
// the network denied, an MPTCP connect to a loopback listener must fail;
// without the seccomp filter (the control) the same connect succeeds
// through Landlock, which is the hole the filter closes.
func TestMPTCPBlocked(t *testing.T) {
	abi, err := sandbox.ABI()
	if err != nil || abi < 4 {
		t.Skipf("SKIP: Landlock network rules unavailable (ABI %d, %v)", abi, err)
	}
	if b, err := os.ReadFile("/proc/sys/net/mptcp/enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("SKIP: Multipath TCP is disabled on this kernel, so there is no hole to close")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	noFilter := filepath.Join(dir, noFilterName)
	if err := os.Symlink(exe, noFilter); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0") // MPTCP-capable since Go 1.24
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	for _, tc := range []struct {
		helper string
		wantOK bool
	}{{noFilter, true}, {exe, false}} {
		sb, err := sandbox.New(sandbox.Options{Helper: tc.helper})
		if err != nil {
			t.Fatal(err)
		}
		p := sandbox.Profile{ReadOnly: []string{"/usr", "/lib", "/lib64", filepath.Dir(exe)}}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, err := sb.Command(ctx, p, exe, "__mptcp-connect", l.Addr().String())
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err = c.Run()
		cancel()
		if !c.NetworkRestricted() {
			t.Fatal("network not restricted")
		}
		if ok := err == nil; ok != tc.wantOK {
			t.Errorf("helper %s: MPTCP connect succeeded=%v, want %v: %s", filepath.Base(tc.helper), ok, tc.wantOK, out.String())
		}
		if !tc.wantOK && !strings.Contains(out.String(), "protocol not supported") {
			t.Errorf("want EPROTONOSUPPORT from socket(2): %s", out.String())
		}
	}
}

// TestLookPath follows the shell's rules.
func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "noexec"), nil, 0o644)
	for _, tc := range []struct {
		name, path, want string
		ok               bool
	}{
		{"tool", "/nonexistent:" + dir, exe, true},
		{"noexec", dir, "", false},
		{"./x/y", "", "./x/y", true},
		{"tool", "", "", false},
	} {
		got, err := lookPath(tc.name, []string{"PATH=" + tc.path})
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("lookPath(%q, %q) = %q, %v", tc.name, tc.path, got, err)
		}
	}
}
