package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// maxKeyFile bounds a private key file.
const maxKeyFile = 64 << 10

// readPrivateFile reads a file that holds a private key, refusing what
// others could read or swap: a symlink (the open does not follow it), a
// file that is not regular, readable by group or others, or not the
// current user's. A missing file is an os.ErrNotExist error.
func readPrivateFile(p string) ([]byte, error) {
	// O_NONBLOCK: a FIFO in its place must not block the open.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("key file %s is a symlink; refusing it", p)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("key file %s is not a regular file", p)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("key file %s has mode %04o; it must be 0600 (chmod 600 %s)", p, fi.Mode().Perm(), p)
	case fi.Size() > maxKeyFile:
		return nil, fmt.Errorf("key file %s is %d bytes; not a key", p, fi.Size())
	}
	if err := checkOwner(fi, p); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err == nil && len(b) > maxKeyFile {
		err = fmt.Errorf("key file %s grew beyond %d bytes while read", p, maxKeyFile)
	}
	return b, err
}

// ReadSigner reads a PEM private key the user configured for something
// outside Astrid's own keys (an OAuth client's private_key_jwt key, say),
// with the same file checks as Astrid's keys. It takes one unencrypted
// PEM block: PKCS #8 ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or
// PKCS #1 ("RSA PRIVATE KEY"), of an EC P-256 or P-384, RSA (2048 bits or
// more) or ed25519 key.
func ReadSigner(p string) (crypto.Signer, error) {
	b, err := readPrivateFile(p)
	if err != nil {
		return nil, err
	}
	s, err := parseSigner(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", p, err)
	}
	return s, nil
}

func parseSigner(b []byte) (crypto.Signer, error) {
	blk, err := decodePEM(b)
	if err != nil {
		return nil, err
	}
	if _, ok := blk.Headers["Proc-Type"]; ok || blk.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("the key is encrypted; Astrid needs it unencrypted (and the file 0600)")
	}
	var key any
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block type %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if c := k.Curve; c != elliptic.P256() && c != elliptic.P384() {
			return nil, fmt.Errorf("EC curve %s is not supported (P-256 or P-384)", c.Params().Name)
		}
		return k, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too weak (2048 or more)", k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("key type %T is not supported", key)
}
