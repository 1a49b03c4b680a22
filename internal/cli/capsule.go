package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/ledger"
	"github.com/astrid-runtime/astrid/internal/store"
)

// The capsule commands work on $ASTRID_HOME directly (the store and the
// capsules directory); a running daemon picks up installs and removals
// when it loads or unloads.

func newCapsuleCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "capsule",
		Short: "Install, inspect, remove and build capsules (WASM extensions)",
	}
	cmd.AddCommand(newCapsuleInstallCmd(env), newCapsuleListCmd(env), newCapsuleInfoCmd(env), newCapsuleRemoveCmd(env), newCapsuleCompileCmd(env))
	return cmd
}

// capsuleStores opens the ledger (key, store, audit log, tokens) and the layers of installed capsules: the
// user's, and the workspace's of dir when dir is not "". close releases
// them. No capsule code runs here: package capsulepkg links no WASM
// engine (the daemon compiles a module when it loads it).
func (e *Env) capsuleStores(ctx context.Context, dir string) (user, ws *capsulepkg.Store, closeAll func(), err error) {
	opts, err := e.loadOptions("")
	if err != nil {
		return nil, nil, nil, err
	}
	res, err := config.Load(opts)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("configuration: %w", err)
	}
	c, err := ledger.Open(ctx, ledger.Options{Home: opts.Home, Config: res.Config, Logger: e.log()})
	if err != nil {
		return nil, nil, nil, err
	}
	sealer, err := capsulepkg.OpenSealer(filepath.Join(opts.Home.KeysDir(), capsulepkg.SecretKeyFile))
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	setup := func(s *capsulepkg.Store) *capsulepkg.Store {
		s.Audit, s.Tokens, s.KV, s.Sealer, s.Logger = c.Audit, c.Tokens, store.CapsuleKV{DB: c.DB}, sealer, e.log()
		s.AllowUnhashed = res.Config.Capsules.AllowUnhashed
		return s
	}
	user = setup(capsulepkg.UserStore(opts.Home.Path()))
	if dir != "" {
		ws = setup(capsulepkg.WorkspaceStore(opts.Home.Path(), dir))
	}
	return user, ws, func() { c.Close() }, nil
}

// workspaceRoot is the workspace of the current directory, with its
// symlinks resolved as the daemon resolves a session's workspace.
func (e *Env) workspaceRoot() (string, error) {
	return filepath.EvalSymlinks(e.Dir)
}

func newCapsuleInstallCmd(env *Env) *cobra.Command {
	var yes, workspace bool
	var envs []string
	cmd := &cobra.Command{
		Use:   "install PATH|DIR",
		Short: "Install a capsule after showing what it asks for",
		Long: "Install a capsule from a directory holding Capsule.toml (or the path of the\n" +
			"manifest). The capabilities it requests are shown and you are asked to grant\n" +
			"them; --yes grants them without asking, for scripts. Values for [env] come from\n" +
			"--env NAME=VALUE or are asked for (secrets without echo); they are stored in a\n" +
			"0600 file under $ASTRID_HOME, secrets encrypted, and never shown to the model.\n" +
			"With --workspace the capsule is copied to the current workspace's\n" +
			".astrid/capsules; it loads only in that workspace, once you trusted it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := args[0]
			if !filepath.IsAbs(src) {
				src = filepath.Join(env.Dir, src)
			}
			if filepath.Base(src) == capsulepkg.ManifestFile {
				src = filepath.Dir(src)
			}
			given := map[string]string{}
			for _, kv := range envs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--env %q: want NAME=VALUE", kv)
				}
				given[k] = v
			}
			wsDir := ""
			if workspace {
				var err error
				if wsDir, err = env.workspaceRoot(); err != nil {
					return err
				}
			}
			m, ws, closeAll, err := env.capsuleStores(cmd.Context(), wsDir)
			if err != nil {
				return err
			}
			defer closeAll()
			if ws != nil {
				m = ws
			}
			in := bufio.NewReader(env.Stdin)
			by := "cli"
			if yes {
				by = "cli --yes"
			}
			res, err := m.Install(cmd.Context(), src, capsulepkg.InstallOptions{
				Env: given,
				By:  by,
				Approve: func(man *capsulepkg.Manifest) (bool, error) {
					describeRequests(env.Stderr, man)
					if yes {
						return true, nil
					}
					fmt.Fprint(env.Stderr, "Grant these to "+man.Package.Name+"? [y/N] ")
					line, err := in.ReadString('\n')
					if err != nil && !errors.Is(err, io.EOF) {
						return false, err
					}
					a := strings.ToLower(strings.TrimSpace(line))
					return a == "y" || a == "yes", nil
				},
				AskEnv: func(name string, v capsulepkg.EnvVar) (string, error) {
					if yes && v.Default != "" {
						return "", nil // the default applies
					}
					prompt := name
					if v.Request != "" {
						prompt = v.Request + " (" + name + ")"
					}
					if v.Default != "" {
						prompt += " [" + v.Default + "]"
					}
					fmt.Fprint(env.Stderr, prompt+": ")
					return readValue(env.Stdin, in, v.Type == "secret", env.Stderr)
				},
			})
			if err != nil {
				return err
			}
			if env.jsonOutput() {
				return printJSON(env.Stdout, viewInstalled(res, nil))
			}
			_, err = fmt.Fprintf(env.Stdout, "installed %s %s in %s (%s layer)\n", res.Manifest.Package.Name, res.Manifest.Package.Version, res.Dir, res.Layer)
			return err
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "grant what the manifest requests without asking")
	cmd.Flags().BoolVar(&workspace, "workspace", false, "install into the current workspace's .astrid/capsules (loads only once the workspace is trusted: astrid hooks trust)")
	cmd.Flags().StringArrayVar(&envs, "env", nil, "value of an [env] variable, NAME=VALUE (repeatable)")
	return cmd
}

