// Package core opens the state of one $ASTRID_HOME and wires the security
// subsystems over it: the store, the runtime key, the audit log, capability
// tokens, allowances, the deferred approval queue, budgets, and the
// interceptor with a profile per workspace built from the layered
// configuration.
//
// The daemon holds one Core for its lifetime (tests open their own); the
// key, store, audit log and tokens come from package ledger, which is all
// the CLI ever opens. Nothing else constructs these subsystems.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/budget"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/ledger"
	"github.com/astrid-runtime/astrid/internal/policy"
	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
)

// Options configure Open.
type Options struct {
	Home home.Dir
	// Getenv and SystemConfigFile are passed to config.Load.
	Getenv           func(string) string
	SystemConfigFile string
	// Sync is the store's durability; the zero value fsyncs every commit.
	Sync store.Sync
	// Sandbox runs native processes. Nil, or a sandbox without Landlock,
	// means commands are never allowed by a workspace mode: each asks.
	Sandbox *sandbox.Sandbox
	Notify  func(security.Notice)
	Logger  *slog.Logger
}

// Core is the opened state. Its fields are set by Open and never change;
// the subsystems are safe for concurrent use.
type Core struct {
	Home home.Dir
	// Ledger holds the key, the trusted issuers, the store, the audit log
	// and the token service (c.DB, c.Audit, c.Tokens, …).
	*ledger.Ledger
	Allowances  *approval.Allowances
	Budget      *budget.Tracker
	Interceptor *security.Interceptor
	// Sandbox runs native processes; nil when none was given.
	Sandbox *sandbox.Sandbox

	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	profiles map[string]*security.Profile // guarded by mu; by workspace root
}

