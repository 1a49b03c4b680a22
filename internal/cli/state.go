package cli

import (
	"context"
	"fmt"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/store"
)

// openStore opens $ASTRID_HOME/state.db. A read-only open never creates or
// migrates anything, for commands that only look.
func (e *Env) openStore(ctx context.Context, readOnly bool) (*store.DB, home.Dir, error) {
	h, err := e.home()
	if err != nil {
		return nil, "", err
	}
	if !readOnly {
		if err := h.Ensure(); err != nil {
			return nil, "", err
		}
	}
	db, err := store.Open(ctx, h.StateDB(), store.Options{ReadOnly: readOnly})
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
