package capsule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capability"
	"github.com/astrid-runtime/astrid/internal/security"
)

// GrantTTL is the lifetime of the token issued at install; after it the
// capsule's capsule-scoped actions ask the human again until reinstalled.
const GrantTTL = 365 * 24 * time.Hour

// Errors of Install.
var (
	// ErrNotGranted: the user did not grant what the manifest requests.
	ErrNotGranted = errors.New("capsule: the requested capabilities were not granted")
	// ErrInstalled: a capsule of that name is installed; remove it first.
	ErrInstalled = errors.New("capsule: already installed")
)

// Grant is what the user granted at install, kept in
// Dir/<name>.grant.json (mode 0600) outside the capsule's own directory,
// so that no file shipped with a capsule can pose as a grant.
type Grant struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Hash         string            `json:"hash,omitempty"`
	Capabilities Capabilities      `json:"capabilities"`
	Env          map[string]string `json:"env,omitempty"` // secrets included: the file is 0600
	TokenID      string            `json:"token_id"`
	InstalledAt  time.Time         `json:"installed_at"`
}

// InstallOptions are the answers of the person installing.
type InstallOptions struct {
	// Approve is shown the manifest (its capabilities, tools, env
	// requests) and says whether the user grants them. Nil refuses.
	Approve func(m *Manifest) (bool, error)
	// Env holds [env] values given up front (--env NAME=VALUE).
	Env map[string]string
	// AskEnv asks for a value not in Env; nil uses the default, and a
	// variable without one is an error.
	AskEnv func(name string, v EnvVar) (string, error)
	// By names who approved, for the audit log ("cli", "cli --yes").
	By string
}

// Installed describes an installed capsule.
type Installed struct {
	Manifest *Manifest
	Grant    Grant
	Dir      string
}

func (m *Manager) grantPath(name string) string { return filepath.Join(m.o.Dir, name+".grant.json") }

func (m *Manager) readGrant(name string) (Grant, error) {
	var g Grant
	b, err := readBounded(m.grantPath(name), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return g, fmt.Errorf("%w: capsule %q is not installed", api.ErrNotFound, name)
	}
	if err != nil {
		return g, err
	}
	if err := json.Unmarshal(b, &g); err != nil || g.Name != name {
		return g, fmt.Errorf("capsule %s: bad grant record", name)
	}
	return g, nil
}

// Install installs the capsule in src (a directory holding Capsule.toml):
// it parses the manifest, checks the component's hash and that it
// compiles, asks o.Approve, collects the [env] values, copies the files
// the manifest names into Dir/<name>, audits the grant and issues a
// token for capsule://<name>/* (invoke), recorded in the grant. It does
// not load the capsule.
func (m *Manager) Install(ctx context.Context, src string, o InstallOptions) (*Installed, error) {
	if m.o.Tokens == nil {
		return nil, errors.New("capsule: install needs the token service")
	}
	man, err := readManifest(src)
	if err != nil {
		return nil, err
	}
	name := man.Package.Name
	if _, err := os.Stat(m.grantPath(name)); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrInstalled, name)
	}
	files := []string{ManifestFile}
	if c := man.Component; c != nil {
		wasm, err := readBounded(filepath.Join(src, filepath.FromSlash(c.Entrypoint)), MaxModuleSize)
		if err != nil {
			return nil, err
		}
		cm, err := m.eng.compile(ctx, wasm, c.Hash)
		if err != nil {
			return nil, err
		}
		_ = cm.Close(ctx)
		files = append(files, c.Entrypoint)
	}
	for _, f := range man.ContextFiles {
		files = append(files, f.Path)
	}
	for _, s := range man.Skills {
		files = append(files, s.Path)
	}
	if o.Approve == nil {
		return nil, ErrNotGranted
	}
	ok, err := o.Approve(man)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotGranted
	}
	env, err := collectEnv(man, o)
	if err != nil {
		return nil, err
	}
	dst := filepath.Join(m.o.Dir, name)
	if err := copyFiles(src, dst, m.o.Dir, files); err != nil {
		return nil, err
	}
	g := Grant{Name: name, Version: man.Package.Version, Capabilities: man.Capabilities, Env: env, InstalledAt: time.Now().UTC()}
	if man.Component != nil {
		g.Hash = man.Component.Hash
	}
	tok, err := m.issueGrant(ctx, name, o.By)
	if err != nil {
		_ = os.RemoveAll(dst)
		return nil, err
	}
	g.TokenID = tok
	b, _ := json.MarshalIndent(g, "", "  ")
	if err := writeFile0600(m.grantPath(name), b); err != nil {
		_ = os.RemoveAll(dst)
		return nil, err
	}
	m.log.Info("capsule installed", "capsule", name, "version", g.Version)
	return &Installed{Manifest: man, Grant: g, Dir: dst}, nil
}

