package capability

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/keys"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testKey(t testing.TB) *keys.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keys.Key{Name: "test", Private: priv, Created: t0}
}

// sampleToken returns a valid token signed by k, with every field set.
func sampleToken(t testing.TB, k *keys.Key) *Token {
	t.Helper()
	tok := &Token{
		Version:      Version,
		ID:           ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Principal:    "alice",
		Resource:     "file:///home/alice/project/**",
		Permissions:  Read | Write,
		IssuedAt:     t0,
		NotBefore:    t0,
		ExpiresAt:    t0.Add(time.Hour),
		Scope:        ScopeSession,
		Binding:      "sess-1",
		SingleUse:    true,
		AllowDynamic: true,
		Approval:     bytes.Repeat([]byte{0xab}, 32),
		Parent:       ID{0xff},
	}
	if err := Sign(tok, k); err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustEncode(t testing.TB, tok *Token) []byte {
	t.Helper()
	b, err := tok.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	k := testKey(t)
	tok := sampleToken(t, k)
	enc := mustEncode(t, tok)
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tok, got); diff != "" {
		t.Errorf("Decode(Encode(t)) differs (-want +got):\n%s", diff)
	}
	again := mustEncode(t, got)
	if !bytes.Equal(enc, again) {
		t.Error("re-encoding differs: the encoding is not canonical")
	}
}

// TestEncodingLayout pins the byte layout documented in the package comment.
func TestEncodingLayout(t *testing.T) {
	k := testKey(t)
	tok := sampleToken(t, k)
	enc := mustEncode(t, tok)
	var want []byte
	want = append(want, 1)
	want = append(want, tok.ID[:]...)
	want = append(want, 0, 5)
	want = append(want, "alice"...)
	want = append(want, 0, byte(len(tok.Resource)))
	want = append(want, tok.Resource...)
	want = append(want, 0, 3) // read|write
	for _, ts := range []int64{t0.Unix(), t0.Unix(), t0.Add(time.Hour).Unix()} {
		want = append(want, byte(ts>>56), byte(ts>>48), byte(ts>>40), byte(ts>>32), byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts))
	}
	want = append(want, 1, 0, 6)
	want = append(want, "sess-1"...)
	want = append(want, 3, 0, 32)
	want = append(want, k.ID()...)
	want = append(want, 32)
	want = append(want, bytes.Repeat([]byte{0xab}, 32)...)
	want = append(want, tok.Parent[:]...)
	if diff := cmp.Diff(want, enc[:len(enc)-SignatureSize]); diff != "" {
		t.Errorf("body layout (-want +got):\n%s", diff)
	}
	msg, err := tok.SignedMessage()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg, append([]byte("astrid-capability-token-v1\x00"), want...)) {
		t.Error("signed message is not Domain || body")
	}
	if !ed25519.Verify(k.Public(), msg, enc[len(enc)-SignatureSize:]) {
		t.Error("trailing 64 bytes are not the signature over the signed message")
	}
}

