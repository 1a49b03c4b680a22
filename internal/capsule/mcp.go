package capsule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/mcp"
	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/tools"
	"github.com/astrid-runtime/astrid/internal/workspace"
)

// The MCP engine: a capsule's [[mcp_server]] entries run as MCP servers
// that the capsule owns, through the runtime's MCP manager (MCPHost), in
// the sandbox helper like configured stdio servers. They start when the
// capsule loads and stop when it unloads or reloads.
//
// Names. Server <s> of capsule <id> is "capsule-<id>-<s>" ('.' of a
// workspace capsule's id becomes '-'; a name longer than 64 characters
// becomes "capsule-<16 hex digits of a SHA-256 of id and s>"), so its
// tools reach the model as mcp__capsule-<id>-<s>__<tool>, like every MCP
// tool, and every call is an MCP action on mcp://capsule-<id>-<s>/<tool>
// that the interceptor judges. A name already in use (a configured
// [servers.NAME], another capsule's server) is refused and the capsule
// does not load: nothing can stand in for another's server.
//
// Trust. The tools of a user capsule's servers are trusted like those of
// a server in the user's configuration; a workspace capsule's are
// untrusted like a workspace's servers: every call asks. A workspace
// capsule's tools are offered to that workspace's sessions only.
//
// What the process may touch. The command is a file the capsule installed
// (a relative path with a slash, resolved in the capsule's directory; it
// must stay inside it once symlinks are followed) or a binary the user
// saw named at install (an absolute path, or a bare name looked up on the
// daemon's PATH). Whatever it is, it runs sandboxed with no more than the
// capsule's grants: read-only the system directories, the toolchain
// directories, its binary's directory, a copy of the capsule's directory
// (its working directory; the installed directory lies in $ASTRID_HOME,
// which no sandboxed process may see) and the fs_read roots; read-write
// the fs_write roots and a private temp dir (its HOME); TCP connections
// only to the ports of the capabilities.net entries; its environment is
// PATH, HOME, TMPDIR, LANG and the entry's env, nothing of the daemon's.
//
// NOTE: the sandbox restricts ports, not hosts: a capsule granted
// "api.example.com" gives its servers port 443 on every host (where
// Landlock has no network rules, any port). Relative file roots are
// granted only to a workspace capsule's servers (against its workspace):
// a user capsule's server has no session, hence no workspace. Roots that
// do not exist when the server starts are not granted.

// MCPHost runs the capsules' MCP servers; *mcp.Manager implements it.
type MCPHost interface {
	AddOwned(ctx context.Context, o mcp.Owned) (api.ServerInfo, error)
	RemoveOwned(ctx context.Context, name string) error
}

// MCPServerName is the server name of [[mcp_server]] server of capsule id.
func MCPServerName(id, server string) string {
	n := "capsule-" + strings.ReplaceAll(id, ".", "-") + "-" + server
	if len(n) <= 64 {
		return n
	}
	sum := sha256.Sum256([]byte(id + "/" + server))
	return "capsule-" + hex.EncodeToString(sum[:8])
}

// startServers starts the capsule's MCP servers. On an error none runs.
func (m *Manager) startServers(ctx context.Context, c *Capsule) error {
	if len(c.man.MCPServers) == 0 {
		return nil
	}
	if m.o.MCP == nil {
		return fmt.Errorf("capsule %s declares MCP servers, but this daemon cannot run them (no sandbox)", c.id)
	}
	stage, err := stageCapsule(m.o.StageRoot, c)
	if err != nil {
		return fmt.Errorf("capsule %s: staging its files for its MCP servers: %w", c.id, err)
	}
	c.stage = stage
	for _, d := range c.man.MCPServers {
		name := MCPServerName(c.id, d.Name)
		cmd := d.Command
		if capsulepkg.LocalCommand(cmd) {
			cmd = filepath.Join(stage, filepath.FromSlash(cmd))
		}
		srv := config.Server{Transport: "stdio", Command: cmd, Args: slices.Clone(d.Args), Env: d.Env,
			Trusted: c.workspace == "", RestartPolicy: "on-failure"}
		_, err := m.o.MCP.AddOwned(ctx, mcp.Owned{Name: name, Owner: "capsule " + c.id, Server: srv,
			Profile: c.serverProfile(d), Tools: c.swapServerTools})
		if err != nil {
			m.stopServers(ctx, c)
			return fmt.Errorf("capsule %s: MCP server %s: %w", c.id, d.Name, err)
		}
		c.servers = append(c.servers, name)
	}
	return nil
}

