package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/config"
)

func newConfigCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "View and validate the layered configuration",
		Long: `Astrid reads its configuration from layers, lowest first: built-in defaults,
/etc/astrid/config.toml, $ASTRID_HOME/config.toml, environment variables (for
keys no file sets), and <workspace>/.astrid/config.toml, which can only
tighten the others.`,
	}
	cmd.AddCommand(newConfigShowCmd(env), newConfigValidateCmd(env), newConfigPathsCmd(env), newConfigReloadCmd(env))
	return cmd
}

// loadOptions builds the config.LoadOptions for a command; workspace is the
// --workspace flag (relative to env.Dir), defaulting to env.Dir.
func (e *Env) loadOptions(workspace string) (config.LoadOptions, error) {
	h, err := e.home()
	if err != nil {
		return config.LoadOptions{}, err
	}
	switch {
	case workspace == "":
		workspace = e.Dir
	case !filepath.IsAbs(workspace):
		workspace = filepath.Join(e.Dir, workspace)
	}
	e.log().Debug("configuration layers", "home", h.Path(), "workspace", workspace, "system", e.systemConfigFile)
	return config.LoadOptions{Home: h, Workspace: workspace, SystemFile: e.systemConfigFile, Getenv: e.Getenv}, nil
}

// jsonOrigin is one entry of `config show --origin --format json`.
type jsonOrigin struct {
	Layer config.Layer `json:"layer"`
	Path  string       `json:"path,omitempty"`
}

func newConfigShowCmd(env *Env) *cobra.Command {
	var workspace string
	var origin bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the resolved configuration, secrets masked",
		Long: `Print the resolved configuration as TOML (--format pretty or toml) or JSON.
API keys, bot tokens and MCP server environment values are masked. With
--origin, each key says which layer set it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := env.loadOptions(workspace)
			if err != nil {
				return err
			}
			res, err := config.Load(opts)
			if err != nil {
				return invalidConfig(err)
			}
			cfg := res.Config.Redacted()
			if env.jsonOutput() {
				out := map[string]any{"config": cfg}
				if origin {
					origins := make(map[string]jsonOrigin, len(res.Origins))
					for k, l := range res.Origins {
						origins[k] = jsonOrigin{Layer: l, Path: res.LayerPath(l)}
					}
					out["origins"] = origins
				}
				return printJSON(env.Stdout, out)
			}
			var originOf func(string) string
			if origin {
				originOf = func(key string) string {
					l, ok := res.Origins[key]
					if !ok {
						return ""
					}
					if p := res.LayerPath(l); p != "" && l != config.LayerDefault {
						return fmt.Sprintf("from %s (%s)", l, p)
					}
					return "from " + string(l)
				}
			}
			fmt.Fprintln(env.Stdout, "# Resolved Astrid configuration; secrets are masked.")
			return cfg.WriteTOML(env.Stdout, originOf)
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace root (default: the current directory)")
	cmd.Flags().BoolVar(&origin, "origin", false, "show which layer set each key")
	return cmd
}

// invalidConfig wraps a Load error for commands other than validate.
func invalidConfig(err error) error {
	var es config.Errors
	if errors.As(err, &es) {
		return fmt.Errorf("invalid configuration (%d problems; see astrid config validate):\n%w", len(es), err)
	}
	return err
}

// jsonFieldError is one error of `config validate --format json`.
type jsonFieldError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

func newConfigValidateCmd(env *Env) *cobra.Command {
	var workspace string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check every configuration layer and list every problem",
		Long: `Check every configuration layer and list every problem as file:line:col.
Exits 0 and prints "ok" when the configuration is valid, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := env.loadOptions(workspace)
			if err != nil {
				return err
			}
			_, err = config.Load(opts)
			var es config.Errors
			if err != nil && !errors.As(err, &es) {
				return err
			}
			if env.jsonOutput() {
				out := struct {
					OK     bool             `json:"ok"`
					Errors []jsonFieldError `json:"errors"`
				}{OK: len(es) == 0, Errors: []jsonFieldError{}}
				for _, e := range es {
					out.Errors = append(out.Errors, jsonFieldError{File: e.File, Line: e.Line, Col: e.Col, Key: e.Key, Message: e.Msg})
				}
				if err := printJSON(env.Stdout, out); err != nil {
					return err
				}
			} else if len(es) == 0 {
				fmt.Fprintln(env.Stdout, "ok")
			} else {
				for _, e := range es {
					fmt.Fprintln(env.Stdout, e.Error())
				}
			}
			if len(es) > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("configuration has %d problem(s)", len(es))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace root (default: the current directory)")
	return cmd
}

func newConfigPathsCmd(env *Env) *cobra.Command {
	var workspace string
	cmd := &cobra.Command{
		Use:   "paths",
		Short: "List the configuration layers and whether their files exist",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := env.loadOptions(workspace)
			if err != nil {
				return err
			}
			layers, err := config.Paths(opts)
			if err != nil {
				return err
			}
			if env.jsonOutput() {
				type jsonLayer struct {
					Layer  config.Layer `json:"layer"`
					Path   string       `json:"path"`
					Exists bool         `json:"exists"`
				}
				out := make([]jsonLayer, len(layers))
				for i, l := range layers {
					out[i] = jsonLayer{l.Name, l.Path, l.Exists}
				}
				return printJSON(env.Stdout, out)
			}
			rows := [][]string{{"LAYER", "PATH", "EXISTS"}}
			for _, l := range layers {
				exists := "no"
				if l.Exists {
					exists = "yes"
				}
				rows = append(rows, []string{string(l.Name), l.Path, exists})
			}
			return table(env.Stdout, rows)
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace root (default: the current directory)")
	return cmd
}