func TestDecodeRejects(t *testing.T) {
	k := testKey(t)
	good := mustEncode(t, sampleToken(t, k))
	resign := func(f func(*Token)) []byte {
		tok := sampleToken(t, k)
		f(tok)
		// Encode bypassing validation, to feed the decoder bad fields.
		b := tok.appendBody(nil)
		return append(b, make([]byte, SignatureSize)...)
	}
	tests := []struct {
		name string
		enc  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"oversized", make([]byte, MaxEncodedSize+1), ErrMalformed},
		{"version 0", append([]byte{0}, good[1:]...), ErrUnknownVersion},
		{"version 2", append([]byte{2}, good[1:]...), ErrUnknownVersion},
		{"trailing byte", append(append([]byte{}, good...), 0), ErrMalformed},
		{"zero id", resign(func(t *Token) { t.ID = ID{} }), ErrMalformed},
		{"own parent", resign(func(t *Token) { t.Parent = t.ID }), ErrMalformed},
		{"no permissions", resign(func(t *Token) { t.Permissions = 0 }), ErrMalformed},
		{"unknown permission bit", resign(func(t *Token) { t.Permissions |= 1 << 9 }), ErrMalformed},
		{"expires before not_before", resign(func(t *Token) { t.ExpiresAt = t.NotBefore }), ErrMalformed},
		{"empty principal", resign(func(t *Token) { t.Principal = "" }), ErrMalformed},
		{"principal too long", resign(func(t *Token) { t.Principal = strings.Repeat("a", MaxPrincipalLen+1) }), ErrMalformed},
		{"invalid utf-8 principal", resign(func(t *Token) { t.Principal = "\xff" }), ErrMalformed},
		{"relative resource", resign(func(t *Token) { t.Resource = "file://home/x" }), ErrMalformed},
		{"dotdot resource", resign(func(t *Token) { t.Resource = "file:///home/../etc/**" }), ErrMalformed},
		{"unknown scheme", resign(func(t *Token) { t.Resource = "http://x" }), ErrMalformed},
		{"scope 0", resign(func(t *Token) { t.Scope = 0 }), ErrMalformed},
		{"scope 4", resign(func(t *Token) { t.Scope = 4 }), ErrMalformed},
		{"session without id", resign(func(t *Token) { t.Binding = "" }), ErrMalformed},
		{"workspace not absolute", resign(func(t *Token) { t.Scope, t.Binding = ScopeWorkspace, "rel/dir" }), ErrMalformed},
		{"workspace not clean", resign(func(t *Token) { t.Scope, t.Binding = ScopeWorkspace, "/a/../b" }), ErrMalformed},
		{"persistent with binding", resign(func(t *Token) { t.Scope = ScopePersistent }), ErrMalformed},
		{"issuer not hex", resign(func(t *Token) { t.Issuer = strings.Repeat("Z", 32) }), ErrMalformed},
		{"issuer short", resign(func(t *Token) { t.Issuer = "abcd" }), ErrMalformed},
		{"approval too long", resign(func(t *Token) { t.Approval = make([]byte, MaxApprovalLen+1) }), ErrMalformed},
		{"negative time", resign(func(t *Token) { t.IssuedAt = time.Unix(-5, 0) }), ErrMalformed},
		{"far future", resign(func(t *Token) { t.ExpiresAt = time.Unix(maxUnix+1, 0) }), ErrMalformed},
	}
	// Unknown flag bits: patch the flags byte of the good encoding.
	flagsAt := 1 + 16 + 2 + 5 + 2 + len("file:///home/alice/project/**") + 2 + 24 + 1 + 2 + len("sess-1")
	badFlags := append([]byte{}, good...)
	badFlags[flagsAt] |= 0x80
	tests = append(tests, struct {
		name string
		enc  []byte
		want error
	}{"unknown flag", badFlags, ErrMalformed})
	// A length prefix larger than its bound, and one past the end.
	hugeLen := append([]byte{}, good...)
	hugeLen[17], hugeLen[18] = 0xff, 0xff
	tests = append(tests, struct {
		name string
		enc  []byte
		want error
	}{"principal length over bound", hugeLen, ErrMalformed})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Decode(tt.enc)
			if tok != nil {
				t.Errorf("Decode returned a token with error %v", err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Errorf("error %T is not a *VerifyError", err)
			}
		})
	}
}

