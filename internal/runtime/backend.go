package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/capsule"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/daemon"
	"github.com/astrid-runtime/astrid/internal/events"
	"github.com/astrid-runtime/astrid/internal/hooks"
	"github.com/astrid-runtime/astrid/internal/llm"
	"github.com/astrid-runtime/astrid/internal/llm/providers"
	"github.com/astrid-runtime/astrid/internal/mcp"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// Backend serves the daemon's methods with a Runtime, the MCP manager and
// the capsule manager.
type Backend struct {
	daemon.Unavailable
	R        *Runtime
	MCP      *mcp.Manager
	Capsules *capsule.Manager

	logins serverLogins // OAuth logins in progress (oauth.go)
}

// DefaultToolchainDirs are made readable to the sandboxed shell when they
// exist.
var DefaultToolchainDirs = []string{"/usr/local/go", "/root/go", "/usr/local/node", "/opt"}

// NewBackend is the daemon.NewBackendFunc of astridd: it builds the model
// provider from [model], the shell tool over the daemon's sandbox, and the
// Runtime. Without a usable provider the daemon still serves everything
// else and session methods say why they are unavailable.
func NewBackend(ctx context.Context, deps daemon.BackendDeps) (daemon.Backend, error) {
	if strings.HasPrefix(deps.Config.Model.Provider, capsule.ProviderPrefix) {
		prov, err := capsule.ParseProvider(deps.Config.Model.Provider, deps.Config.Model.Model)
		if err != nil {
			return nil, err
		}
		return NewBackendWith(deps, prov)
	}
	prov, err := providers.New(deps.Config.Model, deps.Config.Retry, providers.WithLogger(deps.Logger))
	if err != nil {
		reason := "no model provider: " + err.Error()
		if errors.Is(err, llm.ErrNoAPIKey) {
			reason = "no model provider is configured: set ANTHROPIC_API_KEY (or another provider in [model]) and restart the daemon"
		}
		deps.Logger.Warn("agent runtime unavailable", "reason", reason)
		return daemon.Unavailable{Reason: reason}, nil
	}
	return NewBackendWith(deps, prov)
}

