package capsulepkg

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretKeyFile is the name of the key that seals capsule secrets, in
// $ASTRID_HOME/keys.
const SecretKeyFile = "capsule-secrets.key"

// sealedPrefix versions the sealed form: "v1:" then base64 of the 12-byte
// nonce and the AES-256-GCM ciphertext with its tag.
const sealedPrefix = "v1:"

// ErrSecretTampered: a sealed secret does not open under the key: it was
// altered, moved to another variable or capsule, or sealed under another
// key.
var ErrSecretTampered = errors.New("capsule: a sealed secret does not open (it was altered, moved, or sealed with another key); install the capsule again")

// Sealer seals and opens capsule secrets with AES-256-GCM.
//
// NOTE: the key is 32 random bytes in its own 0600 file rather than
// derived from the runtime's ed25519 signing key by HKDF. Deriving it
// would tie the secrets to that key's lifetime (rotating or re-issuing the
// signing key would silently make every stored secret unreadable) and
// reuse signing material for encryption. A separate file can be backed up,
// rotated or wiped on its own. Both live in $ASTRID_HOME/keys, which
// policy keeps from every tool and capsule; what sealing buys is that the
// grant files, which tools like `capsule info --json`, backups and bug
// reports handle, never hold a secret in clear.
type Sealer struct {
	aead cipher.AEAD
}

// OpenSealer loads the key at path, creating it (0600, in a 0700
// directory) when missing. A key file of the wrong size or mode is an
// error, never replaced: secrets sealed under it would be lost.
func OpenSealer(path string) (*Sealer, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return OpenSealer(path) // created meanwhile by another process
		}
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			os.Remove(path)
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	} else if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %o, want 0600 (chmod 600 it)", path, fi.Mode().Perm())
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%s: %d bytes, want a 32-byte key", path, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// additional binds a sealed value to its capsule and variable.
func additional(capsule, name string) []byte {
	return []byte("astrid capsule secret\x00" + capsule + "\x00" + name)
}

// Seal encrypts the value of the secret name of capsule (its runtime id).
func (s *Sealer) Seal(capsule, name, value string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, []byte(value), additional(capsule, name))
	return sealedPrefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed for the secret name of capsule. Any
// alteration wraps ErrSecretTampered.
func (s *Sealer) Open(capsule, name, sealed string) (string, error) {
	b64, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", fmt.Errorf("secret %s of capsule %s: %w", name, capsule, ErrSecretTampered)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", fmt.Errorf("secret %s of capsule %s: %w", name, capsule, ErrSecretTampered)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], additional(capsule, name))
	if err != nil {
		return "", fmt.Errorf("secret %s of capsule %s: %w", name, capsule, ErrSecretTampered)
	}
	return string(plain), nil
}

// OpenEnv returns a grant's [env] values with its secrets opened, for the
// capsule's config_get. id is the capsule's runtime id.
func (s *Sealer) OpenEnv(id string, g Grant) (map[string]string, error) {
	env := make(map[string]string, len(g.Env)+len(g.Secrets))
	for k, v := range g.Env {
		env[k] = v
	}
	for k, v := range g.Secrets {
		if s == nil {
			return nil, fmt.Errorf("capsule %s: secret %s: no secret key", id, k)
		}
		plain, err := s.Open(id, k, v)
		if err != nil {
			return nil, err
		}
		env[k] = plain
	}
	return env, nil
}
