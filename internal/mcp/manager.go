package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// Server states, as api.ServerInfo reports them.
const (
	StateStopped  = "stopped"
	StateStarting = "starting"
	StateRunning  = "running"
	StateFailed   = "failed"
)

// Protocol versions the client speaks, newest first. A server is asked
// for the first; an older one may answer with any of the others.
var Protocols = []string{mcpgo.ProtocolVersion20251125, mcpgo.ProtocolVersion20250618, mcpgo.ProtocolVersion20250326}

// ErrNotConfigured is returned for a server name no configuration layer
// defines; the daemon maps it to api.ErrNotFound.
var ErrNotConfigured = fmt.Errorf("%w: no such MCP server", api.ErrNotFound)

// ErrNotRunning is returned when a server is needed but not running; the
// daemon answers it as api.ErrUnavailable.
var ErrNotRunning = fmt.Errorf("%w: mcp server is not running", api.ErrUnavailable)

// Limits bound what a server may send. Zero fields take DefaultLimits.
type Limits struct {
	// MessageBytes bounds one JSON-RPC message from a server; a larger one
	// is a violation and stops the server.
	MessageBytes int
	// ResultChars bounds the text of a tool result given to the model; the
	// rest is cut with a note.
	ResultChars int
	// Tools bounds the tools of one server; SchemaBytes one input schema;
	// DescriptionChars one description (cut, not refused).
	Tools            int
	SchemaBytes      int
	DescriptionChars int
	// ElicitationsPerMinute and SamplesPerMinute bound a server's requests
	// to the user and the model. Requests over the limit are refused; a
	// server that keeps sending them (FloodFactor times the limit in one
	// minute) is stopped as misbehaving.
	ElicitationsPerMinute int
	SamplesPerMinute      int
	FloodFactor           int
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MessageBytes:          8 << 20,
		ResultChars:           100_000,
		Tools:                 256,
		SchemaBytes:           64 << 10,
		DescriptionChars:      4096,
		ElicitationsPerMinute: 10,
		SamplesPerMinute:      10,
		FloodFactor:           5,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&l.MessageBytes, d.MessageBytes)
	pick(&l.ResultChars, d.ResultChars)
	pick(&l.Tools, d.Tools)
	pick(&l.SchemaBytes, d.SchemaBytes)
	pick(&l.DescriptionChars, d.DescriptionChars)
	pick(&l.ElicitationsPerMinute, d.ElicitationsPerMinute)
	pick(&l.SamplesPerMinute, d.SamplesPerMinute)
	pick(&l.FloodFactor, d.FloodFactor)
	return l
}

// Event is something the manager tells the rest of the runtime: state
// changes, tool list changes, progress of a call, a server's log line, a
// URL elicitation completed.
type Event struct {
	// Kind is "state", "tools_changed", "progress", "task", "log",
	// "elicitation_complete", "resource_updated", "health" (a ping of a
	// running server: Error set when it failed), "tool_called" (an
	// authorised call is sent: Session, Tool) or "tool_completed" (its
	// answer: Error set when it failed).
	Kind   string
	Server string
	// Workspace is the root of the workspace that added Server, "" for a
	// configured server.
	Workspace string
	// Session is the session the event belongs to, when known (progress).
	Session string
	// State and Error describe a state change.
	State string
	Error string
	// Progress, Total and Message describe progress (Total 0: unknown);
	// Message is also the text of a log line.
	Progress float64
	Total    float64
	Message  string
	// Tool is the prefixed tool name a progress or task event is about.
	Tool string
	// ID is the elicitation id, resource URI or task id; State is also a
	// task's status and Message its status message.
	ID string
	// Duration is how long a health check took.
	Duration time.Duration
}

