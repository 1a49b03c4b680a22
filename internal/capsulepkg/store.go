package capsulepkg

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capability"
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
// GrantDir/<name>.grant.json (mode 0600) under $ASTRID_HOME, outside the
// capsule's own directory, so that no file shipped with a capsule can pose
// as a grant.
type Grant struct {
	Name         string       `json:"name"`
	Version      string       `json:"version"`
	Hash         string       `json:"hash,omitempty"`
	Capabilities Capabilities `json:"capabilities"`
	// Env holds the [env] values of type string.
	Env map[string]string `json:"env,omitempty"`
	// Secrets holds the [env] values of type secret, sealed (Sealer).
	Secrets map[string]string `json:"secrets,omitempty"`
	// Workspace is the workspace root of a workspace capsule, "" for the
	// user's.
	Workspace   string    `json:"workspace,omitempty"`
	TokenID     string    `json:"token_id"`
	InstalledAt time.Time `json:"installed_at"`
	// MCPServers are the [[mcp_server]] entries the user was shown, each
	// with the hash of its command when that is a file of the capsule; a
	// manifest whose servers differ does not load.
	MCPServers []GrantedServer `json:"mcp_servers,omitempty"`
}

// GrantedServer is an [[mcp_server]] as granted at install.
type GrantedServer struct {
	MCPServerDecl
	// CommandHash is the BLAKE3 hash (Hash) of a local command's file.
	CommandHash string `json:"command_hash,omitempty"`
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
	// ID is the capsule's id in the runtime (see Store.ID).
	ID       string
	Manifest *Manifest
	Grant    Grant
	Dir      string
	// Layer is "user" or "workspace".
	Layer string
}

// KVDeleter removes a capsule's key-value store at Remove.
type KVDeleter interface {
	DeleteAll(ctx context.Context, capsule string) error
}

// Store is one layer of installed capsules. Dir and GrantDir are
// required; Audit and Tokens are needed by Install and Remove.
type Store struct {
	// Dir holds the capsules' files, Dir/<name>/.
	Dir string
	// GrantDir holds the grants, GrantDir/<name>.grant.json; it must be
	// under $ASTRID_HOME.
	GrantDir string
	// Workspace is the workspace root of a workspace layer, "" for the
	// user's.
	Workspace string
	Audit     Auditor
	Tokens    *capability.Service
	// KV, if set, loses a capsule's store at Remove.
	KV KVDeleter
	// Sealer seals [env] secrets; nil refuses to install a capsule that
	// declares one.
	Sealer *Sealer
	// AllowUnhashed accepts components whose manifest pins no hash.
	AllowUnhashed bool
	// Check, if set, is run on the module at install after the hash and
	// ABI checks (the engine compiles it).
	Check  func(ctx context.Context, wasm []byte) error
	Logger *slog.Logger
}

// UserStore is the user layer of $ASTRID_HOME (home): capsules and grants
// in home/capsules.
func UserStore(home string) *Store {
	d := filepath.Join(home, "capsules")
	return &Store{Dir: d, GrantDir: d}
}

// WorkspaceStore is the layer of a workspace (an absolute, clean root):
// files in <workspace>/.astrid/capsules, grants under
// home/capsules/workspaces/<digest of the root>.
func WorkspaceStore(home, workspace string) *Store {
	sum := sha256.Sum256([]byte(workspace))
	return &Store{
		Dir:       filepath.Join(workspace, ".astrid", "capsules"),
		GrantDir:  filepath.Join(home, "capsules", "workspaces", hex.EncodeToString(sum[:8])),
		Workspace: workspace,
	}
}

// ID is the runtime id of the capsule name of this layer: the name for
// the user layer, "<name>.ws-<8 hex digits of the root's digest>" for a
// workspace (ids must be unique across workspaces; '.' cannot appear in a
// package name, so no user capsule can take a workspace capsule's id).
func (s *Store) ID(name string) string {
	if s.Workspace == "" {
		return name
	}
	return name + ".ws-" + filepath.Base(s.GrantDir)[:8]
}

// Layer is "user" or "workspace".
func (s *Store) Layer() string {
	if s.Workspace == "" {
		return "user"
	}
	return "workspace"
}

