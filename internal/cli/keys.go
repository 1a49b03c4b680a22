package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/keys"
)

func newKeysCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the runtime and user signing keys",
	}
	cmd.AddCommand(newKeysShowCmd(env), newKeysGenerateCmd(env))
	return cmd
}

// keyInfo is the printable description of a key.
type keyInfo struct {
	Name        string    `json:"name"`
	ID          string    `json:"id,omitempty"`
	PublicKey   string    `json:"public_key,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Created     time.Time `json:"created,omitzero"`
	File        string    `json:"file"`
	Error       string    `json:"error,omitempty"`
}

func describeKey(d keys.Dir, name string, k *keys.Key, err error) keyInfo {
	ki := keyInfo{Name: name, File: d.File(name)}
	if err != nil {
		ki.Error = err.Error()
		return ki
	}
	ki.ID, ki.PublicKey, ki.Fingerprint, ki.Created = k.ID(), keys.FormatPublic(k.Public()), k.Fingerprint(), k.Created
	return ki
}

func printKeys(env *Env, infos []keyInfo) error {
	if env.jsonOutput() {
		return printJSON(env.Stdout, infos)
	}
	for i, ki := range infos {
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		fmt.Fprintf(env.Stdout, "%s key (%s)\n", ki.Name, ki.File)
		if ki.Error != "" {
			fmt.Fprintf(env.Stdout, "  error:       %s\n", ki.Error)
			continue
		}
		fmt.Fprintf(env.Stdout, "  public key:  %s\n  fingerprint: %s\n  id:          %s\n  created:     %s\n",
			ki.PublicKey, ki.Fingerprint, ki.ID, ki.Created.Format(time.RFC3339))
	}
	return nil
}

func keyNames(args []string) ([]string, error) {
	if len(args) == 0 {
		return []string{keys.Runtime, keys.User}, nil
	}
	switch args[0] {
	case keys.Runtime, keys.User:
		return args[:1], nil
	}
	return nil, fmt.Errorf("unknown key %q: want runtime or user", args[0])
}

func newKeysShowCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:       "show [runtime|user]",
		Short:     "Show public keys, fingerprints and creation times",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{keys.Runtime, keys.User},
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := keyNames(args)
			if err != nil {
				return err
			}
			h, err := env.home()
			if err != nil {
				return err
			}
			d := keys.Dir(h.KeysDir())
			var infos []keyInfo
			failed := false
			for _, n := range names {
				k, err := d.Load(n)
				if errors.Is(err, keys.ErrNotFound) {
					err = fmt.Errorf("%w (run `astrid keys generate`)", err)
				}
				failed = failed || err != nil
				infos = append(infos, describeKey(d, n, k, err))
			}
			if err := printKeys(env, infos); err != nil {
				return err
			}
			if failed {
				return &ExitError{Code: 1, Err: errSilent}
			}
			return nil
		},
	}
}

func newKeysGenerateCmd(env *Env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "generate [runtime|user]",
		Short: "Generate missing signing keys (--force replaces existing ones)",
		Long: "Generate the runtime key (signs capability tokens and audit checkpoints) and the user key.\n" +
			"Existing keys are kept unless --force is given; replacing the runtime key makes every\n" +
			"token it signed stop verifying.",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{keys.Runtime, keys.User},
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := keyNames(args)
			if err != nil {
				return err
			}
			h, err := env.home()
			if err != nil {
				return err
			}
			if err := h.Ensure(); err != nil {
				return err
			}
			d := keys.Dir(h.KeysDir())
			var infos []keyInfo
			for _, n := range names {
				k, err := d.Generate(n, force)
				if errors.Is(err, keys.ErrExists) && len(args) == 0 && !force {
					// Generating "all" keeps the ones already there.
					k, err = d.Load(n)
				}
				if err != nil {
					return err
				}
				infos = append(infos, describeKey(d, n, k, nil))
			}
			return printKeys(env, infos)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace existing keys")
	return cmd
}