// describeRequests shows what a manifest asks for.
func describeRequests(w io.Writer, m *capsulepkg.Manifest) {
	fmt.Fprintf(w, "Capsule %s %s", m.Package.Name, m.Package.Version)
	if m.Package.Description != "" {
		fmt.Fprintf(w, ": %s", m.Package.Description)
	}
	fmt.Fprintln(w)
	c := m.Capabilities
	var lines []string
	add := func(ok bool, s string) {
		if ok {
			lines = append(lines, s)
		}
	}
	add(len(c.FSRead) > 0, "read files under: "+strings.Join(c.FSRead, ", "))
	add(len(c.FSWrite) > 0, "write files under: "+strings.Join(c.FSWrite, ", "))
	add(c.HTTP, "make HTTP requests to: "+strings.Join(c.Net, ", "))
	add(c.KV, "keep a private key-value store")
	add(len(c.IPC) > 0, "use message topics: "+strings.Join(c.IPC, ", "))
	add(c.Uplink, "act as a frontend and message you")
	add(c.Cron, "schedule its own jobs")
	add(c.Elicit, "ask you questions")
	for _, t := range m.Tools {
		lines = append(lines, "offer the agent the tool "+t.Name)
	}
	for _, j := range m.Cron {
		lines = append(lines, fmt.Sprintf("run job %s on %q", j.Name, j.Schedule))
	}
	for _, s := range m.MCPServers {
		what := "the program " + s.Command
		if capsulepkg.LocalCommand(s.Command) {
			what = "its own file " + s.Command
		}
		cmd := strconv.Quote(s.Command)
		for _, a := range s.Args {
			cmd += " " + strconv.Quote(a)
		}
		lines = append(lines, fmt.Sprintf("run the MCP server %s (%s, sandboxed with the file and network grants above): %s", s.Name, what, cmd))
	}
	if m.Component != nil && m.Component.Hash == "" {
		lines = append(lines, "run a WASM module whose hash is NOT pinned")
	}
	if len(lines) == 0 {
		lines = append(lines, "nothing beyond static context")
	}
	fmt.Fprintln(w, "It asks to:")
	for _, l := range lines {
		fmt.Fprintln(w, "  - "+l)
	}
	fmt.Fprintln(w, "File and network access is also judged per action by your workspace's policy and mode.")
}

// readValue reads one line; for a secret on a terminal, echo is off.
func readValue(stdin io.Reader, in *bufio.Reader, secret bool, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && secret {
		fd := int(f.Fd())
		if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			quiet := *t
			quiet.Lflag &^= unix.ECHO
			if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err == nil {
				defer func() {
					_ = unix.IoctlSetTermios(fd, unix.TCSETS, t)
					fmt.Fprintln(stderr)
				}()
			}
		}
	}
	line, err := in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// capsuleView is the JSON form of an installed capsulepkg.
type capsuleView struct {
	Name         string                  `json:"name"`
	ID           string                  `json:"id"`
	Layer        string                  `json:"layer"`
	Version      string                  `json:"version"`
	Description  string                  `json:"description,omitempty"`
	Hash         string                  `json:"hash,omitempty"`
	Dir          string                  `json:"dir"`
	InstalledAt  time.Time               `json:"installed_at"`
	Capabilities capsulepkg.Capabilities `json:"capabilities"`
	Tools        []string                `json:"tools,omitempty"`
	Cron         []string                `json:"cron,omitempty"`
	Env          map[string]string       `json:"env,omitempty"` // secrets shown as "(secret)"
	Verified     *bool                   `json:"verified,omitempty"`
	Error        string                  `json:"error,omitempty"`
	manifest     *capsulepkg.Manifest
}

func viewInstalled(in *capsulepkg.Installed, verifyErr error) capsuleView {
	v := capsuleView{Name: in.Grant.Name, ID: in.ID, Layer: in.Layer, Version: in.Grant.Version, Hash: in.Grant.Hash, Dir: in.Dir, InstalledAt: in.Grant.InstalledAt, Capabilities: in.Grant.Capabilities, manifest: in.Manifest}
	if m := in.Manifest; m != nil {
		v.Version, v.Description = m.Package.Version, m.Package.Description
		if m.Component != nil {
			v.Hash = m.Component.Hash
		}
		for _, t := range m.Tools {
			v.Tools = append(v.Tools, t.Name)
		}
		for _, j := range m.Cron {
			v.Cron = append(v.Cron, j.Name+" "+j.Schedule)
		}
		v.Env = map[string]string{}
		for name, e := range m.Env {
			val := in.Grant.Env[name]
			if e.Type == "secret" {
				val = "(secret)"
			}
			v.Env[name] = val
		}
	} else {
		v.Error = "the manifest does not parse"
	}
	if verifyErr != nil {
		v.Error = verifyErr.Error()
	}
	return v
}

