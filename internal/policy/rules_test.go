package policy

import (
	"net/netip"
	"strings"
	"testing"
)

func testRules(t *testing.T) *Rules {
	t.Helper()
	r, err := Compile(Config{
		BlockedCommands: testBlocked,
		DeniedPaths:     []string{"/etc/**", "/boot/**", "/sys/**", "/proc/**", "/dev/**", "**/.ssh/**"},
		DeniedHosts:     []string{"evil.example", "*.tracker.test", "203.0.113.0/24"},
		AllowedHosts:    []string{"localhost", "10.1.2.3", "10.9.9.9:8443", "api.internal.test:443"},
		MaxArgumentSize: 1000,
		Protected:       []string{"/home/u/.astrid"},
		ReadOnly:        []string{"/home/u/proj/.astrid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPath(t *testing.T) {
	r := testRules(t)
	for _, tc := range []struct {
		p     string
		write bool
		rule  string // "" = allowed
	}{
		{"/home/u/proj/main.go", false, ""},
		{"/home/u/proj/main.go", true, ""},
		{"/etc/passwd", false, "denied_paths"},
		{"/etc", false, "denied_paths"},
		{"/etcetera/x", false, ""},
		{"/proc/self/environ", false, "denied_paths"},
		{"/home/u/.ssh/id_ed25519", false, "denied_paths"},
		{"/home/u/.astrid", false, "astrid_home"},
		{"/home/u/.astrid/keys/runtime.key", false, "astrid_home"},
		{"/home/u/.astrid/state.db", true, "astrid_home"},
		{"/home/u", true, "astrid_home"}, // writing a parent (rename, rm -r)
		{"/home/u", false, ""},
		{"/home/u/.astridx", true, ""},
		{"/home/u/proj/.astrid/config.toml", false, ""},
		{"/home/u/proj/.astrid/config.toml", true, "workspace_config"},
		{"/home/u/proj/.astrid", true, "workspace_config"},
		{"/home/u/proj", true, "workspace_config"},
		{"relative/path", false, "path"},
		{"/home/u/../u/.astrid/keys", false, "path"},
	} {
		v := r.Path(tc.p, tc.write)
		got := ""
		if v != nil {
			got = v.Rule
		}
		if got != tc.rule {
			t.Errorf("Path(%q, write=%v) = %v, want rule %q", tc.p, tc.write, v, tc.rule)
		}
	}
}

func TestHost(t *testing.T) {
	r := testRules(t)
	a := netip.MustParseAddr
	for _, tc := range []struct {
		host  string
		addrs []netip.Addr
		deny  bool
		port  int
	}{
		{"x", []netip.Addr{a("10.9.9.9")}, false, 8443},
		{"x", []netip.Addr{a("10.9.9.9")}, true, 22},
		{"api.internal.test", []netip.Addr{a("10.3.3.3")}, false, 443},
		{"api.internal.test", []netip.Addr{a("10.3.3.3")}, true, 80},
		{"api.github.com", []netip.Addr{a("140.82.112.5")}, false, 0},
		{"evil.example", nil, true, 0},
		{"EVIL.example.", nil, true, 0},
		{"x.tracker.test", nil, true, 0},
		{"a.b.tracker.test", nil, true, 0},
		{"good.test", []netip.Addr{a("203.0.113.9")}, true, 0},
		{"169.254.169.254", nil, true, 0},
		{"metadata.internal", []netip.Addr{a("169.254.169.254")}, true, 0},
		{"rebind.test", []netip.Addr{a("93.184.216.34"), a("127.0.0.1")}, true, 0},
		{"127.0.0.1", nil, true, 0},
		{"[::1]", []netip.Addr{a("::1")}, true, 0},
		{"x", []netip.Addr{a("::ffff:192.168.1.1")}, true, 0},
		{"x", []netip.Addr{a("100.64.0.1")}, true, 0},
		{"x", []netip.Addr{a("0.0.0.0")}, true, 0},
		{"x", []netip.Addr{a("fe80::1")}, true, 0},
		{"localhost", []netip.Addr{a("127.0.0.1")}, false, 0},
		{"internal", []netip.Addr{a("10.1.2.3")}, false, 0},
		{"internal", []netip.Addr{a("10.1.2.4")}, true, 0},
	} {
		port := tc.port
		if port == 0 {
			port = 443
		}
		v := r.Host(tc.host, port, tc.addrs)
		if (v != nil) != tc.deny {
			t.Errorf("Host(%q, %v) = %v, want deny=%v", tc.host, tc.addrs, v, tc.deny)
		}
	}
}

func TestCommandAndArgs(t *testing.T) {
	r := testRules(t)
	if _, v := r.Command("nice sh -c 's\"u\"do id'"); v == nil || v.Rule != "blocked_commands" || !strings.Contains(v.Detail, "behind") {
		t.Errorf("Command: %v", v)
	}
	if a, v := r.Command("go test ./..."); v != nil || a.IsDynamic() {
		t.Errorf("plain command: %v %v", v, a.Dynamic)
	}
	if v := r.Args(1001); v == nil || v.Rule != "max_argument_size" {
		t.Errorf("Args(1001) = %v", v)
	}
	if v := r.Args(1000); v != nil {
		t.Errorf("Args(1000) = %v", v)
	}
}

func TestCompileRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{DeniedPaths: []string{"/etc/[**"}},
		{DeniedPaths: []string{"etc/**"}},
		{BlockedCommands: []string{"[sudo"}},
		{BlockedCommands: []string{""}},
		{DeniedHosts: []string{"bad host"}},
		{AllowedHosts: []string{"a/b"}},
		{AllowedHosts: []string{"host:99999"}},
		{DeniedHosts: []string{"[::1"}},
		{Protected: []string{"relative"}},
		{ReadOnly: []string{"/a/../b"}},
	} {
		if _, err := Compile(cfg); err == nil {
			t.Errorf("Compile(%+v) accepted bad config", cfg)
		}
	}
}