func TestDecodeEveryTruncation(t *testing.T) {
	good := mustEncode(t, sampleToken(t, testKey(t)))
	for n := 0; n < len(good); n++ {
		if tok, err := Decode(good[:n]); !errors.Is(err, ErrMalformed) || tok != nil {
			t.Fatalf("Decode(first %d of %d bytes) = %v, %v; want ErrMalformed", n, len(good), tok, err)
		}
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	k := testKey(t)
	tok := sampleToken(t, k)
	tok.Resource = "file:///a/../b"
	if err := Sign(tok, k); !errors.Is(err, ErrMalformed) {
		t.Errorf("Sign(invalid) = %v, want ErrMalformed", err)
	}
	tok = sampleToken(t, k)
	tok.Signature = tok.Signature[:10]
	if _, err := tok.Encode(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Encode(short signature) = %v, want ErrMalformed", err)
	}
}

// TestFlipEveryByte flips each byte of an encoding in two ways; no altered
// encoding may verify.
func TestFlipEveryByte(t *testing.T) {
	k := testKey(t)
	v := NewVerifier(keys.Trusted{k.ID(): k.Public()}, 0)
	good := mustEncode(t, sampleToken(t, k))
	c := Context{Now: t0.Add(time.Minute), SessionID: "sess-1"}
	if _, err := v.Check(good, c); err != nil {
		t.Fatalf("unaltered token: %v", err)
	}
	for i := range good {
		for _, mask := range []byte{0x01, 0xff} {
			bad := append([]byte{}, good...)
			bad[i] ^= mask
			if tok, err := v.Check(bad, c); err == nil {
				t.Fatalf("flipping byte %d with %#x: verified %+v", i, mask, tok)
			}
		}
	}
}

func TestVerifierForgery(t *testing.T) {
	trustedKey, evil := testKey(t), testKey(t)
	v := NewVerifier(keys.Trusted{trustedKey.ID(): trustedKey.Public()}, 0)
	c := Context{Now: t0.Add(time.Minute), SessionID: "sess-1"}

	// Signed by an untrusted key, naming itself.
	forged := sampleToken(t, evil)
	if _, err := v.Check(mustEncode(t, forged), c); !errors.Is(err, ErrUnknownIssuer) {
		t.Errorf("untrusted issuer: %v, want ErrUnknownIssuer", err)
	}
	// Signed by an untrusted key, claiming the trusted key's id.
	forged.Issuer = trustedKey.ID()
	msg, err := forged.SignedMessage()
	if err != nil {
		t.Fatal(err)
	}
	forged.Signature = evil.Sign(msg)
	if _, err := v.Check(mustEncode(t, forged), c); !errors.Is(err, ErrBadSignature) {
		t.Errorf("claimed issuer: %v, want ErrBadSignature", err)
	}
	// A valid signature moved onto an altered body.
	good := sampleToken(t, trustedKey)
	good.Permissions |= Delete
	if _, err := v.Check(mustEncode(t, good), c); !errors.Is(err, ErrBadSignature) {
		t.Errorf("altered body: %v, want ErrBadSignature", err)
	}
	if n := v.cached(); n != 0 {
		t.Errorf("%d failed verifications were cached", n)
	}
}

func TestVerifierTimeAndScope(t *testing.T) {
	k := testKey(t)
	skew := 30 * time.Second
	v := NewVerifier(keys.Trusted{k.ID(): k.Public()}, skew)
	mk := func(scope Scope, binding string) []byte {
		tok := sampleToken(t, k)
		tok.Scope, tok.Binding = scope, binding
		if err := Sign(tok, k); err != nil {
			t.Fatal(err)
		}
		return mustEncode(t, tok)
	}
	sess := mk(ScopeSession, "sess-1")
	ws := mk(ScopeWorkspace, "/home/alice/project")
	pers := mk(ScopePersistent, "")
	in := t0.Add(time.Minute)
	tests := []struct {
		name string
		enc  []byte
		c    Context
		want error
	}{
		{"inside window", sess, Context{Now: in, SessionID: "sess-1"}, nil},
		{"before not_before within skew", sess, Context{Now: t0.Add(-skew), SessionID: "sess-1"}, nil},
		{"before not_before beyond skew", sess, Context{Now: t0.Add(-skew - time.Second), SessionID: "sess-1"}, ErrNotYetValid},
		{"after expiry within skew", sess, Context{Now: t0.Add(time.Hour + skew - time.Second), SessionID: "sess-1"}, nil},
		{"at expiry plus skew", sess, Context{Now: t0.Add(time.Hour + skew), SessionID: "sess-1"}, ErrExpired},
		{"long expired", sess, Context{Now: t0.Add(48 * time.Hour), SessionID: "sess-1"}, ErrExpired},
		{"wrong session", sess, Context{Now: in, SessionID: "sess-2"}, ErrScopeMismatch},
		{"no session", sess, Context{Now: in}, ErrScopeMismatch},
		{"session token, workspace caller", sess, Context{Now: in, Workspace: "sess-1"}, ErrScopeMismatch},
		{"right workspace", ws, Context{Now: in, Workspace: "/home/alice/project"}, nil},
		{"wrong workspace", ws, Context{Now: in, Workspace: "/home/alice/other"}, ErrScopeMismatch},
		{"sub-directory is another workspace", ws, Context{Now: in, Workspace: "/home/alice/project/sub"}, ErrScopeMismatch},
		{"no workspace", ws, Context{Now: in, SessionID: "/home/alice/project"}, ErrScopeMismatch},
		{"persistent anywhere", pers, Context{Now: in}, nil},
		{"persistent still expires", pers, Context{Now: t0.Add(2 * time.Hour)}, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Check(tt.enc, tt.c)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifierCache(t *testing.T) {
	k := testKey(t)
	v := NewVerifier(keys.Trusted{k.ID(): k.Public()}, 0)
	enc := mustEncode(t, sampleToken(t, k))
	a, err := v.Authentic(enc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Authentic(enc)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || v.cached() != 1 {
		t.Errorf("second verification did not come from the cache (cached=%d)", v.cached())
	}
	v.Forget()
	if v.cached() != 0 {
		t.Error("Forget left entries")
	}
}

func TestIDAndNames(t *testing.T) {
	id := ID{0xde, 0xad}
	got, err := ParseID(id.String())
	if err != nil || got != id {
		t.Errorf("ParseID(%s) = %v, %v", id, got, err)
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("0", 32), strings.Repeat("g", 32), id.String() + "00"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
	p, err := ParsePermissions("read, write,create")
	if err != nil || p != Read|Write|Create || p.String() != "read,write,create" {
		t.Errorf("ParsePermissions = %v (%s), %v", p, p, err)
	}
	if _, err := ParsePermissions("read,admin"); err == nil {
		t.Error("ParsePermissions accepted admin")
	}
	for _, s := range []Scope{ScopeSession, ScopeWorkspace, ScopePersistent} {
		if got, err := ParseScope(s.String()); err != nil || got != s {
			t.Errorf("ParseScope(%s) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseScope(""); err == nil {
		t.Error("ParseScope accepted empty")
	}
}
