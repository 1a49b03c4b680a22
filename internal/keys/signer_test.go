package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func pemFile(t *testing.T, typ string, der []byte, headers map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestReadSigner(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	for name, p := range map[string]string{
		"PKCS8 P-256":   pemFile(t, "PRIVATE KEY", pkcs8(t, p256), nil),
		"PKCS8 P-384":   pemFile(t, "PRIVATE KEY", pkcs8(t, p384), nil),
		"PKCS8 ed25519": pemFile(t, "PRIVATE KEY", pkcs8(t, ed), nil),
		"PKCS8 RSA":     pemFile(t, "PRIVATE KEY", pkcs8(t, rs), nil),
		"SEC1 P-256":    pemFile(t, "EC PRIVATE KEY", sec1, nil),
		"PKCS1 RSA":     pemFile(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rs), nil),
	} {
		if _, err := ReadSigner(p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestReadSignerRefuses: keys that are weak, encrypted, of another kind,
// or in a file others could read or swap are refused, each with a
// message that says why.
func TestReadSignerRefuses(t *testing.T) {
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := pkcs8(t, p256)
	tests := map[string]struct {
		path func(t *testing.T) string
		want string
	}{
		"P-521":           {func(t *testing.T) string { return pemFile(t, "PRIVATE KEY", pkcs8(t, p521), nil) }, "P-521 is not supported"},
		"RSA 1024":        {func(t *testing.T) string { return pemFile(t, "PRIVATE KEY", pkcs8(t, weak), nil) }, "too weak"},
		"encrypted PKCS8": {func(t *testing.T) string { return pemFile(t, "ENCRYPTED PRIVATE KEY", good, nil) }, "encrypted"},
		"legacy encrypted PEM": {func(t *testing.T) string {
			return pemFile(t, "EC PRIVATE KEY", good, map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"})
		}, "encrypted"},
		"a public key": {func(t *testing.T) string {
			der, _ := x509.MarshalPKIXPublicKey(p256.Public())
			return pemFile(t, "PUBLIC KEY", der, nil)
		}, `"PUBLIC KEY" is not a private key`},
		"not PEM": {func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "k")
			os.WriteFile(p, []byte("ssh-ed25519 AAAA"), 0o600)
			return p
		}, "no PEM block"},
		"trailing data": {func(t *testing.T) string {
			p := pemFile(t, "PRIVATE KEY", good, nil)
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("more\n")
			f.Close()
			return p
		}, "trailing data"},
		"mode 0640": {func(t *testing.T) string {
			p := pemFile(t, "PRIVATE KEY", good, nil)
			os.Chmod(p, 0o640)
			return p
		}, "must be 0600"},
		"symlink": {func(t *testing.T) string {
			l := filepath.Join(t.TempDir(), "link")
			os.Symlink(pemFile(t, "PRIVATE KEY", good, nil), l)
			return l
		}, "symlink"},
		"directory": {func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "d")
			os.Mkdir(d, 0o700)
			return d
		}, "not a regular file"},
		"FIFO": {func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skip(err)
			}
			return p
		}, "not a regular file"},
		"huge": {func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "k")
			os.WriteFile(p, make([]byte, maxKeyFile+1), 0o600)
			return p
		}, "not a key"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ReadSigner(tt.path(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadSigner: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
