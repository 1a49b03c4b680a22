package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/astrid-runtime/astrid/internal/keys"
)

func TestCheckpointFormatAndOpen(t *testing.T) {
	k := newKey(t)
	tree := tlog.Tree{N: 42, Hash: HashBytes([]byte("root"))}
	msg, err := SignCheckpoint(k, tree)
	if err != nil {
		t.Fatal(err)
	}
	want := "astrid/" + k.ID() + "\n42\n" + tree.Hash.String() + "\n\n— astrid/" + k.ID() + " "
	if !strings.HasPrefix(string(msg), want) {
		t.Fatalf("note:\n%s\nwant prefix:\n%s", msg, want)
	}
	vs, err := NewVerifiers(trustedOf(k))
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCheckpoint(msg, vs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tree != tree || c.KeyID != k.ID() || c.Origin != Origin(k.ID()) {
		t.Errorf("checkpoint %+v", c)
	}
	// The standard note verifier for the same key accepts it too.
	vkey, _ := note.NewEd25519VerifierKey(Origin(k.ID()), k.Public())
	v, _ := note.NewVerifier(vkey)
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Errorf("note.Open: %v", err)
	}
}

func TestOpenCheckpointRefuses(t *testing.T) {
	k, other := newKey(t), newKey(t)
	tree := tlog.Tree{N: 3, Hash: HashBytes([]byte("root"))}
	good, _ := SignCheckpoint(k, tree)
	byOther, _ := SignCheckpoint(other, tree)
	vs, _ := NewVerifiers(trustedOf(k))

	// A note whose origin names k but is signed by other under k's name.
	s, _ := newSigner(other)
	s.name = Origin(k.ID())
	wrongOrigin, _ := note.Sign(&note.Note{Text: string(FormatCheckpoint(Origin(other.ID()), tree))}, s)

	// Both trusted, but the origin names the other key.
	vs2, _ := NewVerifiers(trustedOf(k, other))
	mixed, _ := note.Sign(&note.Note{Text: string(FormatCheckpoint(Origin(other.ID()), tree))}, mustSigner(t, k))

	tests := map[string]struct {
		msg       []byte
		vs        Verifiers
		untrusted bool
	}{
		"other key":     {byOther, vs, true},
		"altered size":  {bytes.Replace(good, []byte("\n3\n"), []byte("\n4\n"), 1), vs, false},
		"altered hash":  {bytes.Replace(good, []byte(tree.Hash.String()[:4]), []byte("AAAA"), 1), vs, false},
		"no signature":  {FormatCheckpoint(Origin(k.ID()), tree), vs, false},
		"forged name":   {wrongOrigin, vs, true},
		"origin ≠ key":  {mixed, vs2, false},
		"oversized":     {append(bytes.Clone(good), bytes.Repeat([]byte("x"), MaxCheckpointSize)...), vs, false},
		"empty":         {nil, vs, false},
		"control chars": {bytes.Replace(good, []byte("\n3"), []byte("\x013"), 1), vs, false},
	}
	for name, tc := range tests {
		c, err := OpenCheckpoint(tc.msg, tc.vs)
		if err == nil || c != nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("%s: %v does not wrap ErrBadCheckpoint", name, err)
		}
		var ut *UntrustedKeyError
		if errors.As(err, &ut) != tc.untrusted {
			t.Errorf("%s: %v: UntrustedKeyError = %v, want %v", name, err, !tc.untrusted, tc.untrusted)
		}
	}
}

func mustSigner(t *testing.T, k *keys.Key) *signer {
	t.Helper()
	s, err := newSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseCheckpointRefuses(t *testing.T) {
	h := HashBytes(nil).String()
	for _, text := range []string{
		"",
		"astrid/abc\n1\n" + h,                           // no final newline
		"astrid/abc\n1\n" + h + "\nextra\n",             // extra line
		"astrid/abc\n01\n" + h + "\n",                   // non-canonical size
		"astrid/abc\n-1\n" + h + "\n",                   // negative
		"astrid/abc\n1\nAAAA\n",                         // short hash
		"other/abc\n1\n" + h + "\n",                     // foreign origin
		"astrid/\n1\n" + h + "\n",                       // no key id
		"astrid/a b\n1\n" + h + "\n",                    // space in origin
		"astrid/a+b\n1\n" + h + "\n",                    // plus in origin
		"astrid/abc\n99999999999999999999\n" + h + "\n", // overflow
	} {
		if _, _, err := ParseCheckpoint([]byte(text)); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("ParseCheckpoint(%q) = %v, want ErrBadCheckpoint", text, err)
		}
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("astrid/abc\n1\n" + HashBytes(nil).String() + "\n"))
	f.Add([]byte("astrid/abc\n0\n\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		origin, tree, err := ParseCheckpoint(text)
		if err != nil {
			return
		}
		if !bytes.Equal(FormatCheckpoint(origin, tree), text) {
			t.Fatalf("accepted non-canonical %q", text)
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	k := newKey(f)
	vs, _ := NewVerifiers(trustedOf(k))
	good, _ := SignCheckpoint(k, tlog.Tree{N: 5, Hash: HashBytes([]byte("x"))})
	f.Add(good)
	f.Add([]byte("astrid/x\n1\n\n\n— astrid/x AAAA\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := OpenCheckpoint(msg, vs)
		if err != nil {
			return
		}
		// Only a note signed by k can be accepted; the fuzzer cannot sign.
		if c.KeyID != k.ID() || !bytes.Equal(c.Note, msg) {
			t.Fatalf("accepted %q as %+v", msg, c)
		}
	})
}

// BenchmarkOpenCheckpoint is the cost Verify pays per stored checkpoint
// (one per commit), on one core.
func BenchmarkOpenCheckpoint(b *testing.B) {
	k := newKey(b)
	vs, _ := NewVerifiers(trustedOf(k))
	msg, _ := SignCheckpoint(k, tlog.Tree{N: 123456, Hash: HashBytes([]byte("root"))})
	for b.Loop() {
		if _, err := OpenCheckpoint(msg, vs); err != nil {
			b.Fatal(err)
		}
	}
}