// Options configure a Manager. Servers and, for stdio servers, Sandbox are
// required; the rest may be zero.
type Options struct {
	// Servers are the configured servers by name ([servers.NAME]).
	Servers map[string]config.Server
	// Sandbox runs stdio servers.
	Sandbox *sandbox.Sandbox
	// TempRoot holds each stdio server's private temp dir (its HOME);
	// empty means os.TempDir()/astrid-mcp. It must not be inside
	// $ASTRID_HOME (the sandbox refuses that).
	TempRoot string
	// ToolchainDirs are granted read-only to stdio servers and put on their
	// PATH (for example an installed Node).
	ToolchainDirs []string
	// PATH resolves stdio commands without a slash; empty means the
	// daemon's $PATH.
	PATH string
	// RequestTimeout bounds each request to a server ([timeouts]
	// mcp_request_secs); zero means 60 s. StartTimeout bounds start-up to
	// tools listed; zero means 30 s.
	RequestTimeout time.Duration
	StartTimeout   time.Duration
	// HealthInterval is how often a running server is pinged
	// ([gateway] health_interval_secs); zero means 30 s, negative never.
	HealthInterval time.Duration
	// MaxRetries bounds restarts under restart_policy on-failure
	// ([retry] max_attempts); zero means 3. Backoff starts at
	// InitialBackoff and doubles up to MaxBackoff (zero: 500 ms, 30 s).
	MaxRetries     int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// StopGrace is how long a stdio server gets to exit after its stdin is
	// closed before it is signalled; zero means 2 s.
	StopGrace time.Duration
	// URLElicitationWait bounds how long a call refused with -32042 waits,
	// after the user accepted the URL elicitation, for the server's
	// notifications/elicitation/complete before it fails; zero means 5
	// minutes.
	URLElicitationWait time.Duration
	Limits             Limits
	// Sampler, Elicitor and Roots answer the servers' requests; nil ones
	// are not offered to servers.
	Sampler  Sampler
	Elicitor Elicitor
	Roots    Roots
	// Audit records refused starts (a binary whose hash changed) and
	// started servers; nil records nothing.
	Audit interface {
		Append(ctx context.Context, e audit.Entry) (audit.Receipt, error)
	}
	// Notify receives events; it must not block.
	Notify func(Event)
	Logger *slog.Logger
	// HTTPClient is the base client for Streamable HTTP servers; nil means
	// a client with http.DefaultTransport's settings.
	HTTPClient *http.Client
	// ClientName and ClientVersion identify Astrid to servers.
	ClientName    string
	ClientVersion string
	// OAuth configures the authorization of Streamable HTTP servers.
	OAuth OAuthOptions
}

// Manager runs the configured MCP servers and offers their tools. It is
// safe for concurrent use.
type Manager struct {
	o      Options
	limits Limits
	log    *slog.Logger

	mu         sync.Mutex
	servers    map[string]*server            // guarded by mu; every configured server
	wsServers  map[string]map[string]*server // guarded by mu; servers workspaces added, by workspace root
	registries map[*tools.Registry]string    // guarded by mu; kept in sync with the tools; value: its workspace
	closed     bool                          // guarded by mu
	elicits    map[string]context.CancelFunc // guarded by mu; open elicitations by id
	oauth      *oauthStore                   // servers' OAuth tokens
}

// New checks o and returns a Manager with every configured server
// stopped. Call StartAutoStart to start those marked auto_start.
func New(o Options) (*Manager, error) {
	for name, s := range o.Servers {
		if err := checkServer(name, s, o.Sandbox); err != nil {
			return nil, err
		}
	}
	if o.TempRoot == "" {
		o.TempRoot = filepath.Join(os.TempDir(), "astrid-mcp")
	}
	if o.PATH == "" {
		o.PATH = os.Getenv("PATH")
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 60 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 30 * time.Second
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 3
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 2 * time.Second
	}
	if o.URLElicitationWait <= 0 {
		o.URLElicitationWait = 5 * time.Minute
	}
	if o.Notify == nil {
		o.Notify = func(Event) {}
	}
	if o.ClientName == "" {
		o.ClientName = "astrid"
	}
	if o.ClientVersion == "" {
		o.ClientVersion = "dev"
	}
	m := &Manager{o: o, limits: o.Limits.withDefaults(), log: o.Logger, servers: map[string]*server{},
		wsServers: map[string]map[string]*server{}, registries: map[*tools.Registry]string{}, elicits: map[string]context.CancelFunc{}, oauth: newOAuthStore(o.OAuth.Dir)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	for name, s := range o.Servers {
		m.servers[name] = &server{m: m, name: name, cfg: s, state: StateStopped}
	}
	return m, nil
}

// checkServer checks one server's configuration.
func checkServer(name string, s config.Server, sb *sandbox.Sandbox) error {
	switch s.Transport {
	case "stdio":
		if s.Command == "" {
			return fmt.Errorf("mcp server %s: stdio needs a command", name)
		}
		if sb == nil {
			return fmt.Errorf("mcp server %s: stdio servers need the sandbox", name)
		}
	case "streamable-http":
		if s.URL == "" {
			return fmt.Errorf("mcp server %s: streamable-http needs a url", name)
		}
	default:
		return fmt.Errorf("mcp server %s: unknown transport %q", name, s.Transport)
	}
	if !validServerName(name) {
		return fmt.Errorf("mcp server name %q: want 1-64 letters, digits, '-' or '_'", name)
	}
	return nil
}

func validServerName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' || s[0] == '_' {
		return false
	}
	return tools.ValidName(s)
}

