package capability

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
)

// Kind is the scheme of a resource.
type Kind uint8

// Resource kinds.
const (
	KindFile Kind = 1 + iota
	KindExec
	KindNet
	KindMCP
	KindCapsule
)

var kindSchemes = []string{"", "file://", "exec://", "net://", "mcp://", "capsule://"}

// String returns the scheme without "://".
func (k Kind) String() string {
	if k >= KindFile && k <= KindCapsule {
		return strings.TrimSuffix(kindSchemes[k], "://")
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MaxActionResourceLen bounds a resource passed for matching (an exec
// command line can be long); longer ones match nothing.
const MaxActionResourceLen = 64 << 10

// Resource is a parsed, literal resource URI: what an action touches.
// Build it with ParseResource.
type Resource struct {
	kind Kind
	text string
	// segs are the path segments (file, mcp, capsule) or host labels (net).
	segs []string
	port string // net
	line string // exec
}

// Kind returns the resource's scheme.
func (r Resource) Kind() Kind { return r.kind }

// String returns the canonical form.
func (r Resource) String() string { return r.text }

// Pattern is a parsed resource pattern (see the package comment for the
// glob rules). Build it with ParsePattern; the zero Pattern matches nothing.
type Pattern struct {
	kind    Kind
	text    string
	segs    []string
	port    string
	line    string
	literal bool // no '*' anywhere
}

// Kind returns the pattern's scheme.
func (p Pattern) Kind() Kind { return p.kind }

// String returns the canonical form.
func (p Pattern) String() string { return p.text }

// Literal reports whether the pattern has no globs (it matches only the
// resource with the same text).
func (p Pattern) Literal() bool { return p.literal }

// ErrInvalidResource is wrapped by the errors of ParseResource and
// ParsePattern.
var ErrInvalidResource = errors.New("invalid resource")

func invalid(s, format string, args ...any) error {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidResource, s, fmt.Sprintf(format, args...))
}

// ParseResource parses a literal resource URI. '*' has no special meaning
// in a resource. It is pure: no file system access.
func ParseResource(s string) (Resource, error) {
	if len(s) > MaxActionResourceLen {
		return Resource{}, invalid(s, "longer than %d bytes", MaxActionResourceLen)
	}
	p, err := parse(s, false)
	if err != nil {
		return Resource{}, err
	}
	return Resource{kind: p.kind, text: p.text, segs: p.segs, port: p.port, line: p.line}, nil
}

// ParsePattern parses a resource pattern.
func ParsePattern(s string) (Pattern, error) {
	if len(s) > MaxResourceLen {
		return Pattern{}, invalid(s, "longer than %d bytes", MaxResourceLen)
	}
	return parse(s, true)
}

func parse(s string, glob bool) (Pattern, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return Pattern{}, invalid(s, "contains NUL")
	}
	kind := Kind(0)
	var body string
	for k := KindFile; k <= KindCapsule; k++ {
		if rest, ok := strings.CutPrefix(s, kindSchemes[k]); ok {
			kind, body = k, rest
			break
		}
	}
	p := Pattern{kind: kind}
	switch kind {
	case KindFile:
		if !strings.HasPrefix(body, "/") {
			return Pattern{}, invalid(s, "path is not absolute")
		}
		if hasDotDot(body) {
			return Pattern{}, invalid(s, "path contains ..")
		}
		body = path.Clean(body)
		p.text = "file://" + body
		if body != "/" {
			p.segs = strings.Split(body[1:], "/")
		}
	case KindExec:
		if body == "" {
			return Pattern{}, invalid(s, "empty command line")
		}
		p.text, p.line = s, body
	case KindNet:
		host, port, err := net.SplitHostPort(body)
		if err != nil {
			return Pattern{}, invalid(s, "want net://host:port: %v", err)
		}
		host = strings.ToLower(host)
		if host == "" {
			return Pattern{}, invalid(s, "empty host")
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			ok := 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':' || (glob && c == '*')
			if !ok {
				return Pattern{}, invalid(s, "host contains %q", c)
			}
		}
		if !(glob && port == "*") {
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
				return Pattern{}, invalid(s, "port %q: want 1..65535", port)
			}
		}
		p.segs = strings.Split(host, ".")
		p.port = port
		p.text = "net://" + net.JoinHostPort(host, port)
	case KindMCP, KindCapsule:
		p.segs = strings.Split(body, "/")
		if !glob && len(p.segs) != 2 {
			return Pattern{}, invalid(s, "want %sNAME/NAME", kindSchemes[kind])
		}
		p.text = s
	default:
		return Pattern{}, invalid(s, "unknown scheme (want file, exec, net, mcp or capsule)")
	}
	if kind != KindExec {
		for _, seg := range p.segs {
			switch {
			case seg == "":
				return Pattern{}, invalid(s, "empty segment")
			case seg == "." || seg == "..":
				return Pattern{}, invalid(s, "segment %q", seg)
			case glob && strings.Contains(seg, "**") && seg != "**":
				return Pattern{}, invalid(s, "** must be a whole segment")
			}
		}
	}
	p.literal = !glob || !strings.Contains(p.text, "*")
	return p, nil
}

