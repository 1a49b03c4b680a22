package config

import (
	"errors"
	"testing"
)

// Test file names for the layers.
const (
	sysFile  = "/etc/astrid/config.toml"
	userFile = "/home/u/.astrid/config.toml"
	wsFile   = "/repo/.astrid/config.toml"
)

// layers is the input of a resolve call in tests: file contents by layer
// (absent layers do not exist) and the environment.
type layers struct {
	system, user, workspace *string
	env                     map[string]string
}

func s(v string) *string { return &v }

// run resolves the layers over the embedded defaults.
func (l layers) run(t *testing.T) (*Resolved, Errors) {
	t.Helper()
	srcs := []source{{layer: LayerDefault, file: defaultsFile, data: defaultsTOML, exists: true}}
	add := func(layer Layer, file string, data *string) {
		if data == nil {
			srcs = append(srcs, source{layer: layer, file: file})
			return
		}
		srcs = append(srcs, source{layer: layer, file: file, data: []byte(*data), exists: true})
	}
	add(LayerSystem, sysFile, l.system)
	add(LayerUser, userFile, l.user)
	add(LayerWorkspace, wsFile, l.workspace)
	res, err := resolve(srcs, func(k string) string { return l.env[k] })
	if err == nil {
		if res == nil || res.Config == nil {
			t.Fatal("resolve returned neither a config nor an error")
		}
		return res, nil
	}
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("resolve error is %T %v, want a non-empty Errors", err, err)
	}
	if res != nil {
		t.Fatal("resolve returned a config along with errors")
	}
	return nil, es
}

// mustRun resolves and fails the test on any error.
func (l layers) mustRun(t *testing.T) *Resolved {
	t.Helper()
	res, errs := l.run(t)
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	return res
}

// defaultConfig is the configuration of the embedded defaults alone.
func defaultConfig(t *testing.T) *Config {
	t.Helper()
	return layers{}.mustRun(t).Config
}
