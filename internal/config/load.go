package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/astrid-runtime/astrid/internal/home"
)

// Layer names a configuration layer: one of the Layer constants, or
// "env:NAME" for a value taken from the environment variable NAME.
type Layer string

// The layers, lowest first.
const (
	LayerDefault   Layer = "default"
	LayerSystem    Layer = "system"
	LayerUser      Layer = "user"
	LayerWorkspace Layer = "workspace"
)

// DefaultSystemFile is the system layer's path unless LoadOptions names
// another.
const DefaultSystemFile = "/etc/astrid/config.toml"

// defaultsFile is the name errors and LayerInfo use for the embedded
// defaults.
const defaultsFile = "<defaults>"

//go:embed defaults.toml
var defaultsTOML []byte

// DefaultsTOML returns a copy of the embedded defaults layer.
func DefaultsTOML() []byte { return append([]byte(nil), defaultsTOML...) }

// WorkspaceFile returns the workspace layer's path for a workspace root.
func WorkspaceFile(workspace string) string {
	return filepath.Join(workspace, ".astrid", "config.toml")
}

// LoadOptions says where Load finds the layers.
type LoadOptions struct {
	// Home is $ASTRID_HOME; its config.toml is the user layer. Required.
	Home home.Dir
	// Workspace is the workspace root; its .astrid/config.toml is the
	// workspace layer. Empty means no workspace layer.
	Workspace string
	// SystemFile overrides DefaultSystemFile (tests).
	SystemFile string
	// Getenv looks up environment variables for ${VAR} expansion and the
	// provider variables. Nil means an empty environment.
	Getenv func(string) string
}

// LayerInfo describes one layer Load looked at.
type LayerInfo struct {
	Name Layer
	// Path is the file, or "<defaults>" for the embedded defaults.
	Path string
	// Exists reports whether the file was there (always true for defaults).
	Exists bool
}

// Resolved is the merged configuration and where each value came from.
type Resolved struct {
	// Config is the merged, validated configuration.
	Config *Config
	// Origins maps every leaf key (dotted, quoted like a TOML key:
	// `model.pricing."gpt-4.1".input_per_mtok`) to the layer that set its
	// final value. Lists and string maps are leaves.
	Origins map[string]Layer
	// Layers lists the layers in order: default, system, user, then
	// workspace when LoadOptions.Workspace was set.
	Layers []LayerInfo
}

// LayerPath returns the file of a layer, or "" for environment layers and
// layers Load did not look at.
func (r *Resolved) LayerPath(l Layer) string {
	for _, li := range r.Layers {
		if li.Name == l {
			return li.Path
		}
	}
	return ""
}

// Paths lists the layers Load would read for opts, in order, with whether
// each file exists. It reads no file, so it works when the configuration
// is invalid.
func Paths(opts LoadOptions) ([]LayerInfo, error) {
	files, err := layerFiles(opts)
	if err != nil {
		return nil, err
	}
	out := []LayerInfo{{Name: LayerDefault, Path: defaultsFile, Exists: true}}
	for _, f := range files {
		_, err := os.Stat(f.path)
		out = append(out, LayerInfo{Name: f.layer, Path: f.path, Exists: err == nil})
	}
	return out, nil
}

type layerFile struct {
	layer Layer
	path  string
}

// layerFiles names the system, user and (when set) workspace files.
func layerFiles(opts LoadOptions) ([]layerFile, error) {
	if opts.Home == "" {
		return nil, errors.New("config: LoadOptions.Home is required")
	}
	system := opts.SystemFile
	if system == "" {
		system = DefaultSystemFile
	}
	files := []layerFile{{LayerSystem, system}, {LayerUser, opts.Home.ConfigFile()}}
	if opts.Workspace != "" {
		ws, err := filepath.Abs(opts.Workspace)
		if err != nil {
			return nil, fmt.Errorf("config: workspace %q: %w", opts.Workspace, err)
		}
		files = append(files, layerFile{LayerWorkspace, WorkspaceFile(ws)})
	}
	return files, nil
}

// Load reads the layers named by opts, merges and validates them. When the
// configuration is invalid it returns a nil *Resolved and an Errors listing
// every problem found; other errors (an unreadable file) are reported the
// same way, as a FieldError naming the file. A missing system, user or
// workspace file is not an error.
func Load(opts LoadOptions) (*Resolved, error) {
	files, err := layerFiles(opts)
	if err != nil {
		return nil, err
	}
	sources := []source{{layer: LayerDefault, file: defaultsFile, data: defaultsTOML, exists: true}}
	var readErrs errorList
	for _, f := range files {
		data, exists, err := readLayer(f.path)
		if err != nil {
			readErrs.add(f.path, Pos{}, "", "%v", err)
		}
		sources = append(sources, source{layer: f.layer, file: f.path, data: data, exists: exists && err == nil})
	}
	res, err := resolve(sources, opts.Getenv)
	if len(readErrs.errs) > 0 {
		// NOTE: an unreadable layer is an error, never skipped: skipping a
		// workspace file would drop its restrictions.
		all := readErrs.errs
		var es Errors
		if errors.As(err, &es) {
			all = append(all, es...)
		}
		return nil, all
	}
	return res, err
}

// readLayer reads one layer file, bounded by maxFileSize. A missing file is
// not an error; anything else that is not a readable regular file is.
func readLayer(path string) (data []byte, exists bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, true, err
	}
	if !fi.Mode().IsRegular() {
		return nil, true, errors.New("not a regular file")
	}
	data, err = io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, true, err
	}
	return data, true, nil
}
