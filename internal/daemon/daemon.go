// Package daemon implements astridd, the process that holds every session,
// token, budget and the audit log, and serves frontends over JSON-RPC 2.0
// on a loopback WebSocket (the API is package api; the framing package rpc).
//
// Daemon is the one struct that wires the subsystems: the Core (store,
// keys, audit, tokens, interceptor), the Backend (the agent runtime; until
// it lands, Unavailable), the event bus, the listener and the state files.
// Everything the daemon streams to frontends travels on the bus
// (events.StreamEvent), and the metrics count from it.
// Only cmd/astridd (through Main) and tests import this package; frontends
// use package client.
//
// # Lifecycle
//
// Serve takes $ASTRID_HOME/daemon.lock (flock: one daemon per home; the
// kernel drops it when the process dies, so files left by a crashed daemon
// are recognised as stale and replaced), opens the Core, listens on
// 127.0.0.1 (port from [gateway] listen_addr, 0 = chosen by the OS), and
// writes daemon.token (32 random bytes, hex, 0600, new at each start),
// daemon.pid and daemon.port, in that order, each atomically. The port
// file appearing means "ready".
//
// SIGHUP and astrid.reloadConfig make it read its configuration again
// (see reload).
//
// A persistent daemon runs until SIGTERM/SIGINT (ctx) or astrid.shutdown.
// An ephemeral one (--ephemeral) also stops [gateway] idle_shutdown_secs
// after its last client left while no turn runs (nobody having connected
// counts as idle, with at least 5 s for the first client to arrive).
// Shutdown removes the port and token files, stops accepting, answers
// calls in flight, closes connections (WebSocket 1001), calls
// Backend.Shutdown, closes the Core (the audit writer's last batch), and
// removes the pid file last.
//
// # Security
//
// NOTE: every connection presents "Authorization: Bearer <token>" on the
// upgrade request, compared in constant time; anything else gets 401 before
// any upgrade. The token file is readable by its owner only, so holding the
// token proves being the local user. A request with an Origin header (a
// browser) other than the daemon's own http://127.0.0.1:PORT gets 403, and
// a Host header other than the loopback address gets 403 (DNS rebinding).
// listen_addr must be a loopback address (the configuration refuses others)
// and the daemon refuses anything but 127.0.0.1: remote frontends would need
// TLS, which is not built.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/sandbox/helper"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/version"
)

// Main runs astridd with the process environment and returns the exit code.
//
// `astridd __sandbox-exec` (sandbox.HelperArg) is the hidden sandbox
// helper: it is dispatched here, before anything else, because it must
// control its exit status and, on success, never returns (it becomes the
// sandboxed program).
func Main(ctx context.Context, args []string, backend NewBackendFunc) int {
	if len(args) > 0 && args[0] == sandbox.HelperArg {
		return helper.Main(args[1:])
	}
	if err := Run(ctx, args, os.Stdout, os.Stderr, backend); err != nil {
		fmt.Fprintf(os.Stderr, "astridd: %v\n", err)
		return 1
	}
	return 0
}

// Run executes astridd with the given arguments: it serves until ctx is
// done or a client asks it to shut down. backend builds the agent runtime
// (nil: every runtime method answers "unavailable").
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, backend NewBackendFunc) error {
	fs := flag.NewFlagSet("astridd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ephemeral := fs.Bool("ephemeral", false, "shut down [gateway] idle_shutdown_secs after the last client leaves")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *showVersion {
		fmt.Fprintf(stdout, "astridd %s\n", version.String())
		return nil
	}
	h, err := home.Resolve(os.Getenv)
	if err != nil {
		return err
	}
	return Serve(ctx, Options{Home: h, Getenv: os.Getenv, Ephemeral: *ephemeral, Stderr: stderr, NewBackend: backend, ReleaseStartupPages: true})
}

// Options configure Serve.
type Options struct {
	Home home.Dir
	// Getenv and SystemConfigFile are passed to the configuration loader.
	Getenv           func(string) string
	SystemConfigFile string
	// Ephemeral shuts the daemon down when idle (see the package comment).
	Ephemeral bool
	// NewBackend builds the agent runtime; nil means Unavailable.
	NewBackend NewBackendFunc
	// SandboxHelper is the executable that serves the sandbox helper
	// (astridd itself); empty means os.Executable().
	SandboxHelper string
	// Stderr receives one line saying where the daemon listens and logs;
	// nil discards it.
	Stderr io.Writer
	// Ready, if set, is called once the state files are written, with the
	// daemon (tests use it to publish events).
	Ready func(d *Daemon)
	// ReleaseStartupPages gives back, once the daemon is ready, the pages
	// of its executable that start-up touched (see trim.go). astridd sets
	// it; a test process serving a daemon does not page out its own code.
	ReleaseStartupPages bool
}

