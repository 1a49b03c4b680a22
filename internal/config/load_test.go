package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/home"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	h := home.Dir(filepath.Join(dir, "home"))
	sys := filepath.Join(dir, "etc", "config.toml")
	ws := filepath.Join(dir, "repo")
	writeFile(t, sys, "[logging]\nlevel = \"debug\"\n")
	writeFile(t, h.ConfigFile(), "[model]\napi_url = \"https://${HOST}\"\n")
	writeFile(t, WorkspaceFile(ws), "[workspace]\nescape_policy = \"deny\"\n")
	env := map[string]string{"HOST": "proxy.example", "ANTHROPIC_API_KEY": "sk-ant-x"}

	res, err := Load(LoadOptions{Home: h, Workspace: ws, SystemFile: sys, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Config
	if c.Logging.Level != "debug" || c.Model.APIURL != "https://proxy.example" || c.Workspace.EscapePolicy != "deny" || c.Model.APIKey != "sk-ant-x" {
		t.Errorf("config: logging %+v, model %+v, workspace %+v", c.Logging, c.Model, c.Workspace)
	}
	want := []LayerInfo{
		{Name: LayerDefault, Path: defaultsFile, Exists: true},
		{Name: LayerSystem, Path: sys, Exists: true},
		{Name: LayerUser, Path: h.ConfigFile(), Exists: true},
		{Name: LayerWorkspace, Path: WorkspaceFile(ws), Exists: true},
	}
	if diff := cmp.Diff(want, res.Layers); diff != "" {
		t.Errorf("layers (-want +got):\n%s", diff)
	}
	if got := res.LayerPath(LayerUser); got != h.ConfigFile() {
		t.Errorf("LayerPath(user) = %q", got)
	}

	// Missing files are skipped; no workspace means three layers.
	res, err = Load(LoadOptions{Home: home.Dir(filepath.Join(dir, "nohome")), SystemFile: filepath.Join(dir, "none.toml")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Layers) != 3 || res.Layers[1].Exists || res.Layers[2].Exists {
		t.Errorf("layers %+v", res.Layers)
	}
	if diff := cmp.Diff(defaultConfig(t), res.Config); diff != "" {
		t.Errorf("config without files differs from the defaults:\n%s", diff)
	}
}

func TestLoadUnreadableLayerIsAnError(t *testing.T) {
	dir := t.TempDir()
	h := home.Dir(filepath.Join(dir, "home"))
	ws := filepath.Join(dir, "repo")
	// A directory where the workspace file should be: skipping it would
	// silently drop the workspace's restrictions.
	if err := os.MkdirAll(WorkspaceFile(ws), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, h.ConfigFile(), "bogus = 1\n")
	_, err := Load(LoadOptions{Home: h, Workspace: ws, SystemFile: filepath.Join(dir, "none")})
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("err = %v, want two errors", err)
	}
	if es[0].File != WorkspaceFile(ws) || !strings.Contains(es[0].Msg, "not a regular file") {
		t.Errorf("first error %v", es[0])
	}
	if es[1].Key != "bogus" {
		t.Errorf("second error %v", es[1])
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Error("errors.As cannot find a *FieldError")
	}
	if _, err := Load(LoadOptions{}); err == nil {
		t.Error("Load without Home succeeded")
	}
}

func TestPaths(t *testing.T) {
	dir := t.TempDir()
	h := home.Dir(filepath.Join(dir, "home"))
	writeFile(t, h.ConfigFile(), "not toml at all [\n")
	got, err := Paths(LoadOptions{Home: h, Workspace: filepath.Join(dir, "ws"), SystemFile: filepath.Join(dir, "sys.toml")})
	if err != nil {
		t.Fatal(err)
	}
	want := []LayerInfo{
		{Name: LayerDefault, Path: defaultsFile, Exists: true},
		{Name: LayerSystem, Path: filepath.Join(dir, "sys.toml")},
		{Name: LayerUser, Path: h.ConfigFile(), Exists: true},
		{Name: LayerWorkspace, Path: filepath.Join(dir, "ws", ".astrid", "config.toml")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
