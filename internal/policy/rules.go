package policy

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Config is the administrator's policy as written in [security.policy],
// plus the directories that are out of reach whatever the configuration.
type Config struct {
	BlockedCommands []string
	// DeniedPaths are doublestar globs over canonical absolute paths.
	DeniedPaths []string
	// DeniedHosts and AllowedHosts are host globs ("*.example.com",
	// "10.0.0.0/8" CIDR ranges are accepted too).
	DeniedHosts  []string
	AllowedHosts []string
	// MaxArgumentSize bounds the encoded arguments of one action, in
	// bytes; 0 means no limit.
	MaxArgumentSize int
	// Protected are directories no action may touch at all: $ASTRID_HOME
	// (keys, audit, tokens, config). Never empty in a running system.
	Protected []string
	// ReadOnly are directories no action may write: each workspace's
	// .astrid directory.
	ReadOnly []string
}

// Rules is a compiled, validated Config. It is immutable and safe for
// concurrent use.
type Rules struct {
	cfg          Config
	deniedNets   []netPattern
	allowedNets  []netPattern
	deniedHosts  []hostPattern
	allowedHosts []hostPattern
}

// hostPattern is a host glob with an optional port (0 = any port).
type hostPattern struct {
	glob string
	port int
}

// netPattern is an address range with an optional port (0 = any port).
type netPattern struct {
	prefix netip.Prefix
	port   int
}

// parseHostPattern accepts "host", "*.domain", "1.2.3.4", "10.0.0.0/8",
// each but the range optionally with ":port" ("[v6]:port" for IPv6).
func parseHostPattern(s string) (hostPattern, netPattern, bool, error) {
	if pfx, err := netip.ParsePrefix(s); err == nil {
		return hostPattern{}, netPattern{prefix: pfx.Masked()}, true, nil
	}
	host, port := s, 0
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return hostPattern{}, netPattern{}, false, fmt.Errorf("not host or host:port")
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return hostPattern{}, netPattern{}, false, fmt.Errorf("port %q is not in 1-65535", p)
		}
		host, port = h, n
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		return hostPattern{}, netPattern{prefix: netip.PrefixFrom(a, a.BitLen()), port: port}, true, nil
	}
	host = strings.ToLower(host)
	if _, err := path.Match(host, ""); err != nil || host == "" || strings.ContainsAny(host, "/ ") {
		return hostPattern{}, netPattern{}, false, fmt.Errorf("invalid host pattern")
	}
	return hostPattern{glob: host, port: port}, netPattern{}, false, nil
}

// Violation says which rule refused an action; it is what the denial, the
// audit entry and the model see. Detail never contains secrets.
type Violation struct {
	Rule   string // e.g. "blocked_commands", "denied_paths", "astrid_home"
	Detail string
}

func (v *Violation) Error() string { return "policy " + v.Rule + ": " + v.Detail }

// Compile validates cfg: every glob must parse, every protected directory
// must be absolute and clean.
func Compile(cfg Config) (*Rules, error) {
	r := &Rules{cfg: cfg}
	for _, p := range cfg.DeniedPaths {
		if !doublestar.ValidatePattern(p) {
			return nil, fmt.Errorf("denied_paths: invalid glob %q", p)
		}
		if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "**") {
			return nil, fmt.Errorf("denied_paths: %q must be absolute (or start with **)", p)
		}
	}
	for _, p := range cfg.BlockedCommands {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return nil, fmt.Errorf("blocked_commands: invalid pattern %q", p)
		}
	}
	for _, lists := range []struct {
		name  string
		in    []string
		nets  *[]netPattern
		hosts *[]hostPattern
	}{
		{"denied_hosts", cfg.DeniedHosts, &r.deniedNets, &r.deniedHosts},
		{"allowed_hosts", cfg.AllowedHosts, &r.allowedNets, &r.allowedHosts},
	} {
		for _, h := range lists.in {
			hp, np, isNet, err := parseHostPattern(h)
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %v", lists.name, h, err)
			}
			if isNet {
				*lists.nets = append(*lists.nets, np)
			} else {
				*lists.hosts = append(*lists.hosts, hp)
			}
		}
	}
	for _, d := range append(append([]string(nil), cfg.Protected...), cfg.ReadOnly...) {
		if !path.IsAbs(d) || path.Clean(d) != d {
			return nil, fmt.Errorf("protected directory %q must be absolute and clean", d)
		}
	}
	return r, nil
}

