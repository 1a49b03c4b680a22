package mcp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/config"
)

// ccClient is the fake authorization server's client_credentials client:
// it authenticates by client_secret_basic, or by private_key_jwt with a
// JWT the fake verifies itself (signature, iss, sub, aud, lifetime, and a
// jti never seen before).
type ccClient struct {
	id, secret string
	key        crypto.PublicKey

	mu   sync.Mutex
	jtis map[string]bool
}

func (c *ccClient) authenticate(r *http.Request, issuer string) error {
	if id, secret, ok := r.BasicAuth(); ok {
		if c.secret == "" || id != c.id || secret != c.secret {
			return errors.New("wrong client secret")
		}
		return nil
	}
	if c.key == nil {
		return errors.New("no client authentication")
	}
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return fmt.Errorf("client_assertion_type %q", r.PostForm.Get("client_assertion_type"))
	}
	parts := strings.Split(r.PostForm.Get("client_assertion"), ".")
	if len(parts) != 3 {
		return errors.New("the assertion is not a JWS")
	}
	var header struct{ Alg string }
	var claims struct {
		Iss, Sub, Aud, Jti string
		Iat, Exp           int64
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return errors.New("undecodable assertion")
	}
	signed := []byte(parts[0] + "." + parts[1])
	h := sha256.Sum256(signed)
	ok := false
	switch k := c.key.(type) {
	case *ecdsa.PublicKey:
		ok = header.Alg == "ES256" && len(sig) == 64 &&
			ecdsa.Verify(k, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case ed25519.PublicKey:
		ok = header.Alg == "EdDSA" && ed25519.Verify(k, signed, sig)
	case *rsa.PublicKey:
		ok = header.Alg == "RS256" && rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
	}
	now := time.Now().Unix()
	switch {
	case !ok:
		return fmt.Errorf("bad %s signature", header.Alg)
	case claims.Iss != c.id || claims.Sub != c.id:
		return fmt.Errorf("iss %q sub %q", claims.Iss, claims.Sub)
	case claims.Aud != issuer:
		return fmt.Errorf("aud %q, not this server's issuer", claims.Aud)
	case claims.Exp <= now || claims.Exp-claims.Iat > 600 || claims.Iat > now+5:
		return fmt.Errorf("lifetime iat %d exp %d", claims.Iat, claims.Exp)
	case claims.Jti == "":
		return errors.New("no jti")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jtis[claims.Jti] {
		return errors.New("a replayed assertion")
	}
	if c.jtis == nil {
		c.jtis = map[string]bool{}
	}
	c.jtis[claims.Jti] = true
	return nil
}

// writeKey writes key as a PKCS #8 PEM file with mode perm.
func writeKey(t *testing.T, key crypto.Signer, perm os.FileMode) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOAuthClientCredentialsSecret(t *testing.T) {
	f := newFakeAuth(t)
	f.cc.id, f.cc.secret = "machine", "s3cret-machine"
	f.authMethods = []string{"client_secret_basic"}
	f.grantsOffered = []string{"client_credentials"}
	e := newOAuthEnv(t, f, t.TempDir(), config.ServerOAuth{Grant: config.GrantClientCredentials, ClientID: "machine", ClientSecret: "s3cret-machine"})
	if err := e.start(t); err != nil {
		t.Fatal(err)
	}
	if tools, err := e.m.ListTools("web"); err != nil || len(tools) == 0 {
		t.Fatalf("tools %d, err %v", len(tools), err)
	}
	if g := f.grantTypes(); !slices.Equal(g, []string{"client_credentials"}) {
		t.Errorf("grants %v, want one client_credentials", g)
	}
	if e.fe.count() != 0 || len(f.authorizations()) != 0 {
		t.Errorf("the user was asked (%d) or the authorization endpoint used (%d): client credentials need neither", e.fe.count(), len(f.authorizations()))
	}
	if a := e.audit.oauth(); len(a) != 1 || a[0].Decision != audit.Allowed {
		t.Errorf("audit %+v, want one allowed authorization", a)
	}
	e.noSecrets(t, f, "s3cret-machine")
	if strings.Contains(e.logs.String(), "s3cret-machine") {
		t.Error("the client secret is in the logs")
	}
}

func TestOAuthClientCredentialsJWT(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{{"ES256", ec}, {"EdDSA", ed}, {"RS256", rs}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAuth(t)
			f.cc.id, f.cc.key = "machine", tc.key.Public()
			f.authMethods = []string{"private_key_jwt"}
			f.grantsOffered = []string{"client_credentials"}
			f.signingAlgs = []string{"ES256", "EdDSA", "RS256"}
			dir := t.TempDir()
			oc := config.ServerOAuth{Grant: config.GrantClientCredentials, ClientID: "machine", PrivateKeyFile: writeKey(t, tc.key, 0o600)}
			e := newOAuthEnv(t, f, dir, oc)
			if err := e.start(t); err != nil {
				t.Fatal(err)
			}
			// The server revokes the token: the 401 is answered by a new
			// grant with a new assertion (the fake refuses a replayed jti).
			e.m.Close(context.Background())
			f.revokeAccessTokens()
			e2 := newOAuthEnv(t, f, dir, oc)
			if err := e2.start(t); err != nil {
				t.Fatal(err)
			}
			if g := f.grantTypes(); !slices.Equal(g, []string{"client_credentials", "client_credentials"}) {
				t.Errorf("grants %v, want two client_credentials", g)
			}
			// The record names the key file; the key itself is not stored.
			b, err := os.ReadFile(filepath.Join(dir, "web.json"))
			if err != nil || !strings.Contains(string(b), "private_key_jwt") || strings.Contains(string(b), "PRIVATE KEY") {
				t.Errorf("token file %s, err %v", b, err)
			}
		})
	}
}