// Daemon is a running astridd: the one place that holds the subsystems.
// Its methods are safe for concurrent use.
type Daemon struct {
	opts    Options
	cfg     *config.Config
	core    *core.Core
	backend Backend
	bus     *events.Bus // every event, the frontends' stream included; the backend publishes on it too
	log     *slog.Logger
	files   *stateFiles
	token   []byte
	port    int
	started time.Time
	metrics metrics

	ctx      context.Context // cancelled when shutdown starts
	stop     context.CancelFunc
	shutdown chan struct{} // closed by astrid.shutdown
	shutOnce sync.Once
	connSeq  atomic.Uint64
	subSeq   atomic.Uint64 // numbers subscriptions
	streams  atomic.Int64  // open subscriptions

	streamMu sync.Mutex // orders Publish
	stream   stream     // guarded by streamMu

	reloadMu sync.Mutex     // serialises configuration reloads
	current  *config.Config // guarded by reloadMu; the configuration in force

	mu    sync.Mutex
	conns map[*clientConn]struct{} // guarded by mu
	seen  bool                     // guarded by mu; a client has connected
	idle  chan struct{}            // signalled when conns changes
}

// Addr returns the daemon's listening address.
func (d *Daemon) Addr() string { return "127.0.0.1:" + strconv.Itoa(d.port) }

const (
	maxConns        = 64
	drainTimeout    = 5 * time.Second
	backendTimeout  = 20 * time.Second
	minFirstIdle    = 5 * time.Second
	logMaxBytes     = 10 << 20
	logKeep         = 3
	shutdownMessage = "daemon shutting down"
)

// Serve runs a daemon until ctx is done, astrid.shutdown is called, or (if
// ephemeral) it is idle. It returns nil after a clean shutdown.
func Serve(ctx context.Context, opts Options) (err error) {
	if opts.Getenv == nil {
		return errors.New("daemon: no Getenv")
	}
	stderr := opts.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	if err := opts.Home.Ensure(); err != nil {
		return err
	}
	files, err := acquire(opts.Home)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			files.release()
		}
	}()
	res, err := config.Load(config.LoadOptions{Home: opts.Home, SystemFile: opts.SystemConfigFile, Getenv: opts.Getenv})
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	cfg := res.Config
	logPath := filepath.Join(opts.Home.LogsDir(), "daemon.log")
	logFile, err := openRotating(logPath, logMaxBytes, logKeep)
	if err != nil {
		return fmt.Errorf("daemon log: %w", err)
	}
	defer logFile.Close()
	lg := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: logLevel(cfg.Logging.Level)}))
	if pid := files.stale(); pid != "" {
		lg.Warn("replacing the state files of a daemon that is gone", "pid", pid)
	}
	fail := func(err error) error {
		lg.Error("daemon failed to start", "err", err)
		return err
	}

	ln, err := listen(cfg.Gateway.ListenAddr)
	if err != nil {
		return fail(err)
	}
	defer ln.Close()

	d := &Daemon{
		opts: opts, cfg: cfg, current: cfg, bus: events.New(nil), log: lg, files: files,
		port: ln.Addr().(*net.TCPAddr).Port, started: time.Now(),
		shutdown: make(chan struct{}), conns: map[*clientConn]struct{}{}, idle: make(chan struct{}, 1),
	}
	d.ctx, d.stop = context.WithCancel(context.Background())
	defer d.stop()
	counter := d.bus.Subscribe(metricsBuffer, nil)
	counting := make(chan struct{})
	go func() {
		defer close(counting)
		d.metrics.count(counter)
	}()
	defer func() {
		counter.Close()
		<-counting
	}()
	// Native processes (the shell tool, stdio MCP servers) run through this
	// executable's hidden sandbox helper.
	sb, err := sandbox.New(sandbox.Options{Helper: opts.SandboxHelper, Protected: []string{opts.Home.Path()}, Logger: lg})
	if err != nil {
		return fail(err)
	}
	d.core, err = core.Open(ctx, core.Options{
		Home: opts.Home, Getenv: opts.Getenv, SystemConfigFile: opts.SystemConfigFile,
		Notify: d.notice, Logger: lg, Sandbox: sb,
	})
	if err != nil {
		return fail(err)
	}
	coreOpen := true
	defer func() {
		if coreOpen {
			d.core.Close()
		}
	}()
	d.backend = Unavailable{Reason: "the agent runtime is not part of this daemon"}
	if opts.NewBackend != nil {
		if d.backend, err = opts.NewBackend(ctx, BackendDeps{Core: d.core, Config: cfg, Events: d, Bus: d.bus, Logger: lg}); err != nil {
			return fail(fmt.Errorf("agent runtime: %w", err))
		}
	}
	tok, err := newToken()
	if err != nil {
		return fail(err)
	}
	d.token = []byte(tok)

	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(lg.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var metricsSrv *http.Server
	if cfg.Gateway.MetricsAddr != "" {
		if metricsSrv, err = d.serveMetrics(cfg.Gateway.MetricsAddr); err != nil {
			srv.Close()
			<-served
			return fail(err)
		}
	}
	// SIGHUP is caught before the state files say "ready".
	hangups := d.reloadOnHangup(d.ctx)
	defer func() {
		d.stop()
		<-hangups
	}()
	if err := files.publish(tok, d.port); err != nil {
		srv.Close()
		<-served
		return fail(err)
	}
	mode := api.ModePersistent
	if opts.Ephemeral {
		mode = api.ModeEphemeral
	}
	lg.Info("daemon ready", "version", version.String(), "pid", os.Getpid(), "addr", d.Addr(), "mode", mode, "home", opts.Home.Path())
	fmt.Fprintf(stderr, "astridd %s: %s daemon ready on %s (log: %s)\n", version.String(), mode, d.Addr(), logPath)
	if opts.Ready != nil {
		opts.Ready(d)
	}
	if opts.ReleaseStartupPages {
		if err := releaseStartupPages(); err != nil {
			lg.Debug("start-up pages kept", "err", err)
		}
	}

	reason := d.wait(ctx, served)
	lg.Info("daemon shutting down", "reason", reason)

	// Stop accepting, then drain the connections.
	files.unpublishEndpoint()
	d.stop()
	<-hangups
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	srv.Shutdown(sctx)
	if metricsSrv != nil {
		metricsSrv.Shutdown(sctx)
	}
	d.drainConns(sctx)
	cancel()
	bctx, cancel := context.WithTimeout(context.Background(), backendTimeout)
	if berr := d.backend.Shutdown(bctx); berr != nil {
		lg.Error("agent runtime shutdown", "err", berr)
	}
	cancel()
	coreOpen = false
	if cerr := d.core.Close(); cerr != nil {
		lg.Error("closing the audit log and the store", "err", cerr)
		err = cerr
	}
	files.release() // the pid file goes last
	lg.Info("daemon stopped")
	return err
}

