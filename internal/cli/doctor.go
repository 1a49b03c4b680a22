package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/keys"
	"github.com/astrid-runtime/astrid/internal/sandbox"
	"github.com/astrid-runtime/astrid/internal/store"
)

// Check statuses, from best to worst.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "fail"
)

// checkResult is one line of `astrid doctor`.
type checkResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func newDoctorCmd(env *Env) *cobra.Command {
	var workspace string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check configuration, keys, the state store, the sandbox and the model provider",
		Long: "Check configuration, keys, the state store, the sandbox and the model provider.\n" +
			"Exits 1 when any check fails; warnings do not fail.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workspace == "" {
				workspace = env.Dir
			}
			results := runDoctor(cmd.Context(), env, workspace)
			failed := false
			for _, r := range results {
				failed = failed || r.Status == statusFail
			}
			if env.jsonOutput() {
				if err := printJSON(env.Stdout, results); err != nil {
					return err
				}
			} else {
				rows := [][]string{{"CHECK", "STATUS", "DETAIL"}}
				for _, r := range results {
					rows = append(rows, []string{r.Name, r.Status, r.Detail})
				}
				if err := table(env.Stdout, rows); err != nil {
					return err
				}
			}
			if failed {
				return &ExitError{Code: 1, Err: errors.New("some checks failed")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace directory (default: the current directory)")
	return cmd
}

func runDoctor(ctx context.Context, env *Env, workspace string) []checkResult {
	h, err := env.home()
	if err != nil {
		return []checkResult{{"home", statusFail, err.Error()}}
	}
	results := []checkResult{checkHome(h)}
	cfgResult, cfg := checkConfig(env, workspace)
	results = append(results, cfgResult)
	results = append(results, checkKeys(h)...)
	results = append(results, checkStore(ctx, h), checkLandlock())
	if cfg != nil {
		results = append(results, checkProvider(ctx, cfg))
	}
	return results
}

func checkConfig(env *Env, workspace string) (checkResult, *config.Config) {
	r := checkResult{Name: "config"}
	opts, err := env.loadOptions(workspace)
	if err != nil {
		r.Status, r.Detail = statusFail, err.Error()
		return r, nil
	}
	res, err := config.Load(opts)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) && len(errs) > 1 {
			r.Status, r.Detail = statusFail, fmt.Sprintf("%d errors, first: %v (run `astrid config validate`)", len(errs), errs[0])
		} else {
			r.Status, r.Detail = statusFail, err.Error()
		}
		return r, nil
	}
	var present []string
	for _, l := range res.Layers {
		if l.Exists {
			present = append(present, string(l.Name))
		}
	}
	r.Status, r.Detail = statusOK, "valid; layers: defaults"
	if len(present) > 0 {
		r.Detail += ", " + strings.Join(present, ", ")
	}
	return r, res.Config
}

// providerURLs are the default API endpoints, used only to test
// reachability when a provider is configured.
var providerURLs = map[string]string{
	"anthropic": "https://api.anthropic.com",
	"claude":    "https://api.anthropic.com",
	"openai":    "https://api.openai.com/v1",
	"zai":       "https://api.z.ai/api/paas/v4",
}

// checkProvider reports whether the configured model endpoint answers. It
// makes a network connection only when the user configured a provider (an
// API key or URL); otherwise it says none is configured.
func checkProvider(ctx context.Context, cfg *config.Config) checkResult {
	r := checkResult{Name: "provider"}
	m := cfg.Model
	if m.APIKey == "" && m.APIURL == "" {
		r.Status, r.Detail = statusWarn, "no model provider configured (set an API key or [model] api_url)"
		return r
	}
	u := m.APIURL
	if u == "" {
		u = providerURLs[m.Provider]
	}
	if u == "" {
		r.Status, r.Detail = statusOK, m.Provider+" (no endpoint to check)"
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		r.Status, r.Detail = statusFail, fmt.Sprintf("%s: bad URL %q: %v", m.Provider, u, err)
		return r
	}
	// NOTE: no credentials are sent; any HTTP answer proves reachability.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.Status, r.Detail = statusWarn, fmt.Sprintf("%s at %s is not reachable: %v", m.Provider, u, err)
		return r
	}
	resp.Body.Close()
	r.Status, r.Detail = statusOK, fmt.Sprintf("%s at %s answers (HTTP %d)", m.Provider, u, resp.StatusCode)
	return r
}

