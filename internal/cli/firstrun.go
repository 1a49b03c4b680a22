package cli

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/config"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/lineui"
	"github.com/astrid-runtime/astrid/internal/llm"
)

//go:embed demo/transcript.jsonl
var demoTranscript []byte

// demoSource is the scratch workspace's file with the bug the demo fixes.
const demoSource = `package main

import "fmt"

func main() {
	fmt.Println("Helo, Astrid")
}
`

// providerProblem says why the configured model provider cannot be used,
// or "" when it can. It looks at the configuration only (the CLI links no
// provider SDK).
func providerProblem(m config.Model) string {
	switch strings.ToLower(m.Provider) {
	case "replay":
		if m.APIURL == "" {
			return "the replay provider needs model.api_url (the transcript file)"
		}
		return ""
	case "openai":
		if m.APIKey == "" && !llm.IsLoopbackURL(m.APIURL) {
			return "no OpenAI API key (OPENAI_API_KEY) and no local server in model.api_url"
		}
		return ""
	case "zai":
		if m.APIKey == "" {
			return "no Z.AI API key (ZAI_API_KEY)"
		}
		return ""
	case "anthropic", "claude", "":
		if m.APIKey == "" {
			return "no Anthropic API key (ANTHROPIC_API_KEY)"
		}
		return ""
	}
	return fmt.Sprintf("unknown provider %q", m.Provider)
}

// firstRun guides a newcomer who has no usable model provider. It returns
// true when a provider is now configured (chat can go on), false when the
// user chose the demo or quit.
func (e *Env) firstRun(ctx context.Context, in *bufio.Reader, problem string) (bool, error) {
	h, err := e.home()
	if err != nil {
		return false, err
	}
	out := e.Stdout
	fmt.Fprintf(out, "Astrid has no model to talk to yet: %s.\n\n", problem)
	ollama, _ := llm.DetectOllama(ctx, llm.OllamaURL)
	if len(ollama) > 0 {
		fmt.Fprintf(out, "  o  use the local Ollama server (models: %s)\n", strings.Join(ollama, ", "))
	}
	fmt.Fprintln(out, "  k  paste an Anthropic API key (stored in $ASTRID_HOME/config.toml, mode 0600, never shown again)")
	fmt.Fprintln(out, "  d  try the offline demo: a scripted model fixes a bug in a scratch workspace, asks you for one approval and shows the audit entries it left")
	fmt.Fprintln(out, "  q  quit")
	for {
		fmt.Fprint(out, "\nchoice> ")
		line, err := in.ReadString('\n')
		choice := strings.TrimSpace(line)
		if err != nil && choice == "" {
			return false, nil // EOF: nothing chosen
		}
		switch {
		case choice == "o" && len(ollama) > 0:
			if err := appendModelConfig(h, fmt.Sprintf("provider = \"openai\"\nmodel = %q\napi_url = %q\n", ollama[0], llm.OllamaURL+"/v1")); err != nil {
				return false, err
			}
			fmt.Fprintf(out, "Using %s on the local Ollama server.\n", ollama[0])
			return true, nil
		case choice == "k":
			fmt.Fprint(out, "API key> ")
			key, _ := in.ReadString('\n')
			key = strings.TrimSpace(key)
			if key == "" || strings.ContainsAny(key, "\"\\ \t") {
				fmt.Fprintln(out, "That does not look like an API key.")
				continue
			}
			if err := appendModelConfig(h, fmt.Sprintf("provider = \"anthropic\"\napi_key = %q\n", key)); err != nil {
				return false, err
			}
			fmt.Fprintln(out, "Saved. (astrid config show masks it.)")
			return true, nil
		case choice == "d":
			return false, e.runDemo(ctx, h, in)
		case choice == "q":
			return false, nil
		}
		fmt.Fprintln(out, "Please answer with one of the letters above.")
	}
}

// appendModelConfig adds a [model] section to the user's configuration. It
// refuses to touch a configuration that already has one (the user edits
// it then), and keeps the file private.
func appendModelConfig(h home.Dir, body string) error {
	if err := h.Ensure(); err != nil {
		return err
	}
	p := h.ConfigFile()
	old, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, line := range strings.Split(string(old), "\n") {
		if strings.TrimSpace(line) == "[model]" {
			return fmt.Errorf("%s already has a [model] section; edit it there", p)
		}
	}
	next := string(old)
	if next != "" && !strings.HasSuffix(next, "\n") {
		next += "\n"
	}
	next += "\n[model]\n" + body
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(next), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// runDemo runs the bundled replay transcript in a scratch workspace, with
// its own state directory under $ASTRID_HOME/demo so that nothing of the
// user's own state is touched.
func (e *Env) runDemo(ctx context.Context, h home.Dir, in *bufio.Reader) error {
	demoHome := home.Dir(filepath.Join(h.Path(), "demo"))
	if err := demoHome.Ensure(); err != nil {
		return err
	}
	script := filepath.Join(demoHome.Path(), "transcript.jsonl")
	if err := os.WriteFile(script, demoTranscript, 0o600); err != nil {
		return err
	}
	cfg := fmt.Sprintf("[model]\nprovider = \"replay\"\nmodel = \"demo\"\napi_url = %q\n[workspace]\nmode = \"safe\"\n[gateway]\nidle_shutdown_secs = 5\n", "file://"+script)
	if err := os.WriteFile(demoHome.ConfigFile(), []byte(cfg), 0o600); err != nil {
		return err
	}
	ws, err := os.MkdirTemp("", "astrid-demo-")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ws, "greet.go"), []byte(demoSource), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "\nDemo workspace: %s (safe mode: every write asks you)\n\n", ws)
	c, err := client.Connect(ctx, demoHome, client.ConnectOptions{AutoStart: true, FindExe: e.daemonExe})
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.CreateSession(ctx, api.CreateSessionParams{Workspace: ws, Mode: "safe", Title: "offline demo"})
	if err != nil {
		return err
	}
	if err := e.demoTurn(ctx, c, info, "Please fix the greeting in greet.go.", in); err != nil {
		return err
	}
	entries, err := c.SessionAudit(ctx, api.SessionAuditParams{Session: info.ID})
	if err != nil {
		return err
	}
	fmt.Fprintln(e.Stdout, "\nThe audit log of this session:")
	rows := [][]string{{"SEQ", "TYPE", "DECISION", "KIND", "RESOURCE", "PROOF"}}
	for _, a := range entries {
		proof := a.Rule
		for _, p := range []string{a.TokenID, a.AllowanceID, a.Approval} {
			if p != "" {
				proof = strings.TrimPrefix(proof+" "+p, " ")
			}
		}
		rows = append(rows, []string{fmt.Sprint(a.Seq), a.Type, a.Decision + a.Status, a.Kind, a.Resource, proof})
	}
	if err := table(e.Stdout, rows); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "\nVerify it yourself: ASTRID_HOME=%s astrid audit verify\n", demoHome.Path())
	return nil
}

// demoTurn runs one turn in line mode: text is the input, and the user
// answers the approval requests on in (the end of the input denies).
func (e *Env) demoTurn(ctx context.Context, c *client.Client, info api.SessionInfo, text string, in io.Reader) error {
	if _, err := c.Subscribe(ctx, info.ID); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "you: %s\n\n", text)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	opts := lineui.Options{Client: c, Events: c.Events(), Session: info, Turns: 1}
	err := lineui.RunLines(ctx, opts, io.MultiReader(strings.NewReader(text+"\n"), in), e.Stdout)
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("the turn did not finish in 10 minutes")
	}
	return err
}
