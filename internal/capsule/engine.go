package capsule

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/sdk"
)

// Hard ceilings; the configuration can only lower them.
const (
	MaxMemoryMB = 64
	MaxTimeout  = 30 * time.Second
)

// Limits bound what a capsule's code may use.
type Limits struct {
	// MaxMemoryMB caps each instance's linear memory; 0 or more than
	// MaxMemoryMB means MaxMemoryMB.
	MaxMemoryMB int
	// Timeout bounds one call into a capsule (a tool call, a cron run, a
	// hook); 0 or more than MaxTimeout means MaxTimeout.
	Timeout time.Duration
	// AllowUnhashed loads components whose manifest pins no hash. Only the
	// user configuration can set it.
	AllowUnhashed bool
}

func (l Limits) withDefaults() Limits {
	if l.MaxMemoryMB <= 0 || l.MaxMemoryMB > MaxMemoryMB {
		l.MaxMemoryMB = MaxMemoryMB
	}
	if l.Timeout <= 0 || l.Timeout > MaxTimeout {
		l.Timeout = MaxTimeout
	}
	return l
}

// engine is one wazero runtime with the host module; every capsule of a
// Manager is compiled and instantiated in it. It is safe for concurrent
// use.
type engine struct {
	rt     wazero.Runtime
	limits Limits
	log    *slog.Logger
	seq    atomic.Uint64
	host   *hostFuncs
}

// newEngine creates the runtime: memory capped at limits.MaxMemoryMB, a
// call's context ending closes the module (so an infinite loop stops at
// the deadline), an optional on-disk compilation cache.
func newEngine(ctx context.Context, limits Limits, cacheDir string, h *hostFuncs, lg *slog.Logger) (*engine, error) {
	limits = limits.withDefaults()
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(uint32(limits.MaxMemoryMB) * 16). // 64 KiB pages
		WithDebugInfoEnabled(false)
	if cacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
		if err != nil {
			return nil, fmt.Errorf("capsule: compilation cache: %w", err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	b := rt.NewHostModuleBuilder(sdk.HostModule)
	i32 := api.ValueTypeI32
	params := []api.ValueType{i32, i32, i32, i32, i32, i32}
	for _, name := range sdk.HostFunctions {
		fn, ok := h.funcs[name]
		if !ok {
			_ = rt.Close(ctx)
			return nil, fmt.Errorf("capsule: host function %s has no implementation", name)
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(h.adapt(name, fn), params, []api.ValueType{api.ValueTypeI64}).
			WithParameterNames("a_ptr", "a_len", "b_ptr", "b_len", "out_ptr", "out_cap").
			Export(name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	return &engine{rt: rt, limits: limits, log: lg, host: h}, nil
}

func (e *engine) close(ctx context.Context) error { return e.rt.Close(ctx) }

// compile checks the module's hash, compiles it and checks it follows the
// ABI: it exports memory, _initialize, astrid_alloc, astrid_call and
// astrid_abi_v1, and imports only Astrid host functions and WASI.
func (e *engine) compile(ctx context.Context, wasm []byte, hash string) (wazero.CompiledModule, error) {
	if err := capsulepkg.VerifyHash(wasm, hash, e.limits.AllowUnhashed); err != nil {
		return nil, err
	}
	if err := capsulepkg.CheckModule(wasm); err != nil {
		return nil, err
	}
	cm, err := e.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", capsulepkg.ErrBadModule, err)
	}
	return cm, nil
}

// instance is one instantiated module. It is used by one call at a time
// (Capsule.mu).
type instance struct {
	mod   api.Module
	alloc api.Function
	call  api.Function
}

// instantiate creates a fresh instance: no files, no arguments, no
// environment; stdout and stderr go to the log, bounded. _initialize runs
// within the call timeout.
func (e *engine) instantiate(ctx context.Context, cm wazero.CompiledModule, id string) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, e.limits.Timeout)
	defer cancel()
	w := &logWriter{log: e.log, id: id, left: 64 << 10}
	cfg := wazero.NewModuleConfig().
		WithName(id + "#" + strconv.FormatUint(e.seq.Add(1), 10)).
		WithStartFunctions("_initialize").
		WithStdout(w).WithStderr(w).
		WithSysWalltime().WithSysNanotime().
		WithRandSource(rand.Reader)
	mod, err := e.rt.InstantiateModule(ctx, cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("capsule %s: start: %w", id, describeExit(err, e.limits))
	}
	inst := &instance{mod: mod, alloc: mod.ExportedFunction(sdk.ExportAlloc), call: mod.ExportedFunction(sdk.ExportCall)}
	abi := mod.ExportedFunction(sdk.ExportABI)
	res, err := abi.Call(ctx)
	if err != nil || len(res) != 1 || res[0] != sdk.ABIVersion {
		_ = mod.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%w: capsule %s speaks another ABI version", capsulepkg.ErrBadModule, id)
	}
	return inst, nil
}

func (i *instance) close(ctx context.Context) { _ = i.mod.Close(context.WithoutCancel(ctx)) }

// describeExit turns wazero's exit errors into messages that name the
// limit that stopped the capsule.
func describeExit(err error, l Limits) error {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("stopped: the call ran longer than %s", l.Timeout)
		case sys.ExitCodeContextCanceled:
			return errors.New("stopped: the call was cancelled")
		}
		return fmt.Errorf("the capsule exited with code %d", ee.ExitCode())
	}
	msg := err.Error()
	if first, _, ok := strings.Cut(msg, "\n"); ok && strings.HasPrefix(msg, "wasm error:") {
		// A trap: keep the cause, drop wazero's stack trace.
		return fmt.Errorf("the capsule trapped (%s); a Go capsule traps when it panics or runs out of its %d MiB of memory", first, l.MaxMemoryMB)
	}
	return err
}

// logWriter sends a capsule's stdout and stderr to the log, up to left
// bytes per instance.
type logWriter struct {
	log  *slog.Logger
	id   string
	left int
}

func (w *logWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.left <= 0 {
		return n, nil
	}
	if len(p) > w.left {
		p = p[:w.left]
	}
	w.left -= len(p)
	w.log.Info("capsule output", "capsule", w.id, "text", string(p))
	return n, nil
}

var _ io.Writer = (*logWriter)(nil)
