package capsule

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"

	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/sdk"
)

// BenchmarkColdLoad measures a cold start of the example capsule: a new
// runtime, compiling notes.wasm (or reading it from a warm compilation
// cache), and the first instance (_initialize).
func BenchmarkColdLoad(b *testing.B) {
	wasm, err := os.ReadFile(notesWasm)
	if err != nil {
		b.Fatal(err)
	}
	hash := capsulepkg.Hash(wasm)
	ctx := context.Background()
	cacheDir := b.TempDir()
	load := func(b *testing.B, dir string) {
		h := newHostFuncs(&Manager{log: slog.New(slog.DiscardHandler)})
		eng, err := newEngine(ctx, Limits{}, dir, h, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		defer eng.close(ctx)
		cm, err := eng.compile(ctx, wasm, hash)
		if err != nil {
			b.Fatal(err)
		}
		inst, err := eng.instantiate(ctx, cm, "notes")
		if err != nil {
			b.Fatal(err)
		}
		inst.close(ctx)
	}
	b.Run("no_cache", func(b *testing.B) {
		for b.Loop() {
			load(b, "")
		}
	})
	load(b, cacheDir) // warm the cache
	b.Run("cache", func(b *testing.B) {
		for b.Loop() {
			load(b, cacheDir)
		}
	})
}

// BenchmarkHostCall measures one host-function round trip (config_get,
// not gated) from inside a tool call that makes b.N of them.
func BenchmarkHostCall(b *testing.B) {
	e := newEnv(b, envOptions{})
	e.install(hostileDir(e, "hostile", "example.com"), capsulepkg.InstallOptions{})
	e.ok("echo", map[string]string{"text": "warm"})
	b.ResetTimer()
	for left := b.N; left > 0; left -= 50_000 {
		e.ok("config_loop", map[string]int{"n": min(left, 50_000)})
	}
}

// BenchmarkHostCallGated measures one kv_set round trip: the grant check,
// the interceptor (token, budget, two audit appends) and the store.
func BenchmarkHostCallGated(b *testing.B) {
	e := newEnv(b, envOptions{})
	e.install(hostileDir(e, "hostile", "example.com"), capsulepkg.InstallOptions{})
	e.ok("echo", map[string]string{"text": "warm"})
	b.ResetTimer()
	for left := b.N; left > 0; left -= 50_000 {
		e.ok("kv_loop", map[string]int{"n": min(left, 50_000)})
	}
}

// BenchmarkToolCall measures one tool call into a capsule through the
// registry and the interceptor (echo), and the same call without the
// interceptor (raw).
func BenchmarkToolCall(b *testing.B) {
	e := newEnv(b, envOptions{})
	c := e.install(hostileDir(e, "hostile", "example.com"), capsulepkg.InstallOptions{})
	e.ok("echo", map[string]string{"text": "warm"})
	b.Run("registry", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			e.ok("echo", map[string]string{"text": strconv.Itoa(i)})
		}
	})
	b.Run("raw", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := c.call(ctx, e.sess, sdk.KindTool, "echo", []byte(`{"text":"x"}`)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
