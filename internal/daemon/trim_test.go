package daemon

import (
	"strings"
	"testing"
)

func TestExecutableMappings(t *testing.T) {
	maps := `00400000-00402000 r--p 00000000 fd:01 123 /usr/bin/astridd
00402000-016d5000 r-xp 00002000 fd:01 123 /usr/bin/astridd
016d5000-02e29000 r--p 012d5000 fd:01 123 /usr/bin/astridd
02e29000-02eb9000 rw-p 02a29000 fd:01 123 /usr/bin/astridd
02eb9000-05000000 rw-p 00000000 00:00 0
7f00000000-7f00001000 r-xp 00000000 fd:01 9 /usr/bin/astridd-other
7f10000000-7f10001000 r--p 00000000 fd:01 10 /tmp/with space/astridd
`
	got, err := executableMappings(strings.NewReader(maps), "/usr/bin/astridd")
	if err != nil {
		t.Fatal(err)
	}
	want := []exeMapping{{0x400000, 0x402000}, {0x402000, 0x16d5000}, {0x16d5000, 0x2e29000}}
	if len(got) != len(want) {
		t.Fatalf("mappings %x, want %x (the writable data and other files left out)", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mappings %x, want %x", got, want)
		}
	}
	if got, _ := executableMappings(strings.NewReader(maps), "/tmp/with space/astridd"); len(got) != 1 {
		t.Errorf("a path with a space: %x", got)
	}
	if _, err := executableMappings(strings.NewReader("zz-00 r--p 0 fd:01 1 /x\n"), "/x"); err == nil {
		t.Error("a malformed range was accepted")
	}
}

// TestReleaseStartupPages runs the release on this test process: the
// kernel must accept the advice for every mapping of the executable, and
// the process goes on running its code.
func TestReleaseStartupPages(t *testing.T) {
	if err := releaseStartupPages(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Repeat("x", 3); got != "xxx" {
		t.Fatal("code after the release misbehaves")
	}
}