// StartAutoStart starts every server marked auto_start (never one a
// workspace added: config forces those off). Failures are reported in
// the servers' state and returned joined; the others still start.
func (m *Manager) StartAutoStart(ctx context.Context) error {
	var errs []error
	for _, name := range m.names() {
		s := m.server(name)
		if s != nil && s.cfg.AutoStart && s.cfg.Trusted {
			if _, err := m.Start(ctx, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := slices.Collect(maps.Keys(m.servers))
	sort.Strings(names)
	return names
}

func (m *Manager) server(name string) *server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.servers[name]
}

// List describes every configured server (astrid.listServers).
func (m *Manager) List() []api.ServerInfo {
	var out []api.ServerInfo
	for _, s := range m.all() {
		out = append(out, s.info())
	}
	return out
}

// Start starts a configured server and returns once it answered
// initialize and listed its tools (astrid.startServer). Starting a running
// server returns its info. ErrNotConfigured for an unknown name.
func (m *Manager) Start(ctx context.Context, name string) (api.ServerInfo, error) {
	return m.StartIn(ctx, "", name)
}

// Stop stops a server (astrid.stopServer): its tools are withdrawn, a
// stdio process gets its stdin closed, then SIGTERM, then SIGKILL.
// Stopping a stopped server is not an error.
func (m *Manager) Stop(ctx context.Context, name string) error {
	return m.StopIn("", name)
}

// ListTools describes the tools of the running servers, or of one server
// (astrid.listTools without a session). Names are the prefixed names the
// model sees.
func (m *Manager) ListTools(server string) ([]api.ToolInfo, error) {
	var names []string
	if server != "" {
		if m.server(server) == nil {
			return nil, fmt.Errorf("%w: %q", ErrNotConfigured, server)
		}
		names = []string{server}
	} else {
		names = m.names()
	}
	var out []api.ToolInfo
	for _, n := range names {
		s := m.server(n)
		if s == nil {
			continue
		}
		for _, t := range s.toolList() {
			sp := t.Spec()
			out = append(out, api.ToolInfo{Name: sp.Name, Source: "mcp:" + n, Description: sp.Description, InputSchema: sp.InputSchema})
		}
	}
	return out, nil
}

// Tools returns the tools of every running configured server, for a
// tools.Registry (an owned server's tools go to its owner).
func (m *Manager) Tools() []tools.Tool {
	var out []tools.Tool
	for _, n := range m.names() {
		s := m.server(n)
		if s == nil || s.owned != nil {
			continue
		}
		for _, t := range s.toolList() {
			out = append(out, t)
		}
	}
	return out
}

// Attach registers the running servers' tools in reg, with the tools
// that reach their resources and prompts (ResourceTools), and keeps reg in
// sync as servers start, stop and change their tool lists, until the
// returned function is called. A tool whose name reg refuses (taken) is
// left out and logged. Servers a workspace added are not attached: see
// AttachWorkspace.
func (m *Manager) Attach(reg *tools.Registry) (detach func()) {
	return m.AttachWorkspace(reg, "")
}

// AttachWorkspace is Attach for the registry of one workspace root: the
// servers added by that workspace (SetWorkspaceServers) join it as well.
func (m *Manager) AttachWorkspace(reg *tools.Registry, workspace string) (detach func()) {
	m.mu.Lock()
	m.registries[reg] = workspace
	m.mu.Unlock()
	added := append(m.Tools(), m.ResourceTools()...)
	for _, t := range m.workspaceTools(workspace) {
		added = append(added, t)
	}
	for _, t := range added {
		if err := reg.Register(t); err != nil {
			m.log.Warn("mcp tool not registered", "tool", t.Spec().Name, "err", err)
		}
	}
	return func() {
		m.mu.Lock()
		delete(m.registries, reg)
		m.mu.Unlock()
		for _, t := range append(m.Tools(), m.ResourceTools()...) {
			reg.Unregister(t.Spec().Name)
		}
		for _, t := range m.workspaceTools(workspace) {
			reg.Unregister(t.Spec().Name)
		}
	}
}

// swapTools replaces old by new in every registry attached for
// workspace ("" : every registry, for the configured servers).
func (m *Manager) swapTools(workspace string, old, new []*Tool) {
	m.mu.Lock()
	var regs []*tools.Registry
	for reg, ws := range m.registries {
		if workspace == "" || ws == workspace {
			regs = append(regs, reg)
		}
	}
	m.mu.Unlock()
	names := tools.Names(asTools(old))
	for _, reg := range regs {
		// One step: a call never finds a tool missing that both lists
		// hold (tools/list_changed arrives while calls run).
		if err := reg.Replace(names, asTools(new)); err != nil {
			m.log.Warn("mcp tools not registered", "err", err)
		}
	}
}

// RootsChanged tells every running server that supports it that the roots
// changed (notifications/roots/list_changed); they ask again.
func (m *Manager) RootsChanged(ctx context.Context) {
	for _, s := range m.all() {
		if c := s.current(); c != nil {
			if err := c.client.RootListChanges(ctx); err != nil {
				m.log.Debug("roots list_changed not sent", "server", s.name, "err", err)
			}
		}
	}
}

// Close stops every server and waits for them, within ctx.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range m.all() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stop(StateStopped, "")
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) auditStart(name string, cfg config.Server, err error) {
	if m.o.Audit == nil {
		return
	}
	e := audit.Entry{Type: audit.TypeDecision, Session: "daemon", Principal: "astridd", Frontend: "daemon",
		Action:   audit.Action{Kind: "mcp_server_start", Resource: clip("mcp://"+name+"/", audit.MaxResource), ArgsHash: audit.HashBytes([]byte(cfg.Command + "\x00" + strings.Join(cfg.Args, "\x00") + "\x00" + cfg.URL))},
		Decision: audit.Allowed, Proof: audit.Proof{Rule: "configured"}}
	var hm *HashMismatchError
	if errors.As(err, &hm) {
		e.Decision, e.Proof.Rule, e.Text = audit.Denied, "binary_hash", audit.ClipText(hm.Error())
	} else if err != nil {
		return
	}
	if _, aerr := m.o.Audit.Append(context.Background(), e); aerr != nil {
		m.log.Error("audit append failed for an MCP server start", "server", name, "err", aerr)
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// server is one configured server and its supervisor.
type server struct {
	m    *Manager
	name string
	cfg  config.Server
	// workspace is the root of the workspace that added the server, ""
	// for the configured (system and user) servers.
	workspace string
	// owned is set for a server added with AddOwned.
	owned *Owned

	// opMu serialises start and stop.
	opMu sync.Mutex

	mu      sync.Mutex
	state   string        // guarded by mu
	lastErr string        // guarded by mu
	conn    *conn         // guarded by mu; nil unless running
	tools   []*Tool       // guarded by mu
	sup     chan struct{} // guarded by mu; closed to stop the supervisor
	supDone chan struct{} // guarded by mu; closed when it returned
}

func (s *server) info() api.ServerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return api.ServerInfo{Name: s.name, Transport: s.cfg.Transport, State: s.state, Tools: len(s.tools), Error: s.lastErr, Workspace: s.workspace}
}

func (s *server) toolList() []*Tool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tools)
}

