package mcp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// assertionType is the client_assertion_type of private_key_jwt
// (RFC 7523 section 2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid: long enough
// for clock skew, short enough that a captured one is soon useless.
const assertionLifetime = 5 * time.Minute

// jwsSigner returns the JWS algorithm Astrid signs with for key and the
// signing function (RFC 7518 section 3; RFC 8037 for EdDSA): ECDSA
// signatures are R || S, each the curve's size.
func jwsSigner(key crypto.Signer) (string, func(msg []byte) ([]byte, error), error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return "ES256", func(msg []byte) ([]byte, error) { h := sha256.Sum256(msg); return ecdsaRS(k, h[:], 32) }, nil
		case 384:
			return "ES384", func(msg []byte) ([]byte, error) { h := sha512.Sum384(msg); return ecdsaRS(k, h[:], 48) }, nil
		}
	case *rsa.PrivateKey:
		return "RS256", func(msg []byte) ([]byte, error) {
			h := sha256.Sum256(msg)
			return rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
		}, nil
	case ed25519.PrivateKey:
		return "EdDSA", func(msg []byte) ([]byte, error) { return ed25519.Sign(k, msg), nil }, nil
	}
	return "", nil, fmt.Errorf("no JWS algorithm for a %T key", key)
}

// clientAssertion is the signed JWT a private_key_jwt client
// authenticates with (RFC 7523 section 3): issued by and about the client,
// for audience (the authorization server's issuer), short-lived and
// unique (jti). supported are the authorization server's
// token_endpoint_auth_signing_alg_values_supported; empty allows any.
func clientAssertion(key crypto.Signer, clientID, audience string, supported []string, now time.Time) (string, error) {
	alg, sign, err := jwsSigner(key)
	if err != nil {
		return "", err
	}
	if len(supported) > 0 && !slices.Contains(supported, alg) {
		return "", fmt.Errorf("the private key signs %s; the authorization server accepts %q", alg, strings.Join(supported, " "))
	}
	header, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"iss": clientID, "sub": clientID, "aud": audience, "jti": randomString(24),
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	})
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sig, err := sign([]byte(signing))
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

func ecdsaRS(key *ecdsa.PrivateKey, digest []byte, size int) ([]byte, error) {
	r, s, err := ecdsa.Sign(rand.Reader, key, digest)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, nil
}