// issueGrant audits the user's grant and issues the token that covers the
// capsule's capsule-scoped actions.
//
// NOTE: the token covers only capsule://<name>/*: the capsule's tool
// calls, cron runs and its kv, ipc, uplink, cron and elicit calls, which
// the runtime makes only after checking the capsule declared them. File
// and network access get no token: they are judged as the session's own
// file and network actions, because a token for a path or host would
// serve every tool of every session, not just this capsule.
func (m *Manager) issueGrant(ctx context.Context, name, by string) (string, error) {
	res, err := security.CapsuleURI(name, "install")
	if err != nil {
		return "", err
	}
	if by == "" {
		by = "user"
	}
	rec, err := m.audit.Append(ctx, audit.Entry{
		Type:      audit.TypeDecision,
		Session:   "capsule-install",
		Principal: clipUTF8(by, audit.MaxPrincipal),
		Frontend:  "cli",
		Action:    audit.Action{Kind: string(security.Capsule), Resource: res, ArgsHash: argsHash(security.Capsule, res, nil)},
		Decision:  audit.Allowed,
		Proof:     audit.Proof{Approval: "install"},
		Text:      "capsule " + name + " installed; its requested capabilities were granted by " + clipUTF8(by, 64),
	})
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	tok, _, err := m.o.Tokens.Issue(ctx, capability.Grant{
		Principal:   "capsule:" + name,
		Resource:    "capsule://" + name + "/*",
		Permissions: capability.Invoke,
		TTL:         GrantTTL,
		Scope:       capability.ScopePersistent,
		Approval:    rec.Hash[:],
	})
	if err != nil {
		return "", err
	}
	return tok.ID.String(), nil
}

func collectEnv(man *Manifest, o InstallOptions) (map[string]string, error) {
	env := map[string]string{}
	names := make([]string, 0, len(man.Env))
	for n := range man.Env {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := man.Env[n]
		val, ok := o.Env[n]
		if !ok && o.AskEnv != nil {
			var err error
			if val, err = o.AskEnv(n, v); err != nil {
				return nil, err
			}
			ok = val != ""
		}
		if !ok && v.Default != "" {
			val, ok = v.Default, true
		}
		if !ok {
			return nil, fmt.Errorf("capsule %s needs a value for %s (--env %s=...)", man.Package.Name, n, n)
		}
		if len(val) > maxString {
			return nil, fmt.Errorf("value of %s is longer than %d bytes", n, maxString)
		}
		env[n] = val
	}
	for n := range o.Env {
		if _, ok := man.Env[n]; !ok {
			return nil, fmt.Errorf("the manifest declares no [env.%s]", n)
		}
	}
	return env, nil
}

// copyFiles copies the named regular files (relative, checked paths) from
// src into a fresh directory dst, staged under parent and renamed.
func copyFiles(src, dst, parent string, files []string) error {
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(parent, ".install-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	for _, f := range slices.Compact(slices.Sorted(slices.Values(files))) {
		from := filepath.Join(src, filepath.FromSlash(f))
		fi, err := os.Lstat(from)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", from)
		}
		b, err := readBounded(from, MaxModuleSize)
		if err != nil {
			return err
		}
		to := filepath.Join(tmp, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("install into %s: %w", dst, err)
	}
	ok = true
	return nil
}

func writeFile0600(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Remove unloads and uninstalls a capsule: the grant token is revoked,
// its kv store deleted, its files and grant removed.
func (m *Manager) Remove(ctx context.Context, name string) error {
	g, err := m.readGrant(name)
	if err != nil {
		return err
	}
	if err := m.Unload(ctx, name); err != nil && !errors.Is(err, api.ErrNotFound) {
		return err
	}
	if m.o.Tokens != nil && g.TokenID != "" {
		if id, err := capability.ParseID(g.TokenID); err == nil {
			if _, err := m.o.Tokens.Revoke(ctx, id, "capsule "+name+" removed"); err != nil && !errors.Is(err, capability.ErrUnknownToken) {
				return fmt.Errorf("revoke the grant token: %w", err)
			}
		}
	}
	if err := m.kv.DeleteAll(ctx, name); err != nil {
		return err
	}
	if err := os.Remove(m.grantPath(name)); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.failed, name)
	delete(m.failedStamp, name)
	m.mu.Unlock()
	return os.RemoveAll(filepath.Join(m.o.Dir, name))
}

// InstalledCapsules lists the installed capsules by name. A capsule whose
// manifest no longer parses is listed with a nil Manifest.
func (m *Manager) InstalledCapsules() ([]Installed, error) {
	ents, err := os.ReadDir(m.o.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Installed
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".grant.json")
		if !ok || !nameRE.MatchString(name) {
			continue
		}
		g, err := m.readGrant(name)
		if err != nil {
			continue
		}
		dir := filepath.Join(m.o.Dir, name)
		man, _ := readManifest(dir)
		out = append(out, Installed{Manifest: man, Grant: g, Dir: dir})
	}
	return out, nil
}

// Info describes an installed capsule and re-verifies its component
// against the manifest's hash: the error wraps ErrHashMismatch when the
// .wasm on disk was changed.
func (m *Manager) Info(name string) (*Installed, error) {
	g, err := m.readGrant(name)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(m.o.Dir, name)
	man, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	in := &Installed{Manifest: man, Grant: g, Dir: dir}
	if c := man.Component; c != nil {
		wasm, err := readBounded(filepath.Join(dir, filepath.FromSlash(c.Entrypoint)), MaxModuleSize)
		if err != nil {
			return in, err
		}
		if err := VerifyHash(wasm, c.Hash, m.eng.limits.AllowUnhashed); err != nil {
			return in, err
		}
	}
	return in, nil
}