func (s *server) current() *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

func (s *server) setState(state, errText string) {
	s.mu.Lock()
	changed := s.state != state || s.lastErr != errText
	s.state, s.lastErr = state, errText
	s.mu.Unlock()
	if changed {
		s.m.o.Notify(Event{Kind: "state", Server: s.name, State: state, Error: errText})
	}
}

// start connects if not running and starts the supervisor.
func (s *server) start(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.current() != nil {
		return nil
	}
	s.setState(StateStarting, "")
	c, err := s.connect(ctx)
	s.m.auditStart(s.name, s.cfg, err)
	if err != nil {
		s.setState(StateFailed, err.Error())
		return err
	}
	s.install(c)
	sup, done := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.sup, s.supDone = sup, done
	s.mu.Unlock()
	go s.supervise(c, sup, done)
	return nil
}

// install makes c the live connection and publishes its tools.
func (s *server) install(c *conn) {
	s.mu.Lock()
	old := s.tools
	s.conn, s.tools = c, c.tools
	s.mu.Unlock()
	s.swap(old, c.tools)
	s.setState(StateRunning, "")
	s.m.o.Notify(Event{Kind: "tools_changed", Server: s.name})
}

// uninstall withdraws the connection and its tools.
func (s *server) uninstall() {
	s.mu.Lock()
	old := s.tools
	s.conn, s.tools = nil, nil
	s.mu.Unlock()
	s.swap(old, nil)
	if len(old) > 0 {
		s.m.o.Notify(Event{Kind: "tools_changed", Server: s.name})
	}
}