// stopServers stops the capsule's MCP servers and removes their copy of
// its files.
func (m *Manager) stopServers(ctx context.Context, c *Capsule) {
	for _, name := range c.servers {
		if err := m.o.MCP.RemoveOwned(ctx, name); err != nil {
			m.log.Warn("stopping a capsule's MCP server", "capsule", c.id, "server", name, "err", err)
		}
	}
	c.servers = nil
	if c.stage != "" {
		_ = os.RemoveAll(c.stage)
		c.stage = ""
	}
}

// swapServerTools offers a server's tools where the capsule's own tools
// go (every session, or its workspace's) and withdraws old ones.
func (c *Capsule) swapServerTools(old, new []tools.Tool) {
	m := c.m
	if m.o.Tools == nil {
		return
	}
	// One step: a call never finds a tool missing that both lists hold.
	if err := m.replace(c, tools.Names(old), new); err != nil {
		m.log.Warn("capsule MCP tools not registered", "capsule", c.id, "err", err)
	}
}

// serverProfile returns the mcp.Owned.Profile of server d: base plus the
// capsule's grants (see the comment at the top of this file).
func (c *Capsule) serverProfile(d capsulepkg.MCPServerDecl) func(base sandbox.Profile, bin string) (sandbox.Profile, error) {
	return func(base sandbox.Profile, bin string) (sandbox.Profile, error) {
		stage := c.stage
		if capsulepkg.LocalCommand(d.Command) && !workspace.Within(stage, bin) {
			return sandbox.Profile{}, fmt.Errorf("command %q resolves to %s, outside the capsule's directory", d.Command, bin)
		}
		p := base
		p.ReadOnly = append(slices.Clone(base.ReadOnly), stage)
		p.ReadOnly = append(p.ReadOnly, c.roots(c.caps.FSRead)...)
		p.ReadWrite = append(slices.Clone(base.ReadWrite), c.roots(c.caps.FSWrite)...)
		p.Network = sandbox.Network{ConnectTCP: netPorts(c.caps.Net)}
		p.Dir = stage
		return p, nil
	}
}

// roots resolves file roots for a server process: absolute ones, and for
// a workspace capsule relative ones against its workspace; missing ones
// are left out.
func (c *Capsule) roots(list []string) []string {
	var out []string
	for _, r := range list {
		p, err := workspace.Resolve(c.workspace, r)
		if err != nil {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			c.m.log.Warn("a capsule's file root is not granted to its MCP servers", "capsule", c.id, "root", r, "err", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// netPorts returns the TCP ports of capabilities.net entries: 80 and 443
// for a bare host.
func netPorts(hosts []string) []uint16 {
	var out []uint16
	for _, h := range hosts {
		_, port, err := capsulepkg.SplitHost(h)
		switch {
		case err != nil:
		case port == 0:
			out = append(out, 80, 443)
		default:
			out = append(out, uint16(port))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// stageCapsule copies the capsule's directory (regular files only) into a
// new private directory under root; the capsule's local commands are made
// executable.
func stageCapsule(root string, c *Capsule) (string, error) {
	if root == "" {
		root = filepath.Join(os.TempDir(), fmt.Sprintf("astrid-capsules-%d", os.Getuid()))
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(root, "capsule-")
	if err != nil {
		return "", err
	}
	exec := map[string]string{} // local command -> server name
	for _, d := range c.man.MCPServers {
		if capsulepkg.LocalCommand(d.Command) {
			exec[filepath.FromSlash(d.Command)] = d.Name
		}
	}
	err = filepath.WalkDir(c.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(c.dir, p)
		if err != nil || rel == "." {
			return err
		}
		to := filepath.Join(dir, rel)
		switch {
		case e.IsDir():
			return os.Mkdir(to, 0o700)
		case !e.Type().IsRegular():
			return nil // symlinks and the rest are not part of a capsule
		}
		b, err := capsulepkg.ReadBounded(p, capsulepkg.MaxModuleSize)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o600)
		if name, ok := exec[rel]; ok {
			// What runs is what the user was shown at install.
			if want := c.grant.CommandHash(name); want == "" || capsulepkg.Hash(b) != want {
				return fmt.Errorf("%w: the command of MCP server %s is not the file granted at install", capsulepkg.ErrHashMismatch, name)
			}
			mode = 0o700
		}
		return os.WriteFile(to, b, mode)
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}