func (s *Store) grantPath(name string) string { return filepath.Join(s.GrantDir, name+".grant.json") }

// CapsuleDir is the directory of an installed capsule.
func (s *Store) CapsuleDir(name string) string { return filepath.Join(s.Dir, name) }

// ReadGrant reads the grant of an installed capsule; a missing one wraps
// api.ErrNotFound.
func (s *Store) ReadGrant(name string) (Grant, error) {
	var g Grant
	if !ValidName(name) {
		return g, fmt.Errorf("%w: capsule %q", api.ErrNotFound, name)
	}
	b, err := ReadBounded(s.grantPath(name), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return g, fmt.Errorf("%w: capsule %q is not installed", api.ErrNotFound, name)
	}
	if err != nil {
		return g, err
	}
	if err := json.Unmarshal(b, &g); err != nil || g.Name != name || g.Workspace != s.Workspace {
		return g, fmt.Errorf("capsule %s: bad grant record %s", name, s.grantPath(name))
	}
	return g, nil
}

// GrantFile is the path of a capsule's grant (its content changes when
// the capsule is reinstalled).
func (s *Store) GrantFile(name string) string { return s.grantPath(name) }

// Install installs the capsule in src (a directory holding Capsule.toml):
// it parses the manifest, checks the component's hash and ABI (and
// s.Check), asks o.Approve, collects the [env] values (sealing secrets),
// copies the files the manifest names into Dir/<name>, audits the grant
// and issues a token for capsule://<id>/* (invoke), recorded in the grant.
// It does not load the capsule.
func (s *Store) Install(ctx context.Context, src string, o InstallOptions) (*Installed, error) {
	if s.Tokens == nil || s.Audit == nil {
		return nil, errors.New("capsule: install needs the token service and the audit log")
	}
	man, err := ReadManifest(src)
	if err != nil {
		return nil, err
	}
	name := man.Package.Name
	if _, err := os.Stat(s.grantPath(name)); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrInstalled, name)
	}
	if err := s.bound(man); err != nil {
		return nil, err
	}
	files := []string{ManifestFile}
	if c := man.Component; c != nil {
		wasm, err := ReadBounded(filepath.Join(src, filepath.FromSlash(c.Entrypoint)), MaxModuleSize)
		if err != nil {
			return nil, err
		}
		if err := VerifyHash(wasm, c.Hash, s.AllowUnhashed); err != nil {
			return nil, err
		}
		if err := CheckModule(wasm); err != nil {
			return nil, err
		}
		if s.Check != nil {
			if err := s.Check(ctx, wasm); err != nil {
				return nil, err
			}
		}
		files = append(files, c.Entrypoint)
	}
	for _, f := range man.ContextFiles {
		files = append(files, f.Path)
	}
	for _, sk := range man.Skills {
		files = append(files, sk.Path)
	}
	for _, sv := range man.MCPServers {
		if LocalCommand(sv.Command) {
			files = append(files, sv.Command)
		}
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
	g := Grant{Name: name, Version: man.Package.Version, Capabilities: man.Capabilities, Workspace: s.Workspace, InstalledAt: time.Now().UTC()}
	for _, sv := range man.MCPServers {
		gs := GrantedServer{MCPServerDecl: sv}
		if LocalCommand(sv.Command) {
			b, err := ReadBounded(filepath.Join(src, filepath.FromSlash(sv.Command)), MaxModuleSize)
			if err != nil {
				return nil, fmt.Errorf("capsule %s: MCP server %s: %w", name, sv.Name, err)
			}
			gs.CommandHash = Hash(b)
		}
		g.MCPServers = append(g.MCPServers, gs)
	}
	for n, v := range env {
		if man.Env[n].Type != "secret" {
			if g.Env == nil {
				g.Env = map[string]string{}
			}
			g.Env[n] = v
			continue
		}
		if s.Sealer == nil {
			return nil, fmt.Errorf("capsule %s declares the secret %s but no secret key is available", name, n)
		}
		sealed, err := s.Sealer.Seal(s.ID(name), n, v)
		if err != nil {
			return nil, err
		}
		if g.Secrets == nil {
			g.Secrets = map[string]string{}
		}
		g.Secrets[n] = sealed
	}
	if man.Component != nil {
		g.Hash = man.Component.Hash
	}
	dst := s.CapsuleDir(name)
	if err := copyFiles(src, dst, s.Dir, files); err != nil {
		return nil, err
	}
	tok, err := s.issueGrant(ctx, name, o.By)
	if err != nil {
		_ = os.RemoveAll(dst)
		return nil, err
	}
	g.TokenID = tok
	b, _ := json.MarshalIndent(g, "", "  ")
	if err := os.MkdirAll(s.GrantDir, 0o700); err != nil {
		_ = os.RemoveAll(dst)
		return nil, err
	}
	if err := writeFileMode(s.grantPath(name), b, 0o600); err != nil {
		_ = os.RemoveAll(dst)
		return nil, err
	}
	if s.Logger != nil {
		s.Logger.Info("capsule installed", "capsule", s.ID(name), "version", g.Version, "layer", s.Layer())
	}
	return &Installed{ID: s.ID(name), Manifest: man, Grant: g, Dir: dst, Layer: s.Layer()}, nil
}

