package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/home"
)

// maxImportFile bounds an mcpServers file.
const maxImportFile = 1 << 20

func newServersImportCmd(env *Env) *cobra.Command {
	var workspace, force bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import MCP servers from an mcpServers JSON file (Claude Desktop, Cursor) into the configuration",
		Long: "Reads {\"mcpServers\": {NAME: {command, args, env} | {url, headers}}} and writes an equivalent [servers.NAME]\n" +
			"table for each into the user configuration ($ASTRID_HOME/config.toml), or with --workspace into the\n" +
			"workspace's .astrid/config.toml. The rest of the file, comments included, is kept. Imported servers are\n" +
			"untrusted and not started automatically. A name already configured is refused unless --force, which\n" +
			"replaces a [servers.NAME] table of the same file.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return importServers(env, args[0], workspace, force)
		},
	}
	cmd.Flags().BoolVar(&workspace, "workspace", false, "write into the workspace layer (<current directory>/.astrid/config.toml)")
	cmd.Flags().BoolVar(&force, "force", false, "replace servers of the same name defined in the target file")
	return cmd
}

func importServers(env *Env, file string, toWorkspace, force bool) error {
	if !filepath.IsAbs(file) {
		file = filepath.Join(env.Dir, file)
	}
	data, err := readBounded(file, maxImportFile)
	if err != nil {
		return err
	}
	servers, warns, err := config.ParseMCPServers(data)
	for _, w := range warns {
		fmt.Fprintln(env.Stderr, "warning: "+file+": "+w)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	lo, err := env.loadOptions("")
	if err != nil {
		return err
	}
	res, err := config.Load(lo)
	if err != nil {
		return invalidConfig(err)
	}
	layer, target := config.LayerUser, lo.Home.ConfigFile()
	if toWorkspace {
		layer, target = config.LayerWorkspace, config.WorkspaceFile(lo.Workspace)
	}
	existing, err := readBounded(target, 4<<20)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var names []string
	for _, s := range servers {
		names = append(names, s.Name)
		for key, l := range res.Origins {
			if !strings.HasPrefix(key, "servers."+s.Name+".") || l == config.LayerDefault {
				continue
			}
			where := fmt.Sprintf("%s config %s", l, res.LayerPath(l))
			if !force {
				return fmt.Errorf("mcp server %q is already defined by %s; pass --force to replace it", s.Name, where)
			}
			if l != layer {
				return fmt.Errorf("mcp server %q is defined by %s, not by the file being written (%s); --force replaces only servers of that file", s.Name, where, target)
			}
		}
		if force {
			var found bool
			if existing, found = config.RemoveServerTables(existing, s.Name); !found && res.Config.Servers[s.Name].Transport != "" && res.Origins["servers."+s.Name+".transport"] == layer {
				return fmt.Errorf("mcp server %q in %s is not written as a [servers.%s] table; edit it by hand", s.Name, target, s.Name)
			}
		}
	}
	out := existing
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	out = append(out, fmt.Sprintf("\n# Imported from %s by `astrid servers import` on %s.\n", strings.ReplaceAll(file, "\n", " "), time.Now().Format("2006-01-02"))...)
	out = append(out, strings.TrimPrefix(config.RenderServers(servers), "\n")...)
	if err := checkImported(lo, toWorkspace, target, out); err != nil {
		return err
	}
	if err := writeAtomic(target, out); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "imported %d MCP server(s) into %s: %s (untrusted, not auto-started)\n", len(servers), target, strings.Join(names, ", "))
	return nil
}

// checkImported loads the configuration as it would be with data as the
// target file, in a scratch directory, and reports its errors against the
// real path.
func checkImported(lo config.LoadOptions, toWorkspace bool, target string, data []byte) error {
	tmp, err := os.MkdirTemp("", "astrid-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	scratch := filepath.Join(tmp, "config.toml")
	if toWorkspace {
		lo.Workspace = tmp
		scratch = config.WorkspaceFile(tmp)
		if err := os.MkdirAll(filepath.Dir(scratch), 0o700); err != nil {
			return err
		}
	} else {
		lo.Home = home.Dir(tmp)
	}
	if err := os.WriteFile(scratch, data, 0o600); err != nil {
		return err
	}
	if _, err := config.Load(lo); err != nil {
		return fmt.Errorf("the imported servers would make the configuration invalid; nothing was written:\n%s", strings.ReplaceAll(err.Error(), scratch, target))
	}
	return nil
}

// writeAtomic replaces path with data (a new file gets mode 0600; an
// existing one keeps its mode), through a synced temporary file in the
// same directory.
func writeAtomic(path string, data []byte) error {
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".config-*.toml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
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
	return os.Rename(f.Name(), path)
}
