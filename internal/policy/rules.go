package policy

import (
	"fmt"
	"net/netip"
	"path"
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
	deniedNets   []netip.Prefix
	allowedNets  []netip.Prefix
	deniedHosts  []string
	allowedHosts []string
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
		nets  *[]netip.Prefix
		hosts *[]string
	}{
		{"denied_hosts", cfg.DeniedHosts, &r.deniedNets, &r.deniedHosts},
		{"allowed_hosts", cfg.AllowedHosts, &r.allowedNets, &r.allowedHosts},
	} {
		for _, h := range lists.in {
			if pfx, err := netip.ParsePrefix(h); err == nil {
				*lists.nets = append(*lists.nets, pfx.Masked())
				continue
			}
			if a, err := netip.ParseAddr(h); err == nil {
				*lists.nets = append(*lists.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			h = strings.ToLower(h)
			if _, err := path.Match(h, ""); err != nil || h == "" || strings.ContainsAny(h, "/ ") {
				return nil, fmt.Errorf("%s: invalid host pattern %q", lists.name, h)
			}
			*lists.hosts = append(*lists.hosts, h)
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

// Host judges a network destination: the host name as requested and the
// addresses it resolved to (the caller resolves; every address is checked,
// so a name that resolves to a private address is caught). Loopback,
// link-local, private, unspecified, multicast and cloud metadata addresses
// are denied unless allowed_hosts names them.
func (r *Rules) Host(host string, addrs []netip.Addr) *Violation {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if matchHost(r.deniedHosts, host) {
		return &Violation{Rule: "denied_hosts", Detail: fmt.Sprintf("host %s is denied", host)}
	}
	hostAllowed := matchHost(r.allowedHosts, host)
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = append(addrs, a)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if inAny(r.deniedNets, a) {
			return &Violation{Rule: "denied_hosts", Detail: fmt.Sprintf("address %s of %s is denied", a, host)}
		}
		if special := specialAddr(a); special != "" && !hostAllowed && !inAny(r.allowedNets, a) {
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
	case inAny(metadataAddrs, a):
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

func inAny(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func matchHost(patterns []string, host string) bool {
	for _, p := range patterns {
		if p == host {
			return true
		}
		if ok, _ := path.Match(p, host); ok {
			return true
		}
		// "*.example.com" also covers deeper names (a.b.example.com).
		if suffix, ok := strings.CutPrefix(p, "*."); ok && strings.HasSuffix(host, "."+suffix) {
			return true
		}
	}
	return false
}

func within(dir, p string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}
