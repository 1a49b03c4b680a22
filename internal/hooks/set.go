package hooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/astrid-runtime/astrid/internal/sandbox"
)

// Bounds on what a handler may send back.
const (
	maxOutput = 1 << 20
	maxStderr = 4 << 10
)

// Options configure Load.
type Options struct {
	// Home is $ASTRID_HOME; Workspace the canonical workspace root ("" for
	// none).
	Home      string
	Workspace string
	// Enabled is hooks.enabled; AllowWorkspace hooks.allow_workspace_hooks.
	Enabled        bool
	AllowWorkspace bool
	// Timeout is hooks.timeout_secs: the default and largest hook timeout.
	Timeout time.Duration
	// AllowedHosts are the hosts (hooks.allowed_hosts: names, *.suffix,
	// host:port or CIDR) HTTP hooks may post to besides loopback.
	AllowedHosts []string
	// Trust records trusted workspaces; nil trusts none.
	Trust *Trust
	// Sandbox runs command hooks; nil makes every command hook fail.
	Sandbox *sandbox.Sandbox
	// StageRoot is a private directory outside Home for the staged hooks
	// directories and the hooks' temporary directories.
	StageRoot string
	Logger    *slog.Logger
	Now       func() time.Time
}

// Set is the hooks of one workspace (the user's and, when trusted, the
// workspace's). It is safe for concurrent use; Close it when done.
type Set struct {
	o      Options
	log    *slog.Logger
	hooks  []*Hook // sorted by priority, user hooks first among equals
	err    error   // a load error: blocking events are blocked
	stages []string
	stamp  string // fingerprint of the files the Set was loaded from
	async  sync.WaitGroup

	// mu is held shared by Fire and exclusively by Close, so that the
	// staged directories outlive every hook that runs from them.
	mu     sync.RWMutex
	closed bool // guarded by mu
}

// Load reads the hooks of o.Home and o.Workspace. A file that cannot be
// read or parsed does not fail Load: the Set remembers the error (Err)
// and blocks every blocking event, since a security hook may be missing.
func Load(o Options) *Set {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	s := &Set{o: o, log: o.Logger}
	if !o.Enabled {
		return s
	}
	s.stamp = s.fingerprint()
	if err := s.load(UserDir(o.Home), false); err != nil {
		s.err = err
	}
	if o.Workspace != "" && s.err == nil {
		if err := s.load(WorkspaceDir(o.Workspace), true); err != nil {
			s.err = err
		}
	}
	sort.SliceStable(s.hooks, func(i, j int) bool { return s.hooks[i].Priority < s.hooks[j].Priority })
	return s
}

func (s *Set) load(dir string, workspace bool) error {
	file := filepath.Join(dir, "hooks.toml")
	t, err := readTree(dir)
	if err != nil {
		return err
	}
	data, ok := t.files["hooks.toml"]
	if !ok {
		return nil
	}
	hs, err := Parse(file, data.data, s.o.Timeout)
	if err != nil {
		return err
	}
	trusted := !workspace
	if workspace && s.o.AllowWorkspace && s.o.Trust != nil {
		d, err := s.o.Trust.Digest(s.o.Workspace)
		if err != nil {
			return err
		}
		trusted = d != "" && d == t.digest
	}
	stage := ""
	if trusted {
		if stage, err = t.stage(s.o.StageRoot); err != nil {
			return fmt.Errorf("hooks: stage %s: %w", dir, err)
		}
		s.stages = append(s.stages, stage)
	}
	for _, h := range hs {
		h.Workspace, h.Trusted, h.Dir = workspace, trusted, stage
		s.hooks = append(s.hooks, h)
	}
	return nil
}

// Err is the error that made loading fail, if any.
func (s *Set) Err() error { return s.err }

// Hooks lists the hooks in the order they run, untrusted ones included.
func (s *Set) Hooks() []*Hook { return append([]*Hook(nil), s.hooks...) }

// Close waits for the hooks running, async ones included, and removes
// the staged directories. Fire on a closed Set reports closed.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.async.Wait()
	for _, d := range s.stages {
		os.RemoveAll(d)
	}
}

