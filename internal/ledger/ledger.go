// Package ledger opens the signed state of one $ASTRID_HOME: the runtime
// key and the trusted issuers, the store, the audit log and the capability
// token service, and nothing that runs actions.
//
// The daemon's core (package core) opens a Ledger and adds the interceptor
// over it. CLI commands that write signed state without running an action
// (capsule install and remove, which issue and revoke a capsule's token and
// audit it) open only a Ledger, so the thin CLI links no interceptor.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/store"
)

// Options configure Open.
type Options struct {
	Home home.Dir
	// Config is the merged user configuration (keys.trusted_issuers and the
	// token settings of [security] are read from it).
	Config *config.Config
	// Sync is the store's durability; the zero value fsyncs every commit.
	Sync   store.Sync
	Logger *slog.Logger
}

// Ledger is the opened state. Its fields are set by Open and never change;
// each is safe for concurrent use.
type Ledger struct {
	Key     *keys.Key
	Trusted keys.Trusted
	DB      *store.DB
	Audit   *audit.Log
	Tokens  *capability.Service
}

// Open opens (creating when missing) the state under opts.Home, generating
// the runtime key on first use.
func Open(ctx context.Context, opts Options) (l *Ledger, err error) {
	if opts.Config == nil {
		return nil, errors.New("ledger: no configuration")
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if err := opts.Home.Ensure(); err != nil {
		return nil, err
	}
	l = &Ledger{}
	var created bool
	l.Key, created, err = keys.Dir(opts.Home.KeysDir()).LoadOrGenerate(keys.Runtime)
	if err != nil {
		return nil, fmt.Errorf("runtime key: %w", err)
	}
	if created {
		lg.Warn("generated a new runtime signing key", "id", l.Key.ID(), "fingerprint", l.Key.Fingerprint())
	}
	if l.Trusted, err = keys.NewTrusted(l.Key.Public(), opts.Config.Keys.TrustedIssuers); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.DB, err = store.Open(ctx, opts.Home.StateDB(), store.Options{Sync: opts.Sync}); err != nil {
		return nil, err
	}
	if l.Audit, err = audit.Open(ctx, l.DB.Audit(), l.Key, audit.Options{Trusted: l.Trusted}); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l.Tokens, err = capability.New(ctx, capability.Options{
		Store:     l.DB.Tokens(),
		Trusted:   l.Trusted,
		Key:       l.Key,
		ClockSkew: time.Duration(opts.Config.Security.TokenClockSkewSecs) * time.Second,
		TTL:       time.Duration(opts.Config.Security.AllowAlwaysTTLSecs) * time.Second,
		Logger:    lg,
	})
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return l, nil
}

// Close closes the audit log (writing its last checkpoint) and the store.
func (l *Ledger) Close() error {
	var errs []error
	if l.Audit != nil {
		errs = append(errs, l.Audit.Close())
	}
	if l.DB != nil {
		errs = append(errs, l.DB.Close())
	}
	return errors.Join(errs...)
}
