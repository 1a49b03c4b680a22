package capsule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/astrid-runtime/astrid/internal/approval"
	"github.com/astrid-runtime/astrid/internal/audit"
	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/core"
	"github.com/astrid-runtime/astrid/internal/home"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/internal/store"
	"github.com/astrid-runtime/astrid/internal/tools"
)

// The test capsules, built once by TestMain with the standard Go
// toolchain for GOOS=wasip1 and cached across runs in the system temp
// directory under a hash of their sources.
var (
	notesWasm   string // examples/notes
	hostileWasm string // testdata/hostile
	// compileCache is wazero's compilation cache shared by the tests
	// (compiling a Go module takes seconds, much more under -race).
	compileCache string
)

var _ KV = store.CapsuleKV{}

func TestMain(m *testing.M) {
	if err := buildCapsules(); err != nil {
		fmt.Fprintln(os.Stderr, "building the test capsules:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

func buildCapsules() error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version())
	for _, dir := range []string{"sdk", "examples/notes", "internal/capsule/testdata/hostile", "go.mod"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "go.mod")) {
				return err
			}
			b, err := os.ReadFile(p)
			fmt.Fprintf(h, "%s %d\n", p, len(b))
			h.Write(b)
			return err
		})
		if err != nil {
			return err
		}
	}
	cache := filepath.Join(os.TempDir(), "astrid-capsule-test", hex.EncodeToString(h.Sum(nil))[:16])
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	compileCache = filepath.Join(cache, "wazero")
	notesWasm = filepath.Join(cache, "notes.wasm")
	hostileWasm = filepath.Join(cache, "hostile.wasm")
	for out, pkg := range map[string]string{notesWasm: "./examples/notes", hostileWasm: "./internal/capsule/testdata/hostile"} {
		if _, err := os.Stat(out); err == nil {
			continue
		}
		tmp := out + ".tmp"
		cmd := exec.Command(goTool(), "build", "-buildmode=c-shared", "-o", tmp, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
		if err := os.Rename(tmp, out); err != nil {
			return err
		}
	}
	return nil
}

