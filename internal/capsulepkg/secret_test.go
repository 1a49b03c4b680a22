package capsulepkg

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", SecretKeyFile)
	s, err := OpenSealer(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	sealed, err := s.Seal("notes", "TOKEN", "s3cret-value")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "s3cret") {
		t.Fatalf("sealed value holds the plaintext: %s", sealed)
	}
	// Reopened from the file, the same key opens it.
	s2, err := OpenSealer(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Open("notes", "TOKEN", sealed); err != nil || got != "s3cret-value" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	for name, tc := range map[string]struct{ capsule, env, sealed string }{
		"flipped bit":       {"notes", "TOKEN", "v1:" + base64.StdEncoding.EncodeToString(flipped)},
		"other variable":    {"notes", "OTHER", sealed},
		"other capsule":     {"evil", "TOKEN", sealed},
		"truncated":         {"notes", "TOKEN", sealed[:10]},
		"not base64":        {"notes", "TOKEN", "v1:!!!"},
		"unknown version":   {"notes", "TOKEN", "v9:" + sealed[3:]},
		"plaintext smuggle": {"notes", "TOKEN", "s3cret-value"},
	} {
		if _, err := s.Open(tc.capsule, tc.env, tc.sealed); !errors.Is(err, ErrSecretTampered) || !strings.Contains(err.Error(), "secret "+tc.env) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Another home's key cannot open it.
	other, err := OpenSealer(filepath.Join(t.TempDir(), SecretKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open("notes", "TOKEN", sealed); !errors.Is(err, ErrSecretTampered) {
		t.Errorf("other key: %v", err)
	}
	env, err := s.OpenEnv("notes", Grant{Env: map[string]string{"REGION": "eu"}, Secrets: map[string]string{"TOKEN": sealed}})
	if err != nil || env["REGION"] != "eu" || env["TOKEN"] != "s3cret-value" {
		t.Errorf("OpenEnv = %v, %v", env, err)
	}
	var none *Sealer
	if _, err := none.OpenEnv("notes", Grant{Secrets: map[string]string{"TOKEN": sealed}}); err == nil {
		t.Error("OpenEnv without a key succeeded")
	}
}

func TestOpenSealerRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc"), 0o600)
	if _, err := OpenSealer(short); err == nil || !strings.Contains(err.Error(), "want a 32-byte key") {
		t.Errorf("short key: %v", err)
	}
	open := filepath.Join(dir, "open")
	os.WriteFile(open, bytes.Repeat([]byte{1}, 32), 0o644)
	if _, err := OpenSealer(open); err == nil || !strings.Contains(err.Error(), "want 0600") {
		t.Errorf("world-readable key: %v", err)
	}
	// The refused files are left as they were.
	if b, _ := os.ReadFile(short); string(b) != "abc" {
		t.Error("the short key was replaced")
	}
}
