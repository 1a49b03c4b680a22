package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/store"
)

// openStore opens $ASTRID_HOME/state.db read-only: it never creates or
// migrates anything. The CLI only looks; every change goes through the
// daemon, which audits it.
func (e *Env) openStore(ctx context.Context) (*store.DB, home.Dir, error) {
	h, err := e.home()
	if err != nil {
		return nil, "", err
	}
	db, err := store.Open(ctx, h.StateDB(), store.Options{ReadOnly: true})
	if err != nil {
		return nil, "", err
	}
	return db, h, nil
}

// trusted returns the keys whose signatures Astrid accepts: the runtime key
// plus [keys] trusted_issuers from the configuration (which a workspace
// layer cannot set).
//
// NOTE: the runtime key is loaded, never generated here: a fresh key would
// make an untrusted token or log look like a missing key's fault.
func (e *Env) trusted() (keys.Trusted, error) {
	h, err := e.home()
	if err != nil {
		return nil, err
	}
	k, err := keys.Dir(h.KeysDir()).Load(keys.Runtime)
	if err != nil {
		return nil, fmt.Errorf("cannot check signatures: %w", err)
	}
	opts, err := e.loadOptions("")
	if err != nil {
		return nil, err
	}
	res, err := config.Load(opts)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return keys.NewTrusted(k.Public(), res.Config.Keys.TrustedIssuers)
}

// readStore calls f on the state database opened read-only; ok is false
// when there is none yet (so nothing was ever stored).
func (e *Env) readStore(ctx context.Context, f func(*store.DB) error) (ok bool, err error) {
	h, err := e.home()
	if err != nil {
		return false, err
	}
	if _, err := os.Lstat(h.StateDB()); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	db, _, err := e.openStore(ctx)
	if err != nil {
		return false, err
	}
	defer db.Close()
	return true, f(db)
}

// viaDaemon runs daemon with a client of the running daemon, or, when no
// daemon runs, local (which reads the store read-only). The daemon is
// never started for this: only commands that change state start one.
func (e *Env) viaDaemon(ctx context.Context, daemon func(*client.Client) error, local func() error) error {
	c, _, err := e.connect(ctx, false)
	switch {
	case errors.Is(err, client.ErrNotRunning):
		return local()
	case err != nil:
		return err
	}
	defer c.Close()
	return daemon(c)
}
