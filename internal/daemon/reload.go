package daemon

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/events"
)

// ConfigReloader is implemented by a Backend that applies a reloaded
// configuration: it starts, stops or replaces MCP servers (per their
// auto_start) and rediscovers hooks. It returns what happened to each MCP
// server that changed ("added", "removed", "changed"); an error is a
// problem that did not stop the reload (a server that failed to start).
type ConfigReloader interface {
	ReloadConfig(ctx context.Context, cfg *config.Config) (servers map[string]string, err error)
}

// liveSections are the configuration sections a reload applies; a change
// elsewhere needs a restart. Security and budget changes reach the
// interceptor through the rebuilt profiles, servers and hooks through the
// backend.
var liveSections = []string{"budget", "hooks", "security", "servers", "workspace"}

// restartKeys are keys of live sections that are read only at start.
var restartKeys = map[string]func(a, b *config.Config) bool{
	"security.token_clock_skew_secs": func(a, b *config.Config) bool {
		return a.Security.TokenClockSkewSecs != b.Security.TokenClockSkewSecs
	},
}

// diffConfig returns the changed top-level sections that apply live and
// those that need a restart, each sorted.
func diffConfig(old, cur *config.Config) (live, restart []string) {
	ov, cv := reflect.ValueOf(old).Elem(), reflect.ValueOf(cur).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if reflect.DeepEqual(ov.Field(i).Interface(), cv.Field(i).Interface()) {
			continue
		}
		if slices.Contains(liveSections, name) {
			live = append(live, name)
		} else {
			restart = append(restart, name)
		}
	}
	for key, changed := range restartKeys {
		if changed(old, cur) {
			restart = append(restart, key)
		}
	}
	slices.Sort(live)
	slices.Sort(restart)
	return live, restart
}

// reload reads the configuration files again and applies what can change
// live (see api.ReloadConfigResult). by says who asked, for the audit log.
// If the system or user layer is invalid, nothing changes; the failure is
// audited, logged and published as an error event.
func (d *Daemon) reload(ctx context.Context, by string) (api.ReloadConfigResult, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	res, err := config.Load(config.LoadOptions{Home: d.opts.Home, SystemFile: d.opts.SystemConfigFile, Getenv: d.opts.Getenv})
	var invalid map[string]error
	if err == nil {
		invalid, err = d.core.ReloadProfiles()
	}
	if err != nil {
		msg := "configuration not reloaded; the previous one stays in force:\n" + err.Error()
		d.log.Error("configuration reload failed", "by", by, "err", err)
		d.auditReload(ctx, by, audit.Denied, msg)
		d.bus.Publish(events.Error, "", events.ErrorData{Message: msg, Source: "config.reload"})
		return api.ReloadConfigResult{}, fmt.Errorf("%w: %s", api.ErrInvalidParams, msg)
	}
	out := api.ReloadConfigResult{Changed: []string{}}
	out.Changed, out.Restart = diffConfig(d.current, res.Config)
	for _, ws := range slices.Sorted(maps.Keys(invalid)) {
		out.Warnings = append(out.Warnings, fmt.Sprintf("workspace %s: its configuration is invalid now; its actions are refused until it is fixed: %v", ws, invalid[ws]))
	}
	if rl, ok := d.backend.(ConfigReloader); ok {
		servers, err := rl.ReloadConfig(ctx, res.Config)
		if len(servers) > 0 {
			out.Servers = servers
		}
		if err != nil {
			out.Warnings = append(out.Warnings, err.Error())
		}
	}
	if out.Changed == nil {
		out.Changed = []string{}
	}
	d.current = res.Config
	text := "changed: " + strings.Join(out.Changed, ", ")
	if len(out.Restart) > 0 {
		text += "; after a restart: " + strings.Join(out.Restart, ", ")
	}
	d.log.Info("configuration reloaded", "by", by, "changed", out.Changed, "servers", out.Servers, "restart", out.Restart, "warnings", out.Warnings)
	d.auditReload(ctx, by, audit.Allowed, text)
	d.bus.Publish(events.ConfigReloaded, "", events.Config{Changed: out.Changed, Servers: out.Servers, Restart: out.Restart})
	return out, nil
}

// auditReload records a reload (or its refusal) in the audit log.
func (d *Daemon) auditReload(ctx context.Context, by string, dec audit.Decision, text string) {
	var files []byte
	for _, f := range []string{d.opts.SystemConfigFile, d.opts.Home.ConfigFile()} {
		b, _ := os.ReadFile(f)
		files = append(append(files, f+"\x00"...), b...)
	}
	e := audit.Entry{
		Type: audit.TypeDecision, Session: "daemon", Principal: audit.Clip(by, audit.MaxPrincipal), Frontend: "daemon",
		Action:   audit.Action{Kind: "config_reload", Resource: audit.Clip("file://"+d.opts.Home.ConfigFile(), audit.MaxResource), ArgsHash: audit.HashBytes(files)},
		Decision: dec, Proof: audit.Proof{Rule: "configuration"}, Text: audit.ClipText(text),
	}
	rec, err := d.core.Audit.Append(ctx, e)
	if err != nil {
		d.log.Error("audit append failed for a configuration reload", "err", err)
		return
	}
	d.bus.Publish(events.AuditEntryCreated, "daemon", events.Audit{Seq: rec.Seq})
}

// reloadConfig serves astrid.reloadConfig.
func (d *Daemon) reloadConfig(ctx context.Context, c *clientConn, _ api.Empty) (api.ReloadConfigResult, error) {
	return d.reload(ctx, c.caller.User)
}

// reloadOnHangup reloads the configuration on every SIGHUP until ctx is
// done; the returned channel is closed when it stopped.
func (d *Daemon) reloadOnHangup(ctx context.Context) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		for {
			select {
			case <-hup:
				// The outcome is logged, audited and published.
				_, _ = d.reload(ctx, "signal:SIGHUP")
			case <-ctx.Done():
				return
			}
		}
	}()
	return done
}