// Stale reports whether the files the Set was loaded from (the hooks
// directories and the trust file) changed since: the caller should Load
// again. A disabled Set is never stale.
func (s *Set) Stale() bool {
	return s.o.Enabled && s.fingerprint() != s.stamp
}

// fingerprint names, sizes and modification times of every file that
// Load reads.
func (s *Set) fingerprint() string {
	var b strings.Builder
	dirs := []string{UserDir(s.o.Home)}
	if s.o.Workspace != "" {
		dirs = append(dirs, WorkspaceDir(s.o.Workspace))
	}
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(&b, "%s:error\n", p)
				return nil
			}
			if fi, err := d.Info(); err == nil {
				fmt.Fprintf(&b, "%s:%d:%d:%v\n", p, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
			}
			return nil
		})
	}
	if s.o.Trust != nil {
		if fi, err := os.Stat(s.o.Trust.path); err == nil {
			fmt.Fprintf(&b, "trust:%d:%d\n", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

// Fire runs the hooks of p.Event that apply (for tool events, those that
// match p.Tool), in priority order, and combines their answers (see
// Result). It stops at the first block. Async hooks are started and not
// waited for. On a closed Set, Fire blocks blocking events; see TryFire.
func (s *Set) Fire(ctx context.Context, p Payload) Result {
	res, ok := s.TryFire(ctx, p)
	if !ok && p.Event.Blocking() {
		return Result{Decision: Block, Reason: "the hooks were closed"}
	}
	return res
}

// TryFire is Fire; ok is false, and nothing ran, when the Set is closed.
func (s *Set) TryFire(ctx context.Context, p Payload) (res Result, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Result{Decision: Continue}, false
	}
	return s.fire(ctx, p), true
}

func (s *Set) fire(ctx context.Context, p Payload) Result {
	res := Result{Decision: Continue}
	if s.err != nil && p.Event.Blocking() {
		return Result{Decision: Block, Reason: "the hooks configuration is invalid: " + s.err.Error()}
	}
	for _, h := range s.hooks {
		if h.Event != p.Event || !h.Trusted || (p.Event.ToolEvent() && !h.Matches(p.Tool)) {
			continue
		}
		if h.Async {
			s.async.Add(1)
			go func() {
				defer s.async.Done()
				if _, err := s.Run(context.WithoutCancel(ctx), h, p); err != nil && h.FailAction != FailIgnore {
					s.log.Warn("async hook failed", "hook", h.Name, "event", p.Event, "err", err)
				}
			}()
			continue
		}
		res.Ran++
		resp, err := s.Run(ctx, h, p)
		if err != nil {
			switch h.FailAction {
			case FailBlock:
				return Result{Decision: Block, Hook: h.Name, Reason: fmt.Sprintf("hook %s failed: %v", h.Name, err), Ran: res.Ran}
			case FailWarn:
				s.log.Warn("hook failed", "hook", h.Name, "event", p.Event, "err", err)
			}
			continue
		}
		switch resp.Decision {
		case Block:
			return Result{Decision: Block, Hook: h.Name, Reason: resp.Reason, Ran: res.Ran}
		case Ask:
			if res.Decision != Ask {
				res.Decision, res.Hook, res.Reason = Ask, h.Name, resp.Reason
			}
		case Modify:
			p.Arguments = resp.Arguments
			res.Arguments = resp.Arguments
			res.Modifiers = append(res.Modifiers, h.Name)
			if res.Decision == Continue {
				res.Decision = Modify
			}
		}
	}
	return res
}

// Run runs one hook with payload p and returns its checked answer. It
// does not apply the fail action.
func (s *Set) Run(ctx context.Context, h *Hook, p Payload) (Response, error) {
	if !h.Trusted {
		return Response{}, errors.New("the hook's workspace is not trusted")
	}
	p.Event, p.Hook = h.Event, h.Name
	if p.Time.IsZero() {
		p.Time = s.o.Now().UTC()
	}
	in, err := json.Marshal(p)
	if err != nil {
		return Response{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	var out []byte
	if h.URL != "" {
		out, err = s.post(ctx, h, in)
	} else {
		out, err = s.command(ctx, h, in)
	}
	if ctx.Err() == context.DeadlineExceeded {
		return Response{}, fmt.Errorf("timed out after %s", h.Timeout)
	}
	if err != nil {
		return Response{}, err
	}
	var r Response
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Response{}, fmt.Errorf("invalid answer (want one JSON object): %v", err)
	}
	if dec.More() {
		return Response{}, errors.New("invalid answer: more than one JSON value")
	}
	if err := r.check(h.Event); err != nil {
		return Response{}, fmt.Errorf("invalid answer: %v", err)
	}
	return r, nil
}

// limited is a writer that keeps the first n bytes and remembers overflow.
type limited struct {
	buf  bytes.Buffer
	n    int
	over bool
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.buf.Len(); room < len(p) {
		l.over = true
		l.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return l.buf.Write(p)
}

func (s *Set) command(ctx context.Context, h *Hook, in []byte) ([]byte, error) {
	if s.o.Sandbox == nil {
		return nil, errors.New("no sandbox: command hooks cannot run")
	}
	prog := h.Command[0]
	if !filepath.IsAbs(prog) && strings.Contains(prog, "/") {
		prog = filepath.Join(h.Dir, prog)
	}
	var ro []string
	for _, d := range sandbox.SystemDirs {
		if _, err := os.Stat(d); err == nil {
			ro = append(ro, d)
		}
	}
	ro = append(ro, h.Dir)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	tmp := filepath.Join(s.o.StageRoot, "tmp-"+hex.EncodeToString(rnd[:]))
	defer os.RemoveAll(tmp)
	prof := sandbox.Profile{
		ReadOnly: ro,
		TempDir:  tmp,
		Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + tmp, "LANG=C.UTF-8",
			"ASTRID_HOOK_EVENT=" + string(h.Event), "ASTRID_HOOK_NAME=" + h.Name},
		Dir:    h.Dir,
		Limits: sandbox.Limits{CPUSeconds: uint64(h.Timeout/time.Second) + 1},
	}
	cmd, err := s.o.Sandbox.Command(ctx, prof, prog, h.Command[1:]...)
	if err != nil {
		return nil, err
	}
	stdout, stderr := &limited{n: maxOutput}, &limited{n: maxStderr}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.buf.String())
		if msg != "" {
			return nil, fmt.Errorf("%v: %s", err, msg)
		}
		return nil, err
	}
	if stdout.over {
		return nil, fmt.Errorf("output larger than %d bytes", maxOutput)
	}
	return stdout.buf.Bytes(), nil
}

func (s *Set) post(ctx context.Context, h *Hook, in []byte) ([]byte, error) {
	u, err := url.Parse(h.URL)
	if err != nil {
		return nil, err
	}
	anyAddr := hostAllowed(u, s.o.AllowedHosts)
	d := &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		if anyAddr {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			return fmt.Errorf("hook %s: %s is not a loopback address and its host is not in hooks.allowed_hosts", h.Name, address)
		}
		return nil
	}}
	c := &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext, Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOutput+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	if len(body) > maxOutput {
		return nil, fmt.Errorf("answer larger than %d bytes", maxOutput)
	}
	return body, nil
}

// hostAllowed reports whether u's host is in the allow list: an exact
// name, "*.suffix", "host:port", or a CIDR prefix holding the address.
func hostAllowed(u *url.URL, allowed []string) bool {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, a := range allowed {
		a = strings.ToLower(a)
		if pfx, err := netip.ParsePrefix(a); err == nil {
			if ip, err := netip.ParseAddr(host); err == nil && pfx.Contains(ip.Unmap()) {
				return true
			}
			continue
		}
		h, p := a, ""
		if hh, pp, err := net.SplitHostPort(a); err == nil {
			h, p = hh, pp
		}
		if p != "" && p != port {
			continue
		}
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}