// Command judges a shell command line. It returns the analysis (so the
// caller can see whether it is dynamic) and a violation when a blocked
// command appears anywhere in it.
func (r *Rules) Command(line string) (*ShellAnalysis, *Violation) {
	a := AnalyzeShell(line)
	if c, pat, ok := a.BlockedIn(r.cfg.BlockedCommands); ok {
		where := ""
		if len(c.Via) > 0 {
			where = " (behind " + strings.Join(c.Via, ", ") + ")"
		}
		return a, &Violation{Rule: "blocked_commands", Detail: fmt.Sprintf("%q matches blocked command %q%s", c.Name, pat, where)}
	}
	return a, nil
}

// Path judges access to a canonical absolute path (see workspace.Resolve).
func (r *Rules) Path(p string, write bool) *Violation {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return &Violation{Rule: "path", Detail: fmt.Sprintf("%q is not a canonical absolute path", p)}
	}
	for _, d := range r.cfg.Protected {
		if within(d, p) || within(p, d) && write {
			// NOTE: writing a parent of a protected directory (e.g.
			// renaming it away) is as bad as writing inside it.
			return &Violation{Rule: "astrid_home", Detail: fmt.Sprintf("%s is inside Astrid's state directory, which no tool may touch", p)}
		}
	}
	if write {
		for _, d := range r.cfg.ReadOnly {
			if within(d, p) || within(p, d) {
				return &Violation{Rule: "workspace_config", Detail: fmt.Sprintf("%s: the workspace's .astrid directory is never writable by the agent", p)}
			}
		}
	}
	for _, g := range r.cfg.DeniedPaths {
		if ok, _ := doublestar.Match(g, p); ok {
			return &Violation{Rule: "denied_paths", Detail: fmt.Sprintf("%s matches denied path %q", p, g)}
		}
		// A denied directory itself ("/etc" for "/etc/**").
		if base, ok := strings.CutSuffix(g, "/**"); ok && p == base {
			return &Violation{Rule: "denied_paths", Detail: fmt.Sprintf("%s matches denied path %q", p, g)}
		}
	}
	return nil
}

// Host judges a network destination: the host name as requested, the port,
// and the addresses the name resolved to (the caller resolves; every
// address is checked, so a name that resolves to a private address is
// caught). Loopback, link-local, private, unspecified, multicast and cloud
// metadata addresses are denied unless allowed_hosts names them.
func (r *Rules) Host(host string, port int, addrs []netip.Addr) *Violation {
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if matchHost(r.deniedHosts, host, port) {
		return &Violation{Rule: "denied_hosts", Detail: fmt.Sprintf("host %s is denied", host)}
	}
	hostAllowed := matchHost(r.allowedHosts, host, port)
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = append(addrs, a)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if inAny(r.deniedNets, a, port) {
			return &Violation{Rule: "denied_hosts", Detail: fmt.Sprintf("address %s of %s is denied", a, host)}
		}
		if special := specialAddr(a); special != "" && !hostAllowed && !inAny(r.allowedNets, a, port) {
			return &Violation{Rule: "denied_hosts", Detail: fmt.Sprintf("address %s of %s is %s; allow it explicitly in allowed_hosts", a, host, special)}
		}
	}
	return nil
}

// Args judges the size of an action's encoded arguments.
func (r *Rules) Args(size int) *Violation {
	if r.cfg.MaxArgumentSize > 0 && size > r.cfg.MaxArgumentSize {
		return &Violation{Rule: "max_argument_size", Detail: fmt.Sprintf("arguments are %d bytes, the limit is %d", size, r.cfg.MaxArgumentSize)}
	}
	return nil
}

var metadataAddrs = []netip.Prefix{
	netip.MustParsePrefix("169.254.169.254/32"), // AWS, GCP, Azure, OpenStack
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS IPv6
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func specialAddr(a netip.Addr) string {
	switch {
	case containsAny(metadataAddrs, a):
		return "a cloud metadata address"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsPrivate() || cgnat.Contains(a):
		return "a private address"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast():
		return "multicast"
	}
	return ""
}

func containsAny(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func inAny(nets []netPattern, a netip.Addr, port int) bool {
	for _, n := range nets {
		if n.prefix.Contains(a) && (n.port == 0 || n.port == port) {
			return true
		}
	}
	return false
}

func matchHost(patterns []hostPattern, host string, port int) bool {
	for _, p := range patterns {
		if p.port != 0 && p.port != port {
			continue
		}
		if p.glob == host {
			return true
		}
		if ok, _ := path.Match(p.glob, host); ok {
			return true
		}
		// "*.example.com" also covers deeper names (a.b.example.com).
		if suffix, ok := strings.CutPrefix(p.glob, "*."); ok && strings.HasSuffix(host, "."+suffix) {
			return true
		}
	}
	return false
}

func within(dir, p string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}