// NewBackendWith builds the backend over a given provider (tests use a
// scripted one).
func NewBackendWith(deps daemon.BackendDeps, prov llm.Provider) (*Backend, error) {
	var bash *tools.Bash
	if sb := deps.Core.Sandbox; sb != nil {
		var err error
		bash, err = tools.NewBash(tools.BashOptions{Sandbox: sb, TempRoot: filepath.Join(os.TempDir(), fmt.Sprintf("astrid-%d", os.Getuid())), ToolchainDirs: DefaultToolchainDirs})
		if err != nil {
			return nil, err
		}
	}
	r, err := New(Options{Core: deps.Core, Config: deps.Config, Provider: prov, Store: deps.Core.DB.Sessions(), Events: deps.Events, Bus: deps.Bus, Logger: deps.Logger, Bash: bash})
	if err != nil {
		return nil, err
	}
	b := &Backend{R: r, Unavailable: daemon.Unavailable{Reason: "no sandbox: MCP servers cannot start"}}
	if sb := deps.Core.Sandbox; sb != nil {
		m, err := mcp.New(mcp.Options{
			Servers: deps.Config.Servers, Sandbox: sb, Sampler: r, Elicitor: r, Roots: r, Audit: deps.Core.Audit,
			ToolchainDirs: DefaultToolchainDirs, TempRoot: filepath.Join(os.TempDir(), fmt.Sprintf("astrid-mcp-%d", os.Getuid())),
			HealthInterval: time.Duration(deps.Config.Gateway.HealthIntervalSecs) * time.Second,
			Logger:         deps.Logger,
			// NOTE: the runtime asks the calling session's frontends for
			// an authorization a tool call needs (Runtime.Authorize); one
			// with no session to ask fails, telling the user to run
			// `astrid servers login NAME` (a login through the daemon,
			// oauth.go, brings its own Authorizer).
			OAuth: mcp.OAuthOptions{Dir: deps.Core.Home.MCPOAuthDir(), Authorizer: r, SessionsOnly: true},
			Notify: func(ev mcp.Event) {
				r.emitMCP(ev)
				if ev.Kind == "state" && ev.Error != "" {
					deps.Logger.Warn("MCP server", "server", ev.Server, "state", ev.State, "err", ev.Error)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("MCP servers: %w", err)
		}
		r.mcp, b.MCP = m, m
	}
	var capsuleServers capsule.MCPHost // runs the capsules' [[mcp_server]] entries
	if b.MCP != nil {
		capsuleServers = b.MCP
	}
	cfg := deps.Config.Capsules
	sealer, err := capsulepkg.OpenSealer(filepath.Join(deps.Core.Home.KeysDir(), capsulepkg.SecretKeyFile))
	if err != nil {
		return nil, fmt.Errorf("capsules: %w", err)
	}
	cm, err := capsule.New(context.Background(), capsule.Options{
		Home: deps.Core.Home.Path(), Sealer: sealer, Trust: r.trust, Interceptor: deps.Core.Interceptor, Audit: deps.Core.Audit, Tokens: deps.Core.Tokens,
		KV: store.CapsuleKV{DB: deps.Core.DB}, Tools: r.shared, CacheDir: deps.Core.Home.CacheDir(), Logger: deps.Logger,
		Limits:   capsule.Limits{MaxMemoryMB: int(cfg.MaxMemoryMB), Timeout: time.Duration(cfg.TimeoutSecs) * time.Second, AllowUnhashed: cfg.AllowUnhashed},
		Deferred: deps.Core.DB.Deferred(), MCP: capsuleServers, StageRoot: filepath.Join(os.TempDir(), fmt.Sprintf("astrid-capsules-%d", os.Getuid())),
		Notify: func(t api.EventType, info api.CapsuleInfo) {
			r.emitCapsule(t, info)
			if e, err := api.NewEvent("", t, info); err == nil {
				deps.Events.Publish(e)
			}
		},
		OnCron: r.emitCron,
	})
	if err != nil {
		return nil, fmt.Errorf("capsules: %w", err)
	}
	b.Capsules = cm
	if p, ok := prov.(*capsule.Provider); ok {
		p.Attach(cm) // the model is a capsule's [[llm_provider]]
	}
	r.capsuleHook = cm.Hook
	r.capsuleWorkspace = cm.LoadWorkspace
	if err := cm.LoadInstalled(context.Background()); err != nil {
		deps.Logger.Warn("loading installed capsules", "err", err)
	}
	cm.Start(context.Background())
	if b.MCP != nil {
		if err := b.MCP.StartAutoStart(context.Background()); err != nil {
			deps.Logger.Warn("starting MCP servers", "err", err)
		}
	}
	// Approved tool calls that never ran (the daemon stopped first) run
	// now, in the background, once each.
	r.turns.Add(1)
	go func() {
		defer r.turns.Done()
		if err := r.ResumeDeferred(context.Background()); err != nil {
			deps.Logger.Warn("running approved deferred calls", "err", err)
		}
	}()
	r.emit(events.DaemonStarted, "", events.Daemon{})
	r.FireHook(context.Background(), "", hooks.Payload{Event: hooks.DaemonStart})
	return b, nil
}

func (b *Backend) info(ctx context.Context, id string) (api.SessionInfo, error) {
	rec, err := b.R.Resume(ctx, id)
	if err != nil {
		return api.SessionInfo{}, err
	}
	return b.R.Info(rec), nil
}

// CreateSession implements daemon.Backend.
func (b *Backend) CreateSession(ctx context.Context, c daemon.Caller, p api.CreateSessionParams) (api.SessionInfo, error) {
	rec, err := b.R.Create(ctx, CreateOptions{Workspace: p.Workspace, Mode: security.Mode(p.Mode), Title: p.Title, Principal: c.User, Frontend: c.Frontend})
	if err != nil {
		return api.SessionInfo{}, err
	}
	return b.R.Info(rec), nil
}

// ResumeSession implements daemon.Backend.
func (b *Backend) ResumeSession(ctx context.Context, _ daemon.Caller, p api.ResumeSessionParams) (api.SessionInfo, error) {
	return b.info(ctx, p.Session)
}

// ListSessions implements daemon.Backend.
func (b *Backend) ListSessions(ctx context.Context, _ daemon.Caller, p api.ListSessionsParams) (api.ListSessionsResult, error) {
	recs, err := b.R.List(ctx, p.Workspace)
	if err != nil {
		return api.ListSessionsResult{}, err
	}
	out := api.ListSessionsResult{Sessions: []api.SessionInfo{}}
	for _, r := range recs {
		out.Sessions = append(out.Sessions, b.R.Info(r))
	}
	return out, nil
}

// EndSession implements daemon.Backend.
func (b *Backend) EndSession(ctx context.Context, _ daemon.Caller, p api.EndSessionParams) (api.Empty, error) {
	return api.Empty{}, b.R.End(ctx, p.Session)
}

// ShowSession implements daemon.Backend.
func (b *Backend) ShowSession(ctx context.Context, _ daemon.Caller, p api.ShowSessionParams) (api.SessionDetail, error) {
	return b.R.Show(ctx, p.Session)
}

// DeleteSession implements daemon.Backend.
func (b *Backend) DeleteSession(ctx context.Context, _ daemon.Caller, p api.DeleteSessionParams) (api.Empty, error) {
	return api.Empty{}, b.R.Delete(ctx, p.Session)
}

// CleanupSessions implements daemon.Backend.
func (b *Backend) CleanupSessions(ctx context.Context, _ daemon.Caller, p api.CleanupSessionsParams) (api.CleanupSessionsResult, error) {
	deleted, kept, err := b.R.Cleanup(ctx, p.Before)
	return api.CleanupSessionsResult{Deleted: deleted, Kept: kept}, err
}

// SendInput implements daemon.Backend.
func (b *Backend) SendInput(ctx context.Context, _ daemon.Caller, p api.SendInputParams) (api.SendInputResult, error) {
	turn, err := b.R.Send(ctx, p.Session, p.Text)
	return api.SendInputResult{Turn: turn}, err
}

// CancelTurn implements daemon.Backend.
func (b *Backend) CancelTurn(ctx context.Context, _ daemon.Caller, p api.CancelTurnParams) (api.CancelTurnResult, error) {
	ok, err := b.R.Cancel(ctx, p.Session, p.Turn)
	return api.CancelTurnResult{Cancelled: ok}, err
}

// ApprovalResponse implements daemon.Backend. Only the daemon's verified
// local user reaches it (bearer token), so every answer here is a human's.
func (b *Backend) ApprovalResponse(_ context.Context, c daemon.Caller, p api.ApprovalResponseParams) (api.Empty, error) {
	d := approval.Decision(p.Decision)
	if !d.Valid() {
		return api.Empty{}, fmt.Errorf("%w: decision %q", api.ErrInvalidParams, p.Decision)
	}
	return api.Empty{}, b.R.Answer(p.Session, p.Request, approval.Answer{Decision: d, Reason: p.Reason, By: c.User, Frontend: c.Frontend})
}

// SessionBudget implements daemon.Backend.
func (b *Backend) SessionBudget(ctx context.Context, _ daemon.Caller, p api.SessionBudgetParams) (api.Budget, error) {
	rec, err := b.R.Resume(ctx, p.Session)
	if err != nil {
		return api.Budget{}, err
	}
	prof, err := b.R.o.Core.Profile(rec.Workspace)
	if err != nil {
		return api.Budget{}, err
	}
	s := b.R.o.Core.Budget.Session(rec.ID)
	w := b.R.o.Core.Budget.Workspace(rec.Workspace)
	return api.Budget{Session: rec.ID, SpentUSD: s.Spent.USD(), ReservedUSD: s.Reserved.USD(), SessionLimitUSD: prof.Limits.SessionMax.USD(),
		WorkspaceSpentUSD: w.Spent.USD(), WorkspaceLimitUSD: prof.Limits.WorkspaceMax.USD(), WarnAtPercent: prof.Limits.WarnAtPercent}, nil
}

// ElicitationResponse implements daemon.Backend.
func (b *Backend) ElicitationResponse(_ context.Context, _ daemon.Caller, p api.ElicitationResponseParams) (api.Empty, error) {
	return api.Empty{}, b.R.AnswerElicitation(p.Session, p.Request, p.Action, p.Content)
}

// ListServers implements daemon.Backend.
func (b *Backend) ListServers(ctx context.Context, c daemon.Caller, p api.Empty) (api.ListServersResult, error) {
	if b.MCP == nil {
		return b.Unavailable.ListServers(ctx, c, p)
	}
	return api.ListServersResult{Servers: b.MCP.List()}, nil
}

// StartServer implements daemon.Backend.
func (b *Backend) StartServer(ctx context.Context, c daemon.Caller, p api.ServerParams) (api.ServerInfo, error) {
	if b.MCP == nil {
		return b.Unavailable.StartServer(ctx, c, p)
	}
	if err := b.loadWorkspace(p.Workspace); err != nil {
		return api.ServerInfo{}, err
	}
	return b.MCP.StartIn(ctx, p.Workspace, p.Name)
}

// StopServer implements daemon.Backend.
func (b *Backend) StopServer(ctx context.Context, c daemon.Caller, p api.ServerParams) (api.Empty, error) {
	if b.MCP == nil {
		return b.Unavailable.StopServer(ctx, c, p)
	}
	return api.Empty{}, b.MCP.StopIn(p.Workspace, p.Name)
}

// ListTools implements daemon.Backend: the tools of one MCP server, or the
// tools of a session's workspace (or of the default workspace-less
// registry when no session is given).
func (b *Backend) ListTools(ctx context.Context, c daemon.Caller, p api.ListToolsParams) (api.ListToolsResult, error) {
	if p.Server != "" {
		if b.MCP == nil {
			return b.Unavailable.ListTools(ctx, c, p)
		}
		ts, err := b.MCP.ListTools(p.Server)
		return api.ListToolsResult{Tools: ts}, err
	}
	ws := ""
	if p.Session != "" {
		rec, err := b.R.Resume(ctx, p.Session)
		if err != nil {
			return api.ListToolsResult{}, err
		}
		ws = rec.Workspace
	}
	reg, err := b.R.registry(ws)
	if err != nil {
		return api.ListToolsResult{}, err
	}
	out := api.ListToolsResult{Tools: []api.ToolInfo{}}
	for _, s := range reg.Specs() {
		src := "builtin"
		if rest, ok := strings.CutPrefix(s.Name, mcp.ToolPrefix); ok {
			server, _, _ := strings.Cut(rest, "__")
			src = "mcp:" + server
		}
		out.Tools = append(out.Tools, api.ToolInfo{Name: s.Name, Source: src, Description: s.Description, InputSchema: s.InputSchema})
	}
	return out, nil
}

// Stats implements daemon.Backend.
func (b *Backend) Stats() daemon.BackendStats {
	b.R.mu.Lock()
	defer b.R.mu.Unlock()
	st := daemon.BackendStats{Runtime: true, Sessions: len(b.R.sessions)}
	if b.MCP != nil {
		for _, s := range b.MCP.List() {
			if s.State == "running" {
				st.Servers++
			}
		}
	}
	if b.Capsules != nil {
		for _, c := range b.Capsules.ListCapsules().Capsules {
			if c.State == "loaded" {
				st.Capsules++
			}
		}
	}
	for _, l := range b.R.sessions {
		l.mu.Lock()
		if l.busy {
			st.BusyTurns++
		}
		l.mu.Unlock()
	}
	return st
}

// Shutdown implements daemon.Backend: turns first, then MCP servers and
// capsules.
func (b *Backend) Shutdown(ctx context.Context) error {
	b.R.emit(events.DaemonStopped, "", events.Daemon{Reason: "shutdown"})
	b.R.FireHook(ctx, "", hooks.Payload{Event: hooks.DaemonStop, Reason: "shutdown"})
	b.logins.closeAll()
	err := b.R.Shutdown(ctx)
	if b.MCP != nil {
		err = errors.Join(err, b.MCP.Close(ctx))
	}
	if b.Capsules != nil {
		err = errors.Join(err, b.Capsules.Close(ctx))
	}
	return err
}

// ListCapsules implements daemon.Backend.
func (b *Backend) ListCapsules(context.Context, daemon.Caller, api.Empty) (api.ListCapsulesResult, error) {
	return b.Capsules.ListCapsules(), nil
}

// LoadCapsule implements daemon.Backend.
func (b *Backend) LoadCapsule(ctx context.Context, _ daemon.Caller, p api.LoadCapsuleParams) (api.CapsuleInfo, error) {
	return b.Capsules.LoadCapsule(ctx, p)
}

// UnloadCapsule implements daemon.Backend.
func (b *Backend) UnloadCapsule(ctx context.Context, _ daemon.Caller, p api.UnloadCapsuleParams) (api.Empty, error) {
	return b.Capsules.UnloadCapsule(ctx, p)
}

var _ daemon.DeferredRunner = (*Backend)(nil)

// DeferredResolved implements daemon.DeferredRunner (Runtime.DeferredResolved).
func (b *Backend) DeferredResolved(ctx context.Context, d approval.Deferred) (*api.DeferredResult, error) {
	return b.R.DeferredResolved(ctx, d)
}

var _ daemon.ConfigReloader = (*Backend)(nil)

// ReloadConfig implements daemon.ConfigReloader: the hooks are discovered
// again under the new [hooks] settings, and the MCP servers are
// reconfigured (mcp.Manager.Reconfigure: removed ones stopped, changed
// ones replaced, new or changed auto_start ones started).
func (b *Backend) ReloadConfig(ctx context.Context, cfg *config.Config) (map[string]string, error) {
	hc := cfg.Hooks
	b.R.hooksCfg.Store(&hc)
	b.R.ReloadHooks()
	if b.MCP == nil {
		if len(cfg.Servers) > 0 {
			return nil, errors.New("MCP servers are not reloaded: " + b.Unavailable.Reason)
		}
		return nil, nil
	}
	return b.MCP.Reconfigure(ctx, cfg.Servers)
}
