// Package keys manages Astrid's ed25519 signing keys under $ASTRID_HOME/keys.
//
// Two keys live there:
//
//	runtime.key   the runtime's key: signs capability tokens and audit
//	              checkpoints. Generated on first use when missing.
//	user.key      the local user's key: identifies the human principal.
//
// # File format
//
// Each key is a PEM block of type "PRIVATE KEY" holding the PKCS #8 encoding
// of the ed25519 private key (RFC 8410), with one PEM header, "Created", in
// RFC 3339 form. The directory must be mode 0700 and each file 0600, owned by
// the current user and not a symlink; anything else is refused, never fixed
// silently, because a key someone else could read or swap is not a key.
//
// # Identities
//
// A key is named by its ID, the lowercase hex of the first 16 bytes of
// SHA-256(public key), and shown to people as an OpenSSH-style fingerprint,
// "SHA256:" + unpadded base64 of the full SHA-256. Tokens record the issuer's
// ID; verification then uses the trusted public key with that ID.
package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Names of the key files.
const (
	Runtime = "runtime"
	User    = "user"
)

// ErrNotFound means the key file does not exist.
var ErrNotFound = errors.New("key not found")

// ErrExists means Generate would overwrite a key and force was not given.
var ErrExists = errors.New("key already exists")

// Key is an ed25519 signing key with its creation time.
type Key struct {
	Name    string
	Private ed25519.PrivateKey
	Created time.Time
}

// Public returns the public half.
func (k *Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// ID returns the key's identifier (see the package comment).
func (k *Key) ID() string { return ID(k.Public()) }

// Fingerprint returns the key's human-readable fingerprint.
func (k *Key) Fingerprint() string { return Fingerprint(k.Public()) }

// Sign signs msg.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.Private, msg) }

// ID returns the identifier of a public key.
func ID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:16])
}

// Fingerprint returns "SHA256:<base64>" of a public key.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// FormatPublic renders a public key as "ed25519:<base64>", the form used in
// configuration (keys.trusted_issuers).
func FormatPublic(pub ed25519.PublicKey) string {
	return "ed25519:" + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublic parses the "ed25519:<base64>" form.
func ParsePublic(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, "ed25519:")
	if !ok {
		return nil, fmt.Errorf("public key %q: want ed25519:<base64>", s)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("public key %q: %w", s, err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q: %d bytes, want %d", s, len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// Dir is a key directory.
type Dir string

// File returns the path of the named key.
func (d Dir) File(name string) string { return filepath.Join(string(d), name+".key") }

// checkDir verifies the directory's type and mode; missing is reported as
// os.ErrNotExist.
func (d Dir) checkDir() error {
	fi, err := os.Lstat(string(d))
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("key directory %s is a symlink; refusing it", d)
	}
	if !fi.IsDir() {
		return fmt.Errorf("key directory %s is not a directory", d)
	}
	if p := fi.Mode().Perm(); p&0o077 != 0 {
		return fmt.Errorf("key directory %s has mode %04o; it must be 0700 (chmod 700 %s)", d, p, d)
	}
	if err := checkOwner(fi, string(d)); err != nil {
		return err
	}
	return nil
}

func checkOwner(fi os.FileInfo, p string) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by the current user (uid %d)", p, st.Uid, os.Geteuid())
	}
	return nil
}

// Load reads the named key, checking the directory and file permissions.
func (d Dir) Load(name string) (*Key, error) {
	if err := d.checkDir(); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s key: %w", name, ErrNotFound)
		}
		return nil, err
	}
	p := d.File(name)
	b, err := readPrivateFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s key: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	k, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", p, err)
	}
	k.Name = name
	return k, nil
}

// decode parses the PEM file format.
func decode(b []byte) (*Key, error) {
	blk, err := decodePEM(b)
	if err != nil {
		return nil, err
	}
	if blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block type %q, want PRIVATE KEY", blk.Type)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ed25519", parsed)
	}
	created, err := time.Parse(time.RFC3339, blk.Headers["Created"])
	if err != nil {
		return nil, fmt.Errorf("PEM header Created: %w", err)
	}
	return &Key{Private: priv, Created: created}, nil
}

// decodePEM decodes the one PEM block of a key file; anything after it
// is an error.
func decodePEM(b []byte) (*pem.Block, error) {
	blk, rest := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("trailing data after the PEM block")
	}
	return blk, nil
}

func encode(k *Key) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{
		Type:    "PRIVATE KEY",
		Headers: map[string]string{"Created": k.Created.UTC().Format(time.RFC3339)},
		Bytes:   der,
	}), nil
}

// Generate creates a new key and writes it atomically (temporary file,
// fsync, rename). It refuses to replace an existing key unless force is set.
func (d Dir) Generate(name string, force bool) (*Key, error) {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	if err := d.checkDir(); err != nil {
		return nil, err
	}
	p := d.File(name)
	if _, err := os.Lstat(p); err == nil && !force {
		return nil, fmt.Errorf("%s: %w (use --force to replace it; tokens it signed stop verifying)", p, ErrExists)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	k := &Key{Name: name, Private: priv, Created: time.Now().UTC().Truncate(time.Second)}
	b, err := encode(k)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(string(d), p, b, force); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%s: %w", p, ErrExists)
		}
		return nil, err
	}
	return k, nil
}

// LoadOrGenerate loads the named key, generating it when it does not exist.
// created reports whether a new key was made, so the caller can log it.
func (d Dir) LoadOrGenerate(name string) (k *Key, created bool, err error) {
	k, err = d.Load(name)
	if errors.Is(err, ErrNotFound) {
		k, err = d.Generate(name, false)
		if errors.Is(err, ErrExists) { // lost a race with another process
			k, err = d.Load(name)
			return k, false, err
		}
		return k, err == nil, err
	}
	return k, false, err
}

// writeAtomic writes b to p through a synced temporary file. Without replace
// it links the file into place, which fails with os.ErrExist if another
// process created p meanwhile, so two racing generators cannot both win.
func writeAtomic(dir, p string, b []byte, replace bool) error {
	f, err := os.CreateTemp(dir, ".tmp-key-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp, p)
	} else {
		err = os.Link(tmp, p)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Trusted is the set of public keys whose signatures Astrid accepts on
// capability tokens and checkpoints, by key ID.
type Trusted map[string]ed25519.PublicKey

// NewTrusted returns the runtime key plus the configured extra issuers
// ("ed25519:<base64>" strings, see ParsePublic).
func NewTrusted(runtime ed25519.PublicKey, extra []string) (Trusted, error) {
	t := Trusted{ID(runtime): runtime}
	for _, s := range extra {
		pub, err := ParsePublic(s)
		if err != nil {
			return nil, err
		}
		t[ID(pub)] = pub
	}
	return t, nil
}

// Lookup returns the trusted key with the given ID.
func (t Trusted) Lookup(id string) (ed25519.PublicKey, bool) {
	k, ok := t[id]
	return k, ok
}
