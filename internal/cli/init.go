package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/config"
)

func newInitCmd(env *Env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Create a workspace configuration (.astrid/config.toml)",
		Long: `Create DIR/.astrid/config.toml (DIR defaults to the current directory) with
every key a workspace may set, commented out. A workspace configuration can
only tighten the system and user configuration.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := env.Dir
			if len(args) == 1 {
				dir = args[0]
				if !filepath.IsAbs(dir) {
					dir = filepath.Join(env.Dir, dir)
				}
			}
			tpl, err := config.WorkspaceTemplate()
			if err != nil {
				return err
			}
			path := config.WorkspaceFile(dir)
			if err := writeWorkspaceConfig(path, tpl, force); err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, map[string]string{"path": path})
			}
			fmt.Fprintf(env.Stdout, "created %s\n", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing workspace configuration")
	return cmd
}

// writeWorkspaceConfig writes data to path, creating its directory. Without
// force it refuses any existing file (O_EXCL, which also refuses a
// symlink). With force it renames a new file over the old one.
// NOTE: the rename replaces a symlink instead of writing through it, so a
// planted .astrid/config.toml -> ~/.bashrc is never overwritten.
func writeWorkspaceConfig(path string, data []byte, force bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists (use --force to overwrite it)", path)
		}
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(dir, ".config.toml.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
