package capsulepkg

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"lukechampine.com/blake3"
)

// MaxModuleSize bounds a .wasm file (and any capsule file) read from disk.
const MaxModuleSize = 64 << 20

// Errors of checking a component. They are sentinels: callers branch on
// them (capsule info exits 1 on ErrHashMismatch).
var (
	// ErrHashMismatch: the .wasm is not the one the manifest pins.
	ErrHashMismatch = errors.New("capsule: the component's BLAKE3 hash does not match the manifest")
	// ErrUnhashed: the manifest pins no hash and [capsules] allow_unhashed
	// is off.
	ErrUnhashed = errors.New("capsule: the manifest pins no component hash (set [capsules] allow_unhashed = true in the user configuration for development)")
)

// Hash returns the manifest form of the BLAKE3-256 hash of a module:
// "blake3:<hex>".
func Hash(wasm []byte) string {
	sum := blake3.Sum256(wasm)
	return "blake3:" + hex.EncodeToString(sum[:])
}

// VerifyHash checks wasm against a manifest hash. An empty want is
// ErrUnhashed unless allowUnhashed.
func VerifyHash(wasm []byte, want string, allowUnhashed bool) error {
	if want == "" {
		if allowUnhashed {
			return nil
		}
		return ErrUnhashed
	}
	w, err := hashBytes(want)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHashMismatch, err)
	}
	got := blake3.Sum256(wasm)
	if subtle.ConstantTimeCompare(got[:], w) != 1 {
		return ErrHashMismatch
	}
	return nil
}
