package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// oauthRecord is what Astrid keeps about one server's authorization: the
// client it registered or was configured as, and the tokens. It is bound
// to the server's URL; a record for another URL is not used.
type oauthRecord struct {
	ServerURL string          `json:"server_url"`
	Issuer    string          `json:"issuer"`
	Resource  string          `json:"resource"`
	Client    oauthClientInfo `json:"client"`

	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scopes       []string  `json:"scopes,omitempty"`
	// Legacy: the server's origin authorizes, as in MCP 2025-03-26
	// (oauthClient.legacyAuthServer).
	Legacy bool `json:"legacy,omitempty"`
}

// oauthClientInfo is Astrid's identity at an authorization server.
type oauthClientInfo struct {
	ID         string `json:"client_id"`
	Secret     string `json:"client_secret,omitempty"`
	AuthMethod string `json:"auth_method"`
	// KeyFile is the private key of a private_key_jwt client (the key
	// itself is read from it at each use, never stored here).
	KeyFile string `json:"key_file,omitempty"`
	// Registered marks a client from dynamic registration, valid for
	// Issuer and RedirectURI only.
	Registered  bool   `json:"registered,omitempty"`
	Issuer      string `json:"issuer,omitempty"`
	RedirectURI string `json:"redirect_uri,omitempty"`
}

// maxTokenFile bounds a token file read back from disk.
const maxTokenFile = 1 << 20

// oauthStore keeps records by server name: one JSON file per server in
// dir (0600, the directory 0700), or in memory when dir is "".
type oauthStore struct {
	dir string
	mu  sync.Mutex
	mem map[string]*oauthRecord // guarded by mu; dir == "" only
}

func newOAuthStore(dir string) *oauthStore {
	return &oauthStore{dir: dir, mem: map[string]*oauthRecord{}}
}

func (s *oauthStore) file(server string) string {
	return filepath.Join(s.dir, server+".json")
}

// load returns the server's record, or nil when there is none. A token
// file others can read or write, a symlink or an unreadable file is an
// error: the caller does not use it and does not overwrite it.
func (s *oauthStore) load(server string) (*oauthRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		if r := s.mem[server]; r != nil {
			c := *r
			return &c, nil
		}
		return nil, nil
	}
	name := s.file(server)
	fi, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oauth token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("oauth token file %s is not a regular file", name)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("oauth token file %s has mode %v: others may read it; remove it (astrid servers logout %s)", name, fi.Mode().Perm(), server)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("oauth token file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("oauth token file %s: %w", name, err)
	}
	if len(data) > maxTokenFile {
		return nil, fmt.Errorf("oauth token file %s is larger than %d bytes", name, maxTokenFile)
	}
	var r oauthRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("oauth token file %s is damaged: %v", name, err)
	}
	return &r, nil
}

// save replaces the server's record atomically.
func (s *oauthStore) save(server string, r *oauthRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		c := *r
		s.mem[server] = &c
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("oauth token directory: %w", err)
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return fmt.Errorf("oauth token directory: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, "."+server+"-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("oauth token file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("oauth token file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("oauth token file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("oauth token file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.file(server)); err != nil {
		return fmt.Errorf("oauth token file: %w", err)
	}
	return nil
}

// remove deletes the server's record; a missing one is not an error.
func (s *oauthStore) remove(server string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		delete(s.mem, server)
		return nil
	}
	if err := os.Remove(s.file(server)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("oauth token file: %w", err)
	}
	return nil
}
