package capsule

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/astrid-runtime/astrid/sdk"
)

// Bounds of a capsule's key-value store.
const (
	MaxKVKey   = 256
	MaxKVValue = 1 << 20
	// MaxKVBytes bounds the keys and values a capsule stores in total.
	MaxKVBytes = 64 << 20
	// MaxKVKeys bounds the number of keys a capsule stores.
	MaxKVKeys = 100_000
	// maxKVList bounds the keys kv_list returns.
	maxKVList = 1000
)

// KV persists the key-value stores of capsules, one namespace per capsule
// id. store.CapsuleKV implements it over the state database.
// Implementations are safe for concurrent use.
type KV interface {
	// Get returns the value and true, or false when there is none.
	Get(ctx context.Context, capsule, key string) ([]byte, bool, error)
	// Set stores value and returns true, or, atomically, writes nothing
	// and returns false when the write would take the capsule over
	// maxBytes (keys plus values) or maxKeys.
	Set(ctx context.Context, capsule, key string, value []byte, maxBytes int64, maxKeys int) (bool, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, capsule, key string) error
	// List returns up to limit keys starting with prefix, sorted.
	List(ctx context.Context, capsule, prefix string, limit int) ([]string, error)
	// DeleteAll removes every key of a capsule (at remove).
	DeleteAll(ctx context.Context, capsule string) error
}

func checkKey(k []byte) error {
	if len(k) == 0 || len(k) > MaxKVKey || !utf8.Valid(k) {
		return hostErrf(sdk.StatusInvalid, "kv key: want 1-%d bytes of UTF-8", MaxKVKey)
	}
	return nil
}

func (m *Manager) kvGet(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	if err := checkKey(a); err != nil {
		return nil, err
	}
	key := string(a)
	return cs.gated(ctx, "kv", cs.c.caps.KV, map[string]string{"op": "get", "key": key}, "kv get "+key, func(ctx context.Context) ([]byte, error) {
		v, ok, err := m.kv.Get(ctx, cs.c.id, key)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, hostErrf(sdk.StatusNotFound, "no key %q", key)
		}
		return v, nil
	})
}

func (m *Manager) kvSet(ctx context.Context, cs *callState, a, b []byte) ([]byte, error) {
	if err := checkKey(a); err != nil {
		return nil, err
	}
	key := string(a)
	args := map[string]any{"op": "set", "key": key, "bytes": len(b)}
	if len(b) > MaxKVValue {
		act, _ := cs.capsuleAction("kv", args, "kv set "+key)
		return nil, cs.refuse(ctx, act.Kind, act.Resource, act.Args, RuleLimit, fmt.Sprintf("kv value of %d bytes, more than %d", len(b), MaxKVValue))
	}
	value := append([]byte(nil), b...)
	return cs.gated(ctx, "kv", cs.c.caps.KV, args, "kv set "+key, func(ctx context.Context) ([]byte, error) {
		ok, err := m.kv.Set(ctx, cs.c.id, key, value, MaxKVBytes, MaxKVKeys)
		if err == nil && !ok {
			err = hostErrf(sdk.StatusLimit, "kv: the capsule's store is full (%d bytes or %d keys)", MaxKVBytes, MaxKVKeys)
		}
		return nil, err
	})
}

func (m *Manager) kvDelete(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	if err := checkKey(a); err != nil {
		return nil, err
	}
	key := string(a)
	return cs.gated(ctx, "kv", cs.c.caps.KV, map[string]string{"op": "delete", "key": key}, "kv delete "+key, func(ctx context.Context) ([]byte, error) {
		return nil, m.kv.Delete(ctx, cs.c.id, key)
	})
}

func (m *Manager) kvList(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	if len(a) > MaxKVKey || !utf8.Valid(a) {
		return nil, hostErrf(sdk.StatusInvalid, "kv prefix: want at most %d bytes of UTF-8", MaxKVKey)
	}
	prefix := string(a)
	return cs.gated(ctx, "kv", cs.c.caps.KV, map[string]string{"op": "list", "prefix": prefix}, "kv list "+prefix, func(ctx context.Context) ([]byte, error) {
		keys, err := m.kv.List(ctx, cs.c.id, prefix, maxKVList)
		if err != nil {
			return nil, err
		}
		if keys == nil {
			keys = []string{}
		}
		return json.Marshal(keys)
	})
}