func checkHome(h home.Dir) checkResult {
	if _, err := os.Lstat(h.Path()); errors.Is(err, os.ErrNotExist) {
		return checkResult{"home", statusWarn, h.Path() + " does not exist yet (created on first use)"}
	}
	if err := h.Ensure(); err != nil {
		return checkResult{"home", statusFail, err.Error()}
	}
	return checkResult{"home", statusOK, h.Path()}
}

func checkKeys(h home.Dir) []checkResult {
	d := keys.Dir(h.KeysDir())
	var out []checkResult
	for _, name := range []string{keys.Runtime, keys.User} {
		r := checkResult{Name: name + " key"}
		k, err := d.Load(name)
		switch {
		case errors.Is(err, keys.ErrNotFound) && name == keys.Runtime:
			r.Status, r.Detail = statusWarn, "missing; generated on first use (or run `astrid keys generate`)"
		case errors.Is(err, keys.ErrNotFound):
			r.Status, r.Detail = statusWarn, "missing; run `astrid keys generate`"
		case err != nil:
			r.Status, r.Detail = statusFail, err.Error()
		default:
			r.Status, r.Detail = statusOK, k.Fingerprint()
		}
		out = append(out, r)
	}
	return out
}

func checkStore(ctx context.Context, h home.Dir) checkResult {
	r := checkResult{Name: "store"}
	if _, err := os.Lstat(h.StateDB()); errors.Is(err, os.ErrNotExist) {
		r.Status, r.Detail = statusWarn, h.StateDB()+" does not exist yet (created on first use)"
		return r
	}
	// Doctor only looks: a read-only open neither creates nor migrates.
	db, err := store.Open(ctx, h.StateDB(), store.Options{ReadOnly: true})
	if err != nil {
		r.Status, r.Detail = statusFail, err.Error()
		return r
	}
	defer db.Close()
	problems, err := db.Check(ctx)
	if err != nil {
		r.Status, r.Detail = statusFail, "integrity check: "+err.Error()
		return r
	}
	if len(problems) > 0 {
		r.Status, r.Detail = statusFail, "integrity check: "+strings.Join(problems, "; ")
		return r
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		r.Status, r.Detail = statusFail, err.Error()
		return r
	}
	r.Status, r.Detail = statusOK, fmt.Sprintf("%s (schema %d, integrity ok)", h.StateDB(), v)
	return r
}

// checkLandlock reports the kernel's Landlock ABI. NOTE: go-landlock's
// BestEffort mode degrades silently; Astrid instead says loudly when the
// sandbox is unavailable, and then asks for approval of every command.
// sandbox.ABI is a raw syscall: the CLI does not link go-landlock.
func checkLandlock() checkResult {
	abi, err := sandbox.ABI()
	switch {
	case err != nil:
		return checkResult{"landlock", statusWarn, "unavailable: " + err.Error() + "; every shell command will need approval"}
	case abi < sandbox.MinABI:
		return checkResult{"landlock", statusWarn, fmt.Sprintf("ABI version %d is older than the minimum %d (Linux 6.2); every shell command will need approval", abi, sandbox.MinABI)}
	case abi < 4:
		return checkResult{"landlock", statusOK, fmt.Sprintf("ABI version %d (filesystem only: no network rules below ABI 4)", abi)}
	}
	return checkResult{"landlock", statusOK, fmt.Sprintf("ABI version %d (filesystem and TCP rules)", abi)}
}