// installedCapsules lists the user's capsules and the current workspace's.
func (e *Env) installedCapsules(ctx context.Context) ([]capsulepkg.Installed, error) {
	dir, err := e.workspaceRoot()
	if err != nil {
		return nil, err
	}
	user, ws, closeAll, err := e.capsuleStores(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	all, err := user.List()
	if err != nil {
		return nil, err
	}
	more, err := ws.List()
	return append(all, more...), err
}

// capsuleLayer opens the layer that holds the capsule name: the user's,
// else the current workspace's.
func (e *Env) capsuleLayer(ctx context.Context, name string) (*capsulepkg.Store, func(), error) {
	dir, err := e.workspaceRoot()
	if err != nil {
		return nil, nil, err
	}
	user, ws, closeAll, err := e.capsuleStores(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	if _, err := user.ReadGrant(name); err != nil && errors.Is(err, api.ErrNotFound) {
		if _, werr := ws.ReadGrant(name); werr == nil {
			return ws, closeAll, nil
		}
	}
	return user, closeAll, nil
}

func newCapsuleListCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the installed capsules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := env.installedCapsules(cmd.Context())
			if err != nil {
				return err
			}
			views := make([]capsuleView, 0, len(all))
			for i := range all {
				views = append(views, viewInstalled(&all[i], nil))
			}
			sort.SliceStable(views, func(i, j int) bool { return views[i].Name < views[j].Name })
			if env.jsonOutput() {
				return printJSON(env.Stdout, views)
			}
			if len(views) == 0 {
				_, err := fmt.Fprintln(env.Stdout, "no capsules installed")
				return err
			}
			rows := [][]string{{"NAME", "LAYER", "VERSION", "TOOLS", "INSTALLED"}}
			for _, v := range views {
				rows = append(rows, []string{v.Name, v.Layer, v.Version, strings.Join(v.Tools, ","), v.InstalledAt.Format(time.DateTime)})
			}
			return table(env.Stdout, rows)
		},
	}
}

func newCapsuleInfoCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "info NAME",
		Short: "Show an installed capsule and re-verify its module's hash (exit 1 on a mismatch)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, closeAll, err := env.capsuleLayer(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer closeAll()
			in, err := m.Info(args[0])
			if in == nil {
				return err
			}
			v := viewInstalled(in, err)
			ok := err == nil
			v.Verified = &ok
			if env.jsonOutput() {
				if perr := printJSON(env.Stdout, v); perr != nil {
					return perr
				}
			} else {
				printCapsule(env.Stdout, v)
			}
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			return nil
		},
	}
}

func printCapsule(w io.Writer, v capsuleView) {
	fmt.Fprintf(w, "%s %s (%s layer)\n", v.Name, v.Version, v.Layer)
	if v.Description != "" {
		fmt.Fprintf(w, "  %s\n", v.Description)
	}
	fmt.Fprintf(w, "  dir:       %s\n", v.Dir)
	fmt.Fprintf(w, "  installed: %s\n", v.InstalledAt.Format(time.RFC3339))
	if v.Hash != "" {
		state := "verified"
		if v.Verified != nil && !*v.Verified {
			state = "MISMATCH"
		}
		fmt.Fprintf(w, "  hash:      %s (%s)\n", v.Hash, state)
	}
	if len(v.Tools) > 0 {
		fmt.Fprintf(w, "  tools:     %s\n", strings.Join(v.Tools, ", "))
	}
	for _, c := range v.Cron {
		fmt.Fprintf(w, "  cron:      %s\n", c)
	}
	if v.manifest != nil {
		describeRequests(w, v.manifest)
	}
	if v.Error != "" {
		fmt.Fprintf(w, "  error:     %s\n", v.Error)
	}
}

func newCapsuleRemoveCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove an installed capsule, its grant token and its key-value store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, closeAll, err := env.capsuleLayer(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer closeAll()
			if err := m.Remove(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(env.Stdout, "removed %s\n", args[0])
			return err
		},
	}
}

func newCapsuleCompileCmd(env *Env) *cobra.Command {
	var goTool string
	cmd := &cobra.Command{
		Use:   "compile DIR",
		Short: "Build a Go capsule for GOOS=wasip1 and write its hash into Capsule.toml",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(env.Dir, dir)
			}
			hash, err := capsulepkg.Compile(cmd.Context(), dir, goTool)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(env.Stdout, "built %s: %s\n", dir, hash)
			return err
		},
	}
	cmd.Flags().StringVar(&goTool, "go", "go", "the go command")
	return cmd
}