// TestOAuthClientCredentialsRenewal: an expired token is replaced by a new
// grant before the request, without a 401 and without the user.
func TestOAuthClientCredentialsRenewal(t *testing.T) {
	f := newFakeAuth(t)
	f.cc.id, f.cc.secret = "machine", "s3cret"
	f.authMethods = []string{"client_secret_post", "client_secret_basic"}
	dir := t.TempDir()
	oc := config.ServerOAuth{Grant: config.GrantClientCredentials, ClientID: "machine", ClientSecret: "s3cret"}
	e := newOAuthEnv(t, f, dir, oc)
	if err := e.start(t); err != nil {
		t.Fatal(err)
	}
	e.m.Close(context.Background())
	rec, err := newOAuthStore(dir).load("web")
	if err != nil || rec == nil {
		t.Fatalf("record %v, err %v", rec, err)
	}
	old := rec.AccessToken
	rec.Expiry = time.Now().Add(-time.Minute)
	if err := newOAuthStore(dir).save("web", rec); err != nil {
		t.Fatal(err)
	}
	e2 := newOAuthEnv(t, f, dir, oc)
	if err := e2.start(t); err != nil {
		t.Fatal(err)
	}
	rec, _ = newOAuthStore(dir).load("web")
	if g := f.grantTypes(); len(g) != 2 || rec.AccessToken == old || time.Until(rec.Expiry) < time.Hour-time.Minute {
		t.Errorf("grants %v, token renewed %v, expiry %v", g, rec.AccessToken != old, rec.Expiry)
	}
	f.mu.Lock()
	denied := f.denied
	f.mu.Unlock()
	if denied != 1 {
		t.Errorf("%d requests were refused; want only the first, before any token", denied)
	}
}

// TestOAuthClientCredentialsRefused: every way the grant can go wrong is
// an error that says what, no token, and an audited denial; a key file
// others could read or swap is never used.
func TestOAuthClientCredentialsRefused(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := func(t *testing.T) string { return writeKey(t, ec, 0o600) }
	tests := []struct {
		name    string
		setup   func(f *fakeAuth)
		key     func(t *testing.T) string // "" means a secret, "wrong"
		want    string
		noToken bool // refused before any token request
	}{
		{name: "wrong secret", want: "invalid_client"},
		{name: "another key signed", key: func(t *testing.T) string { return writeKey(t, other, 0o600) }, want: "invalid_client"},
		{name: "key readable by others", key: func(t *testing.T) string { return writeKey(t, ec, 0o644) }, want: "must be 0600", noToken: true},
		{name: "key behind a symlink", key: func(t *testing.T) string {
			l := filepath.Join(t.TempDir(), "link.pem")
			if err := os.Symlink(good(t), l); err != nil {
				t.Fatal(err)
			}
			return l
		}, want: "symlink", noToken: true},
		{name: "key missing", key: func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.pem") }, want: "no such file", noToken: true},
		{name: "private_key_jwt not offered", setup: func(f *fakeAuth) { f.authMethods = []string{"client_secret_basic"} }, key: good,
			want: "does not accept private_key_jwt", noToken: true},
		{name: "algorithm not accepted", setup: func(f *fakeAuth) { f.signingAlgs = []string{"RS256"} }, key: good,
			want: `signs ES256; the authorization server accepts "RS256"`, noToken: true},
		{name: "grant not offered", setup: func(f *fakeAuth) { f.grantsOffered = []string{"authorization_code"} },
			want: "does not offer the client_credentials grant", noToken: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAuth(t)
			f.cc.id, f.cc.secret, f.cc.key = "machine", "s3cret", ec.Public()
			f.authMethods = []string{"client_secret_basic", "private_key_jwt"}
			if tt.setup != nil {
				tt.setup(f)
			}
			oc := config.ServerOAuth{Grant: config.GrantClientCredentials, ClientID: "machine", ClientSecret: "not-the-secret"}
			if tt.key != nil {
				oc.ClientSecret, oc.PrivateKeyFile = "", tt.key(t)
			} else if tt.setup != nil {
				oc.ClientSecret = "s3cret"
			}
			dir := t.TempDir()
			e := newOAuthEnv(t, f, dir, oc)
			err := e.start(t)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start: %v, want an error saying %q", err, tt.want)
			}
			if g := f.grantTypes(); tt.noToken && len(g) != 0 {
				t.Errorf("token requests %v were made", g)
			}
			if _, err := os.Stat(filepath.Join(dir, "web.json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a token file exists after a refusal: %v", err)
			}
			if a := e.audit.oauth(); len(a) == 0 || a[len(a)-1].Decision != audit.Denied {
				t.Errorf("audit %+v, want a denied authorization", a)
			}
			if e.fe.count() != 0 {
				t.Error("the user was asked")
			}
		})
	}
}

// TestClientAssertionES384: a P-384 key signs ES384, R || S of 48 bytes
// each over SHA-384, which the standard library verifies.
func TestClientAssertionES384(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	a, err := clientAssertion(k, "c", "https://as.example", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(a, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	h := sha512.Sum384([]byte(parts[0] + "." + parts[1]))
	if !strings.Contains(string(hb), `"ES384"`) || len(sig) != 96 ||
		!ecdsa.Verify(&k.PublicKey, h[:], new(big.Int).SetBytes(sig[:48]), new(big.Int).SetBytes(sig[48:])) {
		t.Errorf("header %s, signature of %d bytes does not verify", hb, len(sig))
	}
}