// Match reports whether the pattern matches the resource. A resource that
// does not parse matches nothing.
func (p Pattern) Match(resource string) bool {
	r, err := ParseResource(resource)
	return err == nil && p.MatchResource(r)
}

// MatchResource reports whether the pattern matches r.
func (p Pattern) MatchResource(r Resource) bool {
	if p.kind == 0 || p.kind != r.kind {
		return false
	}
	if p.literal {
		return p.text == r.text
	}
	switch p.kind {
	case KindExec:
		return globMatch(p.line, r.line)
	case KindNet:
		if p.port != "*" && p.port != r.port {
			return false
		}
	}
	return matchSegs(p.segs, r.segs)
}

// matchSegs matches segment globs: "**" matches zero or more segments, and
// other segments match one segment with globMatch. This is the greedy
// wildcard algorithm (backtrack to the last "**" only), which is exact
// because a "**" can absorb any run of segments; it runs in
// O(len(pat)*len(res)) segment comparisons at worst.
func matchSegs(pat, res []string) bool {
	pi, ri := 0, 0
	star, mark := -1, 0
	for ri < len(res) {
		switch {
		case pi < len(pat) && pat[pi] == "**":
			star, mark = pi, ri
			pi++
		case pi < len(pat) && globMatch(pat[pi], res[ri]):
			pi++
			ri++
		case star >= 0:
			mark++
			pi, ri = star+1, mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == "**" {
		pi++
	}
	return pi == len(pat)
}

// globMatch matches p, in which '*' matches any run of bytes, against the
// whole of s. The literal chunks between stars are found leftmost-first,
// which is exact for star-only globs.
func globMatch(p, s string) bool {
	first, rest, found := strings.Cut(p, "*")
	if !found {
		return p == s
	}
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	last := rest
	if i := strings.LastIndexByte(rest, '*'); i >= 0 {
		last = rest[i+1:]
		rest = rest[:i]
	} else {
		rest = ""
	}
	if len(s) < len(last) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[:len(s)-len(last)]
	for rest != "" {
		var chunk string
		chunk, rest, _ = strings.Cut(rest, "*")
		if chunk == "" {
			continue
		}
		i := strings.Index(s, chunk)
		if i < 0 {
			return false
		}
		s = s[i+len(chunk):]
	}
	return true
}

// Covers reports whether p provably matches every resource q matches. It
// is conservative: it answers true only when q equals p, q is a literal
// that p matches, or q extends the literal prefix of a p ending in "/**"
// (file, mcp, capsule; for net, a literal host with any port; for exec, a
// p of the form "L*" and a q starting with L). Anything else is false, even
// if it happens to be a subset.
func (p Pattern) Covers(q Pattern) bool {
	if p.kind == 0 || p.kind != q.kind {
		return false
	}
	if p.text == q.text {
		return true
	}
	if q.literal {
		r, err := ParseResource(q.text)
		return err == nil && p.MatchResource(r)
	}
	switch p.kind {
	case KindFile, KindMCP, KindCapsule:
		n := len(p.segs)
		if n == 0 || p.segs[n-1] != "**" || len(q.segs) < n-1 {
			return false
		}
		for i, s := range p.segs[:n-1] {
			if strings.Contains(s, "*") || q.segs[i] != s {
				return false
			}
		}
		return true
	case KindExec:
		prefix, ok := strings.CutSuffix(p.line, "*")
		return ok && !strings.Contains(prefix, "*") && strings.HasPrefix(q.line, prefix)
	case KindNet:
		if p.port != "*" || strings.Contains(strings.Join(p.segs, "."), "*") {
			return false
		}
		return strings.Join(p.segs, ".") == strings.Join(q.segs, ".")
	}
	return false
}

// indexKey returns the leading literal segments of the pattern: every
// resource it matches starts with them (see index.go). For exec the
// "segments" are the space-separated words of the line.
func (p Pattern) indexKey() []string {
	segs := p.segs
	switch p.kind {
	case KindExec:
		segs = strings.Split(p.line, " ")
		if !p.literal {
			// The last word before a star may continue past what is
			// written ("git sta*" matches "git status"), so only the
			// words wholly before the first star count.
			segs = strings.Split(p.line[:strings.IndexByte(p.line, '*')], " ")
			segs = segs[:len(segs)-1]
		}
		return segs
	case KindNet:
		// Host globs are rare; index net patterns by the whole literal
		// host:port only.
		if p.literal {
			return []string{p.text}
		}
		return nil
	}
	for i, s := range segs {
		if strings.Contains(s, "*") {
			return segs[:i]
		}
	}
	return segs
}

// indexPath returns the segments a resource is looked up by (see
// Pattern.indexKey).
func (r Resource) indexPath() []string {
	switch r.kind {
	case KindExec:
		return strings.Split(r.line, " ")
	case KindNet:
		return []string{r.text}
	}
	return r.segs
}