// stop ends the supervisor (which closes the connection) and leaves the
// server in state.
func (s *server) stop(state, errText string) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	sup, done := s.sup, s.supDone
	s.sup, s.supDone = nil, nil
	s.mu.Unlock()
	if sup != nil {
		close(sup)
		<-done
	}
	s.uninstall()
	s.setState(state, errText)
}

// supervise watches a connection: health pings, death, violations; it
// restarts per restart_policy and returns when told to stop (closing the
// live connection) or when it gives up.
func (s *server) supervise(c *conn, stop, done chan struct{}) {
	defer close(done)
	retries := 0
	for {
		reason, failed := s.watch(c, stop)
		s.uninstall()
		c.close(s.m.o.StopGrace)
		if reason == "" {
			return // asked to stop
		}
		var ve *ViolationError
		violation := errors.As(c.why(), &ve)
		s.m.log.Warn("mcp server ended", "server", s.name, "reason", reason, "violation", violation)
		restart := !violation && (s.cfg.RestartPolicy == "always" || s.cfg.RestartPolicy == "on-failure" && failed)
		if s.cfg.RestartPolicy == "on-failure" && retries >= s.m.o.MaxRetries {
			restart = false
			reason += fmt.Sprintf(" (gave up after %d restarts)", retries)
		}
		if !restart {
			state := StateFailed
			if !failed && !violation {
				state = StateStopped
			}
			s.setState(state, reason)
			s.mu.Lock()
			if s.sup == stop {
				s.sup, s.supDone = nil, nil
			}
			s.mu.Unlock()
			return
		}
		if time.Since(c.started) > 2*s.m.o.MaxBackoff {
			retries = 0 // it ran well for a while: start counting afresh
		}
		backoff := s.m.o.InitialBackoff << min(retries, 16)
		backoff = min(backoff, s.m.o.MaxBackoff)
		retries++
		s.setState(StateStarting, reason)
		for {
			t := time.NewTimer(backoff)
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			nc, err := s.connect(ctx)
			cancel()
			if err == nil {
				c = nc
				s.install(c)
				break
			}
			s.m.auditStart(s.name, s.cfg, err)
			var hm *HashMismatchError
			if errors.As(err, &hm) || (s.cfg.RestartPolicy == "on-failure" && retries >= s.m.o.MaxRetries) {
				s.setState(StateFailed, err.Error())
				s.mu.Lock()
				if s.sup == stop {
					s.sup, s.supDone = nil, nil
				}
				s.mu.Unlock()
				return
			}
			retries++
			backoff = min(backoff*2, s.m.o.MaxBackoff)
			s.setState(StateStarting, err.Error())
		}
	}
}

