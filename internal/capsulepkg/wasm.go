package capsulepkg

import (
	"errors"
	"fmt"
	"slices"

	"github.com/astrid-runtime/astrid/sdk"
)

// ErrBadModule: the module is not a WebAssembly binary that follows the
// Astrid ABI (exports, imports).
var ErrBadModule = errors.New("capsule: the module does not follow the Astrid ABI")

// wasiModule is the only import module besides sdk.HostModule.
const wasiModule = "wasi_snapshot_preview1"

// CheckModule reads the import and export sections of a WebAssembly
// binary and checks that it follows the Astrid ABI: it exports its memory
// as "memory" and the functions _initialize, astrid_alloc, astrid_call and
// astrid_abi_v1, and imports only Astrid host functions and WASI. It does
// not validate the code; the engine does that when it compiles. Errors
// wrap ErrBadModule.
func CheckModule(wasm []byte) error {
	r := &wasmReader{b: wasm}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return fmt.Errorf("%w: not a WebAssembly binary", ErrBadModule)
	}
	if v := wasm[4:8]; v[0] != 1 || v[1] != 0 || v[2] != 0 || v[3] != 0 {
		return fmt.Errorf("%w: WebAssembly version %v, want 1", ErrBadModule, v)
	}
	r.off = 8
	funcs := map[string]bool{}
	memory := false
	for r.off < len(r.b) {
		id := r.byte()
		size := int(r.u32())
		if r.err != nil || size > len(r.b)-r.off {
			return fmt.Errorf("%w: truncated section at byte %d", ErrBadModule, r.off)
		}
		sec := &wasmReader{b: r.b[r.off : r.off+size], base: r.off}
		r.off += size
		switch id {
		case 2:
			if err := sec.imports(); err != nil {
				return err
			}
		case 7:
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				name, kind := sec.name(), sec.byte()
				sec.u32()
				switch kind {
				case 0:
					funcs[name] = true
				case 2:
					memory = memory || name == "memory"
				}
			}
		}
		if sec.err != nil {
			return fmt.Errorf("%w: section %d: %v", ErrBadModule, id, sec.err)
		}
	}
	for _, name := range []string{"_initialize", sdk.ExportAlloc, sdk.ExportCall, sdk.ExportABI} {
		if !funcs[name] {
			return fmt.Errorf("%w: no export %s (build with -buildmode=c-shared and import the sdk package)", ErrBadModule, name)
		}
	}
	if !memory {
		return fmt.Errorf("%w: no exported memory", ErrBadModule)
	}
	return nil
}

// imports checks the import section.
func (r *wasmReader) imports() error {
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		mod, name, kind := r.name(), r.name(), r.byte()
		switch kind {
		case 0: // function: type index
			r.u32()
		case 1: // table: reference type, limits
			r.byte()
			r.limits()
		case 2: // memory: limits
			r.limits()
		case 3: // global: value type, mutability
			r.byte()
			r.byte()
		case 4: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			return fmt.Errorf("%w: import %s.%s of unknown kind %d", ErrBadModule, mod, name, kind)
		}
		if r.err != nil {
			break
		}
		switch {
		case mod == sdk.HostModule && kind == 0 && slices.Contains(sdk.HostFunctions, name):
		case mod == wasiModule:
		case mod == sdk.HostModule:
			return fmt.Errorf("%w: imports unknown host function %s.%s", ErrBadModule, mod, name)
		default:
			return fmt.Errorf("%w: imports %s.%s", ErrBadModule, mod, name)
		}
	}
	return nil
}

// wasmReader decodes the parts of the binary format CheckModule needs.
// The first error sticks; later reads return zero values.
type wasmReader struct {
	b    []byte
	off  int
	base int // offset of b in the module, for errors
	err  error
}

func (r *wasmReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or malformed %s at byte %d", what, r.base+r.off)
	}
}

func (r *wasmReader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail("byte")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// uleb reads an unsigned LEB128 number of at most bits bits.
func (r *wasmReader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= bits+7 {
			r.fail("number")
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if bits < 64 && v>>bits != 0 {
				r.fail("number")
			}
			return v
		}
	}
}

func (r *wasmReader) u32() uint32 { return uint32(r.uleb(32)) }

func (r *wasmReader) name() string {
	n := int(r.u32())
	if r.err != nil || n > len(r.b)-r.off {
		r.fail("name")
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

// limits reads a table or memory type's limits (memory64 and shared
// flags included).
func (r *wasmReader) limits() {
	flags := r.byte()
	bits := uint(32)
	if flags&4 != 0 {
		bits = 64
	}
	r.uleb(bits)
	if flags&1 != 0 {
		r.uleb(bits)
	}
}