// wait blocks until a reason to stop and returns it.
func (d *Daemon) wait(ctx context.Context, served <-chan error) string {
	var idle *time.Timer
	var idleC <-chan time.Time
	arm := func() {
		if !d.opts.Ephemeral {
			return
		}
		if idle != nil {
			idle.Stop()
			idle, idleC = nil, nil
		}
		d.mu.Lock()
		n, seen := len(d.conns), d.seen
		d.mu.Unlock()
		if n > 0 {
			return
		}
		after := time.Duration(d.cfg.Gateway.IdleShutdownSecs) * time.Second
		if !seen && after < minFirstIdle {
			after = minFirstIdle
		}
		idle = time.NewTimer(after)
		idleC = idle.C
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			return "signal"
		case <-d.shutdown:
			return "shutdown requested"
		case err := <-served:
			d.log.Error("listener failed", "err", err)
			return "listener failed"
		case <-d.idle:
			arm()
		case <-idleC:
			if d.backend.Stats().BusyTurns > 0 {
				idle.Reset(time.Duration(d.cfg.Gateway.IdleShutdownSecs)*time.Second + time.Second)
				continue
			}
			return "idle"
		}
	}
}

// requestShutdown makes Serve stop; astrid.shutdown calls it.
func (d *Daemon) requestShutdown() { d.shutOnce.Do(func() { close(d.shutdown) }) }

func (d *Daemon) drainConns(ctx context.Context) {
	d.mu.Lock()
	conns := make([]*clientConn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.rpc.Drain(ctx, shutdownMessage) })
	}
	wg.Wait()
	// Wait for each connection's goroutines (subscription writers).
	for _, c := range conns {
		select {
		case <-c.done:
		case <-ctx.Done():
			c.rpc.Close()
			<-c.done
		}
	}
}