// watch waits until c dies, fails a health check, or stop is closed. It
// returns "" for stop, else the reason and whether it counts as a failure.
func (s *server) watch(c *conn, stop chan struct{}) (string, bool) {
	var tick <-chan time.Time
	if s.m.o.HealthInterval > 0 {
		t := time.NewTicker(s.m.o.HealthInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-stop:
			return "", false
		case <-c.dead:
			err := c.why()
			if err == nil {
				return "the server exited", false
			}
			return err.Error(), true
		case <-tick:
			ctx, cancel := context.WithTimeout(context.Background(), s.m.o.RequestTimeout)
			t0 := time.Now()
			//lint:ignore SA1019 ping is the health check of the 2025 revisions Astrid pins.
			err := c.client.Ping(ctx)
			cancel()
			s.m.o.Notify(Event{Kind: "health", Server: s.name, Error: errText(err), Duration: time.Since(t0)})
			if err != nil {
				select {
				case <-c.dead: // the ping failed because it died
					continue
				default:
				}
				return "health check failed: " + err.Error(), true
			}
		}
	}
}

// connect starts the transport, initializes and lists the tools, all
// within StartTimeout.
func (s *server) connect(ctx context.Context) (c *conn, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.m.o.StartTimeout)
	defer cancel()
	c = &conn{srv: s, dead: make(chan struct{}), started: time.Now(), inflight: map[string]int{}, progress: map[string]progressRef{},
		elicitLimit: newLimiter(s.m.limits.ElicitationsPerMinute, s.m.limits.FloodFactor),
		sampleLimit: newLimiter(s.m.limits.SamplesPerMinute, s.m.limits.FloodFactor)}
	var tr transport.Interface
	switch s.cfg.Transport {
	case "stdio":
		tr, err = c.startStdio(ctx)
	case "streamable-http":
		tr, err = c.startHTTP()
	}
	if err != nil {
		return nil, err
	}
	// The failure returns below set c to nil: close the connection made.
	made := c
	defer func() {
		if err != nil {
			made.close(0)
		}
	}()
	opts := []client.ClientOption{client.WithProtocolVersion(Protocols[0])}
	caps := mcpgo.ClientCapabilities{}
	if s.m.o.Roots != nil {
		opts = append(opts, client.WithRootsHandler(rootsHandler{c}))
	}
	if s.m.o.Sampler != nil {
		opts = append(opts, client.WithSamplingHandler(samplingHandler{c}))
	}
	if s.m.o.Elicitor != nil {
		opts = append(opts, client.WithElicitationHandler(elicitationHandler{c}))
		caps.Elicitation = &mcpgo.ElicitationCapability{Form: &struct{}{}, URL: &struct{}{}}
	}
	// The connection's own context: server requests are handled in it,
	// and it ends when the connection is closed.
	c.life, c.endLife = context.WithCancel(context.Background())
	if caps.Tasks = clientTasksCapability(s.m.o.Sampler != nil, s.m.o.Elicitor != nil); caps.Tasks != nil {
		c.tap.tasks = newClientTasks(c.life)
	}
	opts = append(opts, client.WithClientCapabilities(caps))
	c.client = client.NewClient(tr, opts...)
	c.client.OnNotification(c.onNotification)
	if err := c.client.Start(c.life); err != nil {
		return nil, fmt.Errorf("mcp server %s: start: %w", s.name, c.explain(err))
	}
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = Protocols[0]
	init.Params.ClientInfo = mcpgo.Implementation{Name: s.m.o.ClientName, Version: s.m.o.ClientVersion}
	res, err := c.client.Initialize(ctx, init)
	if err != nil {
		return nil, fmt.Errorf("mcp server %s: initialize: %w", s.name, c.explain(err))
	}
	if !slices.Contains(Protocols, res.ProtocolVersion) {
		return nil, fmt.Errorf("mcp server %s: it speaks protocol %q; Astrid speaks %s", s.name, res.ProtocolVersion, strings.Join(Protocols, ", "))
	}
	c.protocol, c.caps, c.serverInfo = res.ProtocolVersion, res.Capabilities, res.ServerInfo
	if res.Capabilities.Tools != nil {
		if c.tools, err = c.listTools(ctx); err != nil {
			return nil, fmt.Errorf("mcp server %s: tools/list: %w", s.name, c.explain(err))
		}
	}
	return c, nil
}