// Open opens (creating when missing) the state under opts.Home. The user
// configuration must be valid: a broken configuration is an error here,
// never a silent fallback to defaults.
func Open(ctx context.Context, opts Options) (c *Core, err error) {
	if opts.Getenv == nil {
		return nil, errors.New("core: no Getenv")
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c = &Core{Home: opts.Home, Sandbox: opts.Sandbox, opts: opts, log: lg, profiles: map[string]*security.Profile{}}
	base, err := c.config("")
	if err != nil {
		return nil, err
	}
	if c.Ledger, err = ledger.Open(ctx, ledger.Options{Home: opts.Home, Config: base, Sync: opts.Sync, Logger: lg}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	c.Allowances = approval.NewAllowances(c.DB.Allowances())
	c.Budget = budget.NewTracker()
	c.Interceptor, err = security.New(security.Options{
		Profiles:   c.Profile,
		Tokens:     c.Tokens,
		Allowances: c.Allowances,
		Budget:     c.Budget,
		Deferred:   c.DB.Deferred(),
		Audit:      c.Audit,
		Notify:     opts.Notify,
		Logger:     lg,
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the audit log and the store.
func (c *Core) Close() error {
	if c.Ledger == nil {
		return nil
	}
	return c.Ledger.Close()
}

func (c *Core) config(workspace string) (*config.Config, error) {
	res, err := c.load(workspace)
	if err != nil {
		return nil, err
	}
	return res.Config, nil
}

// load reads the configuration layers of a workspace root.
func (c *Core) load(workspace string) (*config.Resolved, error) {
	res, err := config.Load(config.LoadOptions{Home: c.opts.Home, Workspace: workspace, SystemFile: c.opts.SystemConfigFile, Getenv: c.opts.Getenv})
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return res, nil
}

// Profile returns the security profile of a workspace root, built from the
// configuration layers including the workspace's own, and cached.
func (c *Core) Profile(workspace string) (*security.Profile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.profiles[workspace]; ok {
		return p, nil
	}
	p, err := c.buildProfile(workspace)
	if err != nil {
		return nil, err
	}
	c.profiles[workspace] = p
	return p, nil
}

// buildProfile reads a workspace's configuration layers and builds its
// profile.
func (c *Core) buildProfile(workspace string) (*security.Profile, error) {
	cfg, err := c.config(workspace)
	if err != nil {
		return nil, err
	}
	sandboxed := c.opts.Sandbox != nil && c.opts.Sandbox.Available()
	return BuildProfile(cfg, c.Home, c.opts.Getenv("HOME"), workspace, sandboxed)
}

// ReloadProfiles rebuilds the profile of the user's configuration and of
// every workspace seen so far from the files as they are now (mode,
// policy, budget limits, approval timeout), and replaces them at once.
//
// If the user's layers (system, user) are invalid, nothing is replaced and
// the error names the file and line. A workspace whose own layer is
// invalid under the new configuration (say it now loosens a limit the
// user lowered) is dropped from the cache: its next action reads the
// layers again and is refused while they stay invalid. Those workspaces
// are returned with their errors. Workspaces not seen yet read their
// layers on first use, as always.
func (c *Core) ReloadProfiles() (invalid map[string]error, err error) {
	base, err := c.buildProfile("")
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	seen := slices.Sorted(maps.Keys(c.profiles))
	c.mu.Unlock()
	fresh := map[string]*security.Profile{"": base}
	for _, ws := range seen {
		if ws == "" {
			continue
		}
		p, err := c.buildProfile(ws)
		if err != nil {
			if invalid == nil {
				invalid = map[string]error{}
			}
			invalid[ws] = err
			continue
		}
		fresh[ws] = p
	}
	c.mu.Lock()
	c.profiles = fresh
	c.mu.Unlock()
	return invalid, nil
}

// ForgetProfiles drops cached profiles, so the next action of each
// workspace reads its configuration again.
func (c *Core) ForgetProfiles() {
	c.mu.Lock()
	c.profiles = map[string]*security.Profile{}
	c.mu.Unlock()
}

// BuildProfile turns a merged configuration into the interceptor's profile
// for one workspace; userHome expands "~/" in denied_paths; sandboxed says
// whether commands run under the native sandbox. It does no I/O beyond
// resolving the state directory's symlinks, so that $ASTRID_HOME is
// protected under its real name too.
func BuildProfile(cfg *config.Config, h home.Dir, userHome, workspace string, sandboxed bool) (*security.Profile, error) {
	homeDir := h.Path()
	if real, err := filepath.EvalSymlinks(homeDir); err == nil {
		homeDir = real
	}
	if userHome == "" {
		userHome = "/nonexistent-home" // "~/" then matches nothing real
	}
	pol := cfg.Security.Policy
	pc := policy.Config{
		BlockedCommands: pol.BlockedCommands,
		DeniedPaths:     expandHome(pol.DeniedPaths, userHome),
		DeniedHosts:     pol.DeniedHosts,
		AllowedHosts:    pol.AllowedHosts,
		MaxArgumentSize: int(pol.MaxArgumentSize),
		Protected:       dedupe([]string{filepath.Clean(h.Path()), homeDir}),
	}
	if workspace != "" {
		if !filepath.IsAbs(workspace) {
			return nil, fmt.Errorf("workspace %q is not absolute", workspace)
		}
		pc.ReadOnly = []string{filepath.Join(filepath.Clean(workspace), ".astrid")}
	}
	rules, err := policy.Compile(pc)
	if err != nil {
		return nil, err
	}
	ws := cfg.Workspace
	p := &security.Profile{
		Rules: rules,
		Mode:  security.Mode(ws.Mode),
		Workspace: security.WorkspaceRules{
			EscapeDeny:                ws.EscapePolicy == "deny",
			AutoAllowRead:             relativeTo(ws.AutoAllowRead, workspace),
			AutoAllowWrite:            relativeTo(ws.AutoAllowWrite, workspace),
			NeverAllow:                relativeTo(ws.NeverAllow, workspace),
			RequireApprovalForDelete:  pol.RequireApprovalForDelete,
			RequireApprovalForNetwork: pol.RequireApprovalForNetwork,
			// NOTE: autonomous mode runs commands without asking only
			// where Landlock confines them (see package sandbox).
			SandboxAvailable: sandboxed,
		},
		Limits: budget.Limits{
			SessionMax:    budget.FromUSD(cfg.Budget.SessionMaxUSD),
			PerActionMax:  budget.FromUSD(cfg.Budget.PerActionMaxUSD),
			WorkspaceMax:  budget.FromUSD(cfg.Budget.WorkspaceMaxUSD),
			WarnAtPercent: int(cfg.Budget.WarnAtPercent),
		},
		ApprovalTimeout: time.Duration(cfg.Security.ApprovalTimeoutSecs) * time.Second,
		TokenTTL:        time.Duration(cfg.Security.AllowAlwaysTTLSecs) * time.Second,
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// expandHome turns "~/x" globs into absolute ones.
func expandHome(globs []string, userHome string) []string {
	out := make([]string, len(globs))
	for i, g := range globs {
		if rest, ok := strings.CutPrefix(g, "~/"); ok {
			g = filepath.Join(userHome, rest)
		}
		out[i] = g
	}
	return out
}

// relativeTo anchors relative globs at the workspace root; without a
// workspace they match nothing and are dropped.
func relativeTo(globs []string, workspace string) []string {
	var out []string
	for _, g := range globs {
		switch {
		case strings.HasPrefix(g, "/"):
			out = append(out, g)
		case workspace != "":
			out = append(out, filepath.Join(workspace, g))
		}
	}
	return out
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		dup := false
		for _, y := range out {
			dup = dup || x == y
		}
		if !dup {
			out = append(out, x)
		}
	}
	return out
}
