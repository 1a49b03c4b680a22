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
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/astrid-runtime/astrid/internal/capsule"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/core"
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

// capsuleManager opens the core and a capsule manager over it. close
// releases both.
func (e *Env) capsuleManager(ctx context.Context) (*capsule.Manager, func(), error) {
	opts, err := e.loadOptions("")
	if err != nil {
		return nil, nil, err
	}
	res, err := config.Load(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	c, err := core.Open(ctx, core.Options{Home: opts.Home, Getenv: opts.Getenv, SystemConfigFile: opts.SystemFile, Logger: e.log()})
	if err != nil {
		return nil, nil, err
	}
	cc := res.Config.Capsules
	m, err := capsule.New(ctx, capsule.Options{
		Dir:         opts.Home.CapsulesDir(),
		Interceptor: c.Interceptor,
		Audit:       c.Audit,
		Tokens:      c.Tokens,
		KV:          store.CapsuleKV{DB: c.DB},
		Limits:      capsule.Limits{MaxMemoryMB: int(cc.MaxMemoryMB), Timeout: time.Duration(cc.TimeoutSecs) * time.Second, AllowUnhashed: cc.AllowUnhashed},
		CacheDir:    filepath.Join(opts.Home.CacheDir(), "capsules"),
		Logger:      e.log(),
	})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return m, func() {
		_ = m.Close(context.WithoutCancel(ctx))
		c.Close()
	}, nil
}

func newCapsuleInstallCmd(env *Env) *cobra.Command {
	var yes bool
	var envs []string
	cmd := &cobra.Command{
		Use:   "install PATH|DIR",
		Short: "Install a capsule after showing what it asks for",
		Long: "Install a capsule from a directory holding Capsule.toml (or the path of the\n" +
			"manifest). The capabilities it requests are shown and you are asked to grant\n" +
			"them; --yes grants them without asking, for scripts. Values for [env] come from\n" +
			"--env NAME=VALUE or are asked for (secrets without echo); they are stored in a\n" +
			"0600 file under $ASTRID_HOME and never shown to the model.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := args[0]
			if !filepath.IsAbs(src) {
				src = filepath.Join(env.Dir, src)
			}
			if filepath.Base(src) == capsule.ManifestFile {
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
			m, closeAll, err := env.capsuleManager(cmd.Context())
			if err != nil {
				return err
			}
			defer closeAll()
			in := bufio.NewReader(env.Stdin)
			by := "cli"
			if yes {
				by = "cli --yes"
			}
			res, err := m.Install(cmd.Context(), src, capsule.InstallOptions{
				Env: given,
				By:  by,
				Approve: func(man *capsule.Manifest) (bool, error) {
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
				AskEnv: func(name string, v capsule.EnvVar) (string, error) {
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
			_, err = fmt.Fprintf(env.Stdout, "installed %s %s in %s\n", res.Manifest.Package.Name, res.Manifest.Package.Version, res.Dir)
			return err
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "grant what the manifest requests without asking")
	cmd.Flags().StringArrayVar(&envs, "env", nil, "value of an [env] variable, NAME=VALUE (repeatable)")
	return cmd
}

// describeRequests shows what a manifest asks for.
func describeRequests(w io.Writer, m *capsule.Manifest) {
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
		lines = append(lines, "run the MCP server "+s.Name+": "+s.Command)
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

// capsuleView is the JSON form of an installed capsule.
type capsuleView struct {
	Name         string               `json:"name"`
	Version      string               `json:"version"`
	Description  string               `json:"description,omitempty"`
	Hash         string               `json:"hash,omitempty"`
	Dir          string               `json:"dir"`
	InstalledAt  time.Time            `json:"installed_at"`
	Capabilities capsule.Capabilities `json:"capabilities"`
	Tools        []string             `json:"tools,omitempty"`
	Cron         []string             `json:"cron,omitempty"`
	Env          map[string]string    `json:"env,omitempty"` // secrets shown as "(secret)"
	Verified     *bool                `json:"verified,omitempty"`
	Error        string               `json:"error,omitempty"`
	manifest     *capsule.Manifest
}

func viewInstalled(in *capsule.Installed, verifyErr error) capsuleView {
	v := capsuleView{Name: in.Grant.Name, Version: in.Grant.Version, Hash: in.Grant.Hash, Dir: in.Dir, InstalledAt: in.Grant.InstalledAt, Capabilities: in.Grant.Capabilities, manifest: in.Manifest}
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

func newCapsuleListCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the installed capsules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, closeAll, err := env.capsuleManager(cmd.Context())
			if err != nil {
				return err
			}
			defer closeAll()
			all, err := m.InstalledCapsules()
			if err != nil {
				return err
			}
			views := make([]capsuleView, 0, len(all))
			for i := range all {
				views = append(views, viewInstalled(&all[i], nil))
			}
			sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
			if env.jsonOutput() {
				return printJSON(env.Stdout, views)
			}
			if len(views) == 0 {
				_, err := fmt.Fprintln(env.Stdout, "no capsules installed")
				return err
			}
			rows := [][]string{{"NAME", "VERSION", "TOOLS", "INSTALLED"}}
			for _, v := range views {
				rows = append(rows, []string{v.Name, v.Version, strings.Join(v.Tools, ","), v.InstalledAt.Format(time.DateTime)})
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
			m, closeAll, err := env.capsuleManager(cmd.Context())
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
	fmt.Fprintf(w, "%s %s\n", v.Name, v.Version)
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
			m, closeAll, err := env.capsuleManager(cmd.Context())
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
			hash, err := capsule.Compile(cmd.Context(), dir, goTool)
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