// LocalCommand reports whether an [[mcp_server]] command is a file of the
// capsule (a relative path with a slash) rather than a declared binary.
func LocalCommand(cmd string) bool {
	return strings.Contains(cmd, "/") && !filepath.IsAbs(cmd)
}

// bound refuses what a workspace capsule may not ask for, whatever the
// user grants: file roots outside its workspace (an absolute root, which a
// repository could use to reach the user's files).
func (s *Store) bound(man *Manifest) error {
	if s.Workspace == "" {
		return nil
	}
	for _, r := range slices.Concat(man.Capabilities.FSRead, man.Capabilities.FSWrite) {
		if filepath.IsAbs(r) {
			return fmt.Errorf("capsule %s: a workspace capsule may only name file roots inside its workspace, not %q; install it in the user layer instead", man.Package.Name, r)
		}
	}
	return nil
}

// issueGrant audits the user's grant and issues the token that covers the
// capsule's capsule-scoped actions.
//
// NOTE: the token covers only capsule://<id>/*: the capsule's tool
// calls, cron runs and its kv, ipc, uplink, cron and elicit calls, which
// the runtime makes only after checking the capsule declared them. File
// and network access get no token: they are judged as the session's own
// file and network actions, because a token for a path or host would
// serve every tool of every session, not just this capsule.
func (s *Store) issueGrant(ctx context.Context, name, by string) (string, error) {
	id := s.ID(name)
	// id is a valid name (ValidName, or a workspace id built from one), so
	// it is a valid resource segment.
	res := "capsule://" + id + "/install"
	if by == "" {
		by = "user"
	}
	text := "capsule " + id + " installed; its requested capabilities were granted by " + audit.ClipUTF8(by, 64)
	if s.Workspace != "" {
		text += " (workspace " + audit.ClipUTF8(s.Workspace, 512) + ")"
	}
	rec, err := s.Audit.Append(ctx, audit.Entry{
		Type:      audit.TypeDecision,
		Session:   "capsule-install",
		Principal: audit.ClipUTF8(by, audit.MaxPrincipal),
		Frontend:  "cli",
		Action:    audit.Action{Kind: ActionKind, Resource: res, ArgsHash: audit.ActionHash(ActionKind, res, nil)},
		Decision:  audit.Allowed,
		Proof:     audit.Proof{Approval: "install"},
		Text:      audit.ClipText(text),
	})
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	tok, _, err := s.Tokens.Issue(ctx, capability.Grant{
		Principal:   "capsule:" + id,
		Resource:    "capsule://" + id + "/*",
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
		b, err := ReadBounded(from, MaxModuleSize)
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

// Remove uninstalls a capsule: the grant token is revoked, its kv store
// deleted (KV), its files and grant removed. The caller unloads it first.
func (s *Store) Remove(ctx context.Context, name string) error {
	g, err := s.ReadGrant(name)
	if err != nil {
		return err
	}
	if s.Tokens != nil && g.TokenID != "" {
		if id, err := capability.ParseID(g.TokenID); err == nil {
			if _, err := s.Tokens.Revoke(ctx, id, "capsule "+s.ID(name)+" removed"); err != nil && !errors.Is(err, capability.ErrUnknownToken) {
				return fmt.Errorf("revoke the grant token: %w", err)
			}
		}
	}
	if s.KV != nil {
		// Its kv store and the records of its deferred host calls go with
		// it: a capsule installed later under the same id must not read
		// them.
		for _, ns := range []string{s.ID(name), DeferredNS(s.ID(name))} {
			if err := s.KV.DeleteAll(ctx, ns); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(s.grantPath(name)); err != nil {
		return err
	}
	return os.RemoveAll(s.CapsuleDir(name))
}

// List lists the capsules installed in this layer by name. A capsule whose
// manifest no longer parses is listed with a nil Manifest.
func (s *Store) List() ([]Installed, error) {
	ents, err := os.ReadDir(s.GrantDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Installed
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".grant.json")
		if !ok || !ValidName(name) {
			continue
		}
		g, err := s.ReadGrant(name)
		if err != nil {
			continue
		}
		dir := s.CapsuleDir(name)
		man, _ := ReadManifest(dir)
		out = append(out, Installed{ID: s.ID(name), Manifest: man, Grant: g, Dir: dir, Layer: s.Layer()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Grant.Name < out[j].Grant.Name })
	return out, nil
}

// Info describes an installed capsule and re-verifies its component
// against the manifest's hash: the error wraps ErrHashMismatch when the
// .wasm on disk was changed. Secrets stay sealed.
func (s *Store) Info(name string) (*Installed, error) {
	g, err := s.ReadGrant(name)
	if err != nil {
		return nil, err
	}
	dir := s.CapsuleDir(name)
	man, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	in := &Installed{ID: s.ID(name), Manifest: man, Grant: g, Dir: dir, Layer: s.Layer()}
	if c := man.Component; c != nil {
		wasm, err := ReadBounded(filepath.Join(dir, filepath.FromSlash(c.Entrypoint)), MaxModuleSize)
		if err != nil {
			return in, err
		}
		if err := s.Verify(g, man, wasm); err != nil {
			return in, err
		}
	}
	return in, nil
}

// Verify checks an installed capsule's manifest and module against its
// grant: the manifest asks for nothing beyond the granted capabilities,
// and the module matches the manifest's hash. In a workspace layer,
// whose files anyone who can write the repository can change, the
// manifest must also still pin the hash granted at install.
func (s *Store) Verify(g Grant, man *Manifest, wasm []byte) error {
	if err := man.Capabilities.Within(g.Capabilities); err != nil {
		return fmt.Errorf("capsule %s asks for more than was granted at install (%v); install it again to grant it", s.ID(g.Name), err)
	}
	if err := s.bound(man); err != nil {
		return err
	}
	if err := g.checkServers(man); err != nil {
		return fmt.Errorf("capsule %s: %w; install it again to grant them", s.ID(g.Name), err)
	}
	c := man.Component
	if c == nil {
		return nil
	}
	if err := VerifyHash(wasm, c.Hash, s.AllowUnhashed); err != nil {
		return err
	}
	if s.Workspace != "" && c.Hash != g.Hash {
		return fmt.Errorf("%w: the workspace's manifest pins %q, the install granted %q; install it again", ErrHashMismatch, c.Hash, g.Hash)
	}
	return nil
}

// checkServers compares the manifest's [[mcp_server]] entries with those
// granted.
func (g Grant) checkServers(man *Manifest) error {
	if len(man.MCPServers) != len(g.MCPServers) {
		return fmt.Errorf("the manifest declares %d MCP servers, the install granted %d", len(man.MCPServers), len(g.MCPServers))
	}
	for i, sv := range man.MCPServers {
		if !reflect.DeepEqual(normServer(sv), normServer(g.MCPServers[i].MCPServerDecl)) {
			return fmt.Errorf("MCP server %s differs from the one granted at install", sv.Name)
		}
	}
	return nil
}

func normServer(d MCPServerDecl) MCPServerDecl {
	if len(d.Args) == 0 {
		d.Args = nil
	}
	if len(d.Env) == 0 {
		d.Env = nil
	}
	return d
}

// CommandHash returns the hash granted for the local command of server
// name, "" when there is none.
func (g Grant) CommandHash(name string) string {
	for _, s := range g.MCPServers {
		if s.Name == name {
			return s.CommandHash
		}
	}
	return ""
}
