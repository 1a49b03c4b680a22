package capsulepkg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Compile builds the Go capsule in dir for GOOS=wasip1 GOARCH=wasm with
// -buildmode=c-shared into the manifest's component entrypoint, and
// writes the module's hash into the manifest. goTool is the go command
// ("go" finds it on PATH). It returns the hash.
func Compile(ctx context.Context, dir, goTool string) (string, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := ReadBounded(path, MaxManifestSize)
	if err != nil {
		return "", err
	}
	man, err := ParseManifest(path, data)
	if err != nil {
		return "", err
	}
	if man.Component == nil {
		return "", fmt.Errorf("%s has no [component] to build", path)
	}
	out := filepath.Join(dir, filepath.FromSlash(man.Component.Entrypoint))
	cmd := exec.CommandContext(ctx, goTool, "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	wasm, err := ReadBounded(out, MaxModuleSize)
	if err != nil {
		return "", err
	}
	hash := Hash(wasm)
	updated, err := SetManifestHash(path, data, hash)
	if err != nil {
		return "", err
	}
	return hash, writeFileMode(path, updated, 0o644)
}

// SetManifestHash returns the manifest data with [component] hash set to
// hash: the existing hash line is replaced, or a line is added after the
// entrypoint. The result is parsed again to make sure it says what was
// meant.
func SetManifestHash(file string, data []byte, hash string) ([]byte, error) {
	if !hashRE.MatchString(hash) {
		return nil, fmt.Errorf("invalid hash %q", hash)
	}
	if _, err := ParseManifest(file, data); err != nil {
		return nil, err
	}
	pos := keyPositions(data)
	lines := bytes.SplitAfter(data, []byte("\n"))
	line := fmt.Appendf(nil, "hash = %q\n", hash)
	if p, ok := pos["component.hash"]; ok {
		lines[p[0]-1] = line
	} else if p, ok := pos["component.entrypoint"]; ok {
		i := p[0]
		lines = append(lines[:i], append([][]byte{line}, lines[i:]...)...)
	} else {
		return nil, fmt.Errorf("%s: no [component] entrypoint", file)
	}
	out := bytes.Join(lines, nil)
	m, err := ParseManifest(file, out)
	if err != nil {
		return nil, fmt.Errorf("writing the hash broke the manifest (is the hash on a line of its own?): %w", err)
	}
	if m.Component.Hash != hash {
		return nil, fmt.Errorf("%s: could not set the hash (is it on a line of its own?)", file)
	}
	return out, nil
}