// goTool is the go command: $GOROOT/bin/go of the toolchain running the
// tests (go test sets GOROOT), else the one on PATH.
func goTool() string {
	if r := os.Getenv("GOROOT"); r != "" {
		if p := filepath.Join(r, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// env is the real wiring: core.Open over a temporary $ASTRID_HOME, a
// workspace, a tools registry, and a Manager.
//
//	dir/user/.astrid   ASTRID_HOME
//	dir/user/proj      the workspace
//	dir/outside        outside the workspace
type env struct {
	t       testing.TB
	dir     string
	home    string
	ws      string
	outside string
	core    *core.Core
	reg     *tools.Registry
	m       *Manager
	sess    security.Session
	o       envOptions

	mu    sync.Mutex
	asked []approval.Request
}

// sub runs f as subtest name of e's test, with e's helpers reporting to
// the subtest (a helper's Fatal must stop the subtest's goroutine, not
// fail its parent from it). Subtests run one at a time.
func (e *env) sub(name string, f func(t *testing.T)) {
	parent := e.t
	parent.(*testing.T).Run(name, func(t *testing.T) {
		e.t = t
		defer func() { e.t = parent }()
		f(t)
	})
}

// newManager returns a Manager over e's state (closed at the end of the
// test), as a daemon (re)started over the same $ASTRID_HOME would have.
func (e *env) newManager() *Manager {
	t := e.t
	t.Helper()
	e.reg = tools.New(tools.Options{})
	sealer, err := capsulepkg.OpenSealer(filepath.Join(e.home, "keys", capsulepkg.SecretKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cache := compileCache
	if e.o.noCache {
		cache = ""
	}
	m, err := New(context.Background(), Options{
		Home:        e.home,
		Sealer:      sealer,
		Interceptor: e.core.Interceptor,
		Audit:       e.core.Audit,
		Tokens:      e.core.Tokens,
		KV:          store.CapsuleKV{DB: e.core.DB},
		Deferred:    e.core.DB.Deferred(),
		Tools:       e.reg,
		Limits:      e.o.limits,
		CacheDir:    cache,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return m
}

type envOptions struct {
	config  string // extra user config.toml
	limits  Limits
	noCache bool // compile without the shared compilation cache
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, home: filepath.Join(dir, "user", ".astrid"), ws: filepath.Join(dir, "user", "proj"), outside: filepath.Join(dir, "outside")}
	for _, d := range []string{e.ws, e.outside, e.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := "[workspace]\nmode = \"autonomous\"\n" + o.config
	if err := os.WriteFile(filepath.Join(e.home, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"ASTRID_HOME": e.home, "HOME": filepath.Join(dir, "user")}
	e.core, err = core.Open(context.Background(), core.Options{
		Home:             home.Dir(e.home),
		Getenv:           func(k string) string { return vars[k] },
		SystemConfigFile: filepath.Join(dir, "no-system-config.toml"),
		Sync:             store.SyncNormal,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.core.Close() })
	e.o = o
	e.m = e.newManager()
	// A human who allows whatever reaches approval; policy still refuses
	// what it refuses.
	e.sess = security.Session{ID: "s1", Principal: "tester", Frontend: "test", Workspace: e.ws, Mode: security.Autonomous,
		Asker: approval.AskerFunc(func(_ context.Context, r approval.Request) (approval.Answer, error) {
			e.mu.Lock()
			e.asked = append(e.asked, r)
			e.mu.Unlock()
			return approval.Answer{Decision: approval.AllowOnce, By: "tester"}, nil
		})}
	return e
}

// capsuleDir writes a capsule directory: manifest (with {{hash}} replaced
// by the module's hash) and the module copied from wasm.
func (e *env) capsuleDir(name, manifest, wasm string) string {
	e.t.Helper()
	dir := filepath.Join(e.dir, "src", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	b, err := os.ReadFile(wasm)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".wasm"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	manifest = strings.ReplaceAll(manifest, "{{hash}}", capsulepkg.Hash(b))
	manifest = strings.ReplaceAll(manifest, "{{name}}", name)
	if err := os.WriteFile(filepath.Join(dir, capsulepkg.ManifestFile), []byte(manifest), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

func yes(*capsulepkg.Manifest) (bool, error) { return true, nil }

// install installs and loads a capsule.
func (e *env) install(src string, o capsulepkg.InstallOptions) *Capsule {
	e.t.Helper()
	if o.Approve == nil {
		o.Approve = yes
	}
	in, err := e.m.Install(context.Background(), src, o)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.m.Load(context.Background(), in.Manifest.Package.Name); err != nil {
		e.t.Fatal(err)
	}
	c, _ := e.m.Capsule(in.Manifest.Package.Name)
	return c
}

// run calls a tool through the registry and the interceptor.
func (e *env) run(name string, args any) tools.Result {
	e.t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.reg.Run(context.Background(), e.core.Interceptor, e.sess, name, raw)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	return res
}

func (e *env) ok(name string, args any) string {
	e.t.Helper()
	res := e.run(name, args)
	if res.IsError {
		e.t.Fatalf("%s %v: %s", name, args, res.Text)
	}
	return res.Text
}

func (e *env) fail(name string, args any) string {
	e.t.Helper()
	res := e.run(name, args)
	if !res.IsError {
		e.t.Fatalf("%s %v: want an error, got %s", name, args, res.Text)
	}
	return res.Text
}

// entries returns the audit entries with Seq > since.
func (e *env) entries(since int64) []audit.Entry {
	e.t.Helper()
	rows, err := e.core.DB.Audit().ReadEntries(context.Background(), since+1, 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]audit.Entry, 0, len(rows))
	for _, r := range rows {
		en, err := audit.Decode(r.Data)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, *en)
	}
	return out
}

// lastSeq is the sequence number of the newest audit entry (-1 for none).
func (e *env) lastSeq() int64 {
	e.t.Helper()
	all := e.entries(-1)
	if len(all) == 0 {
		return -1
	}
	return all[len(all)-1].Seq
}

// denied finds a denial entry for resource (substring) and rule since seq.
func (e *env) denied(since int64, resource, rule string) *audit.Entry {
	e.t.Helper()
	for _, en := range e.entries(since) {
		if en.Type == audit.TypeDecision && en.Decision == audit.Denied && strings.Contains(en.Action.Resource, resource) && (rule == "" || en.Proof.Rule == rule) {
			return &en
		}
	}
	return nil
}
