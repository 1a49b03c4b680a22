package cli

import (
	"context"
	"fmt"

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
