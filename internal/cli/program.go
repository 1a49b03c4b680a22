package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// TUIName is the executable of the terminal chat UI: the astrid command
// line with package tui linked in (cmd/astrid-tui). The astrid CLI execs
// it for `astrid chat` on a terminal, so that it never links Bubble Tea,
// glamour or chroma itself.
const TUIName = "astrid-tui"

// TUIExeVar names the environment variable that points the CLI at an
// astrid-tui executable; by default it is the one next to astrid, else on
// PATH, else (for `go run ./cmd/astrid chat`) one built from the source.
const TUIExeVar = "ASTRID_TUI_EXE"

// modulePath is this module's path, as go.mod and the build info name it.
const modulePath = "github.com/astrid-runtime/astrid"

// programFinder finds a companion executable of astrid. Its fields are the
// outside world, so that tests can replace each.
type programFinder struct {
	getenv     func(string) string
	executable func() (string, error)
	lookPath   func(string) (string, error)
	buildInfo  func() (*debug.BuildInfo, bool)
	// sourceFile is a file of this package as compiled: its module root
	// holds the source when astrid was built from a checkout.
	sourceFile string
	// wd is the working directory, the other place to look for the source.
	wd string
	// binDir caches the executables built from the source.
	binDir string
	// build runs `go build -o out ./cmd/NAME` in root.
	build func(ctx context.Context, goTool, root, pkg, out string) error
	// note prints one line saying what is happening.
	note io.Writer
}

// newProgramFinder returns the finder of a command's environment.
func (e *Env) newProgramFinder() programFinder {
	_, file, _, _ := runtime.Caller(0)
	f := programFinder{
		getenv: e.Getenv, executable: os.Executable, lookPath: exec.LookPath, buildInfo: debug.ReadBuildInfo,
		sourceFile: file, wd: e.Dir, build: goBuild, note: e.Stderr,
	}
	if h, err := e.home(); err == nil {
		f.binDir = filepath.Join(h.Path(), "bin")
	}
	return f
}

// find returns the path of the executable name: the one envVar names,
// else the one next to the running executable, else the one on PATH, else,
// when this astrid was built from this module's source (`go run`) and the
// source and a go toolchain are at hand, one built from that source once
// and cached under binDir. The error says what was tried.
func (f programFinder) find(ctx context.Context, name, envVar string) (string, error) {
	if p := f.getenv(envVar); p != "" {
		return p, nil
	}
	if self, err := f.executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if isExecutable(p) {
			return p, nil
		}
	}
	if p, err := f.lookPath(name); err == nil {
		return p, nil
	}
	p, err := f.buildFromSource(ctx, name)
	if err != nil {
		return "", fmt.Errorf("%s is neither next to this program nor on PATH (%s), and %w", name, envVar, err)
	}
	return p, nil
}

// buildFromSource builds cmd/name from the source astrid was built from,
// or returns the copy built before from the same source.
func (f programFinder) buildFromSource(ctx context.Context, name string) (string, error) {
	bi, ok := f.buildInfo()
	if !ok || bi.Main.Path != modulePath || bi.Main.Version != "(devel)" {
		return "", errors.New("this astrid was not built from a source checkout, so it cannot build it")
	}
	if f.binDir == "" {
		return "", errors.New("there is no $ASTRID_HOME to keep a built copy in")
	}
	root := f.moduleRoot()
	if root == "" {
		return "", fmt.Errorf("the source of %s was not found (run it from the checkout)", modulePath)
	}
	goTool, err := f.lookPath("go")
	if err != nil {
		return "", errors.New("no go toolchain on PATH to build it from the source")
	}
	key, err := sourceKey(bi, root)
	if err != nil {
		return "", fmt.Errorf("reading the source: %w", err)
	}
	out := filepath.Join(f.binDir, name+"-"+key)
	if isExecutable(out) {
		return out, nil
	}
	if err := os.MkdirAll(f.binDir, 0o700); err != nil {
		return "", err
	}
	fmt.Fprintf(f.note, "astrid: building %s from the source in %s (once; kept in %s)\n", name, root, f.binDir)
	tmp := out + ".tmp" + strconv.Itoa(os.Getpid())
	if err := f.build(ctx, goTool, root, "./cmd/"+name, tmp); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("building it failed: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	// Copies built from older source are of no use any more.
	old, _ := filepath.Glob(filepath.Join(f.binDir, name+"-*"))
	for _, o := range old {
		if o != out && !strings.Contains(filepath.Base(o), ".tmp") {
			_ = os.Remove(o)
		}
	}
	return out, nil
}

// moduleRoot finds the checkout astrid was built from: the module root of
// this package's source file, else the working directory's module, if its
// go.mod names this module.
func (f programFinder) moduleRoot() string {
	var starts []string
	if filepath.IsAbs(f.sourceFile) {
		starts = append(starts, filepath.Dir(f.sourceFile))
	}
	if f.wd != "" {
		starts = append(starts, f.wd)
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if isModule(filepath.Join(d, "go.mod")) {
				return d
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return ""
}

// isModule reports whether the go.mod at p declares this module.
func isModule(p string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) == 2 && fs[0] == "module" {
			return strings.Trim(fs[1], `"`) == modulePath
		}
	}
	return false
}

// sourceKey names a build of root's source: the VCS revision when the
// build recorded a clean one, else a hash of the path, size and
// modification time of every file a build could read (.git, .ci and
// testdata left out), so any edit gives a new key.
func sourceKey(bi *debug.BuildInfo, root string) (string, error) {
	var rev string
	modified := true
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" && !modified {
		return "rev-" + rev[:min(len(rev), 12)], nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s/%s\x00", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, "_test.go") || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", rel, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", err
	}
	return "src-" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// goBuild runs `go build -o out pkg` in root.
func goBuild(ctx context.Context, goTool, root, pkg, out string) error {
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, pkg)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(b))
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return fmt.Errorf("%w: %s", err, msg)
	}
	return nil
}

// isExecutable reports whether p is a regular file someone may execute.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