// listen opens the loopback listener.
//
// NOTE: only 127.0.0.1 is served. The configuration already refuses
// non-loopback addresses; ::1 is refused here because clients find the
// daemon by its port alone, on 127.0.0.1.
func listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("[gateway] listen_addr %q: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		return nil, fmt.Errorf("[gateway] listen_addr %q: the daemon listens on 127.0.0.1 only (remote frontends would need TLS, which is not supported yet)", addr)
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

func logLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// notice turns the interceptor's notices into events.
func (d *Daemon) notice(n security.Notice) {
	d.busNotice(n)
	var (
		typ  api.EventType
		data any
	)
	switch n.Kind {
	case "approval_requested":
		if n.Request == nil || n.Presented {
			return // a presented request reaches frontends its own way
		}
		typ, data = api.EventApprovalNeeded, api.ApprovalNeeded{Request: apiRequest(*n.Request)}
	case "approval_resolved":
		if n.Request == nil || n.Answer == nil {
			return
		}
		ans := apiAnswer(*n.Answer)
		typ, data = api.EventApprovalResolved, api.ApprovalResolved{Request: n.Request.ID, Decision: ans.Decision, Answer: &ans, Deferred: n.Deferred}
	case "deferred":
		if n.Request == nil {
			return
		}
		typ, data = api.EventApprovalResolved, api.ApprovalResolved{Request: n.Request.ID, Decision: "deferred", Deferred: n.Deferred}
	case "budget_warning":
		if n.Warning == nil {
			return
		}
		w := n.Warning
		typ, data = api.EventBudgetWarning, api.BudgetWarning{Account: w.Account, Key: w.Key, UsedUSD: w.Used.USD(), LimitUSD: w.Max.USD()}
	default:
		return
	}
	e, err := api.NewEvent(n.Session, typ, data)
	if err != nil {
		d.log.Error("cannot encode an event", "err", err)
		return
	}
	d.Publish(e)
}

// busNotice publishes an interceptor notice as typed events.
func (d *Daemon) busNotice(n security.Notice) {
	if d.bus == nil {
		return
	}
	if dn := n.Decision; dn != nil {
		sec := events.Security{Kind: dn.Kind, Resource: dn.Resource, Step: dn.Step, Rule: dn.Rule, TokenID: dn.TokenID}
		switch n.Kind {
		case "decision":
			switch {
			case dn.Allowed && dn.TokenID != "":
				d.bus.Publish(events.CapabilityChecked, n.Session, sec)
			case !dn.Allowed:
				d.bus.Publish(events.AuthorizationDenied, n.Session, sec)
				if dn.Step == security.StepPolicy {
					d.bus.Publish(events.SecurityViolation, n.Session, sec)
				}
			}
		case "capability_granted":
			d.bus.Publish(events.CapabilityGranted, n.Session, sec)
		case "budget_reserved":
			d.bus.Publish(events.BudgetReserved, n.Session, events.Budget{Account: n.Session, Key: "session", AmountUSD: n.Amount.USD()})
		case "budget_exceeded":
			d.bus.Publish(events.BudgetExceeded, n.Session, events.Budget{Account: n.Session, Key: dn.Rule, AmountUSD: n.Amount.USD()})
		}
		return
	}
	if n.Kind == "audit_entry" {
		d.bus.Publish(events.AuditEntryCreated, n.Session, events.Audit{Seq: n.Seq})
		return
	}
	if n.Request == nil && n.Warning == nil {
		return
	}
	var a events.Approval
	if n.Request != nil {
		a = events.Approval{Request: n.Request.ID, Kind: n.Request.Kind, Resource: n.Request.Resource, Deferred: n.Deferred}
	}
	switch n.Kind {
	case "approval_requested":
		d.bus.Publish(events.ApprovalRequested, n.Session, a)
	case "approval_resolved":
		if n.Answer == nil {
			return
		}
		a.Decision, a.By = string(n.Answer.Decision), n.Answer.By
		kind := events.ApprovalDenied
		if n.Answer.Decision.Allows() {
			kind = events.ApprovalGranted
		}
		d.bus.Publish(kind, n.Session, a)
		d.bus.Publish(events.ApprovalResolved, n.Session, a)
	case "deferred":
		a.Decision = "deferred"
		d.bus.Publish(events.ApprovalDeferred, n.Session, a)
	case "budget_warning":
		if w := n.Warning; w != nil {
			d.bus.Publish(events.BudgetWarning, n.Session, events.Budget{Account: w.Account, Key: w.Key, UsedUSD: w.Used.USD(), LimitUSD: w.Max.USD()})
		}
	}
}

// Bus is the daemon's typed event bus.
func (d *Daemon) Bus() *events.Bus { return d.bus }
