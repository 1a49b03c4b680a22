package capsulepkg

import (
	"errors"
	"strings"
	"testing"
)

// module assembles a WebAssembly binary from sections (id, content).
func module(sections ...[]byte) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		out = append(out, s[0])
		out = appendU32(out, uint32(len(s)-1))
		out = append(out, s[1:]...)
	}
	return out
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func vecOf(items ...[]byte) []byte {
	out := appendU32(nil, uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func wname(s string) []byte { return append(appendU32(nil, uint32(len(s))), s...) }

func importFunc(mod, name string) []byte {
	return append(append(wname(mod), wname(name)...), 0, 0)
}

func export(name string, kind byte) []byte { return append(wname(name), kind, 0) }

func goodExports(skip string) []byte {
	var items [][]byte
	for _, n := range []string{"_initialize", "astrid_alloc", "astrid_call", "astrid_abi_v1"} {
		if n != skip {
			items = append(items, export(n, 0))
		}
	}
	if skip != "memory" {
		items = append(items, export("memory", 2))
	}
	return append([]byte{7}, vecOf(items...)...)
}

func TestCheckModule(t *testing.T) {
	imports := func(items ...[]byte) []byte { return append([]byte{2}, vecOf(items...)...) }
	memImport := append(append(wname("wasi_snapshot_preview1"), wname("mem")...), 2, 1, 1, 2)
	ok := module(imports(importFunc("astrid", "kv_get"), importFunc("wasi_snapshot_preview1", "fd_write"), memImport), goodExports(""))
	if err := CheckModule(ok); err != nil {
		t.Fatalf("good module: %v", err)
	}
	for name, tc := range map[string]struct {
		wasm []byte
		want string
	}{
		"not wasm":          {[]byte("#!/bin/sh\n"), "not a WebAssembly binary"},
		"version 2":         {append([]byte("\x00asm\x02\x00\x00\x00"), 0), "version"},
		"no alloc":          {module(goodExports("astrid_alloc")), "no export astrid_alloc"},
		"no memory":         {module(goodExports("memory")), "no exported memory"},
		"unknown host fn":   {module(imports(importFunc("astrid", "spawn_shell")), goodExports("")), "unknown host function astrid.spawn_shell"},
		"foreign module":    {module(imports(importFunc("env", "system")), goodExports("")), "imports env.system"},
		"truncated section": {append(module(goodExports("")), 7, 0x7f), "truncated section"},
		"bad name length":   {module([]byte{2, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}), "section 2"},
		"overlong number":   {module([]byte{7, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}), "section 7"},
	} {
		err := CheckModule(tc.wasm)
		if !errors.Is(err, ErrBadModule) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func FuzzCheckModule(f *testing.F) {
	f.Add(module(goodExports("")))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x05\x01\x01a\x01b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = CheckModule(b) // must not panic or hang
	})
}
