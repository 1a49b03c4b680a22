package cli

import (
	"context"
	"crypto/ed25519"
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

// runtimeKey loads the runtime signing key, generating it on first use (and
// saying so) so that a fresh ASTRID_HOME just works.
func (e *Env) runtimeKey() (*keys.Key, error) {
	h, err := e.home()
	if err != nil {
		return nil, err
	}
	if err := h.Ensure(); err != nil {
		return nil, err
	}
	k, created, err := keys.Dir(h.KeysDir()).LoadOrGenerate(keys.Runtime)
	if err != nil {
		return nil, fmt.Errorf("runtime key: %w", err)
	}
	if created {
		e.log().Warn("generated a new runtime signing key", "id", k.ID(), "fingerprint", k.Fingerprint(), "dir", h.KeysDir())
	}
	return k, nil
}

// trustedIssuers returns the keys whose signatures Astrid accepts: the
// runtime key plus [keys] trusted_issuers from the configuration (which a
// workspace layer cannot set).
func (e *Env) trustedIssuers(runtime ed25519.PublicKey) (keys.Trusted, error) {
	opts, err := e.loadOptions("")
	if err != nil {
		return nil, err
	}
	res, err := config.Load(opts)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return keys.NewTrusted(runtime, res.Config.Keys.TrustedIssuers)
}
