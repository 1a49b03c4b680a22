package audit

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/astrid-runtime/astrid/internal/keys"
)

// MaxCheckpointSize bounds a signed checkpoint note, text and signatures.
const MaxCheckpointSize = 4096

// OriginPrefix starts every checkpoint origin: "astrid/<key id>".
const OriginPrefix = "astrid/"

// ErrBadCheckpoint wraps every reason a checkpoint note is refused.
var ErrBadCheckpoint = errors.New("bad checkpoint")

// Checkpoint is a verified, signed statement of the log's size and root.
type Checkpoint struct {
	// Origin is "astrid/<id of the key that signed it>".
	Origin string
	// Tree is the size and RFC 6962 root hash.
	Tree tlog.Tree
	// KeyID is the keys.ID of the signing key.
	KeyID string
	// Note is the complete signed note text.
	Note []byte
}

// Origin returns the checkpoint origin (and note key name) of a key.
func Origin(keyID string) string { return OriginPrefix + keyID }

// FormatCheckpoint returns the checkpoint body for tree: the origin line,
// then tlog.FormatTree's size and hash lines.
func FormatCheckpoint(origin string, tree tlog.Tree) []byte {
	body := tlog.FormatTree(tree)
	_, rest, _ := bytes.Cut(body, []byte("\n")) // drop "go.sum database tree"
	return append([]byte(origin+"\n"), rest...)
}

// ParseCheckpoint parses a checkpoint body (the text before the signatures):
// exactly three lines, origin, decimal size and base64 root hash. It checks
// nothing about signatures; see OpenCheckpoint.
func ParseCheckpoint(text []byte) (origin string, tree tlog.Tree, err error) {
	if len(text) > MaxCheckpointSize {
		return "", tlog.Tree{}, fmt.Errorf("%w: %d bytes, more than %d", ErrBadCheckpoint, len(text), MaxCheckpointSize)
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) != 4 || lines[3] != "" {
		return "", tlog.Tree{}, fmt.Errorf("%w: want three lines (origin, size, root hash)", ErrBadCheckpoint)
	}
	origin = lines[0]
	if !validOrigin(origin) {
		return "", tlog.Tree{}, fmt.Errorf("%w: origin %q is not astrid/<key id>", ErrBadCheckpoint, origin)
	}
	// tlog.ParseTree checks the size (canonical decimal, non-negative) and
	// the hash (32 bytes of standard base64) exactly as sumdb does.
	tree, err = tlog.ParseTree([]byte("go.sum database tree\n" + lines[1] + "\n" + lines[2] + "\n"))
	if err != nil {
		return "", tlog.Tree{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if !bytes.Equal(FormatCheckpoint(origin, tree), text) {
		return "", tlog.Tree{}, fmt.Errorf("%w: not in canonical form", ErrBadCheckpoint)
	}
	return origin, tree, nil
}

func validOrigin(s string) bool {
	id, ok := strings.CutPrefix(s, OriginPrefix)
	if !ok || id == "" || len(id) > 64 || !utf8.ValidString(id) {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool {
		return unicode.IsSpace(r) || r == '+' || r == '/' || r < 0x20
	}) < 0
}

// UntrustedKeyError means a checkpoint is signed, but by no trusted key.
type UntrustedKeyError struct {
	// Names lists the note key names that signed it.
	Names []string
}

func (e *UntrustedKeyError) Error() string {
	return fmt.Sprintf("checkpoint signed by a key that is not trusted (%s)", strings.Join(e.Names, ", "))
}

// OpenCheckpoint parses a signed checkpoint note and verifies it: signed by
// a trusted key whose origin is the note's first line, and no other
// signature that fails. Errors wrap ErrBadCheckpoint; a note signed only by
// unknown keys also yields an *UntrustedKeyError.
func OpenCheckpoint(msg []byte, trusted Verifiers) (*Checkpoint, error) {
	if len(msg) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadCheckpoint, len(msg), MaxCheckpointSize)
	}
	n, err := note.Open(msg, trusted.v)
	if err != nil {
		var unv *note.UnverifiedNoteError
		if errors.As(err, &unv) {
			var names []string
			for _, s := range unv.Note.UnverifiedSigs {
				names = append(names, s.Name)
			}
			return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, &UntrustedKeyError{Names: names})
		}
		return nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	origin, tree, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return nil, err
	}
	for _, s := range n.Sigs {
		if s.Name == origin {
			return &Checkpoint{Origin: origin, Tree: tree, KeyID: strings.TrimPrefix(origin, OriginPrefix), Note: msg}, nil
		}
	}
	return nil, fmt.Errorf("%w: origin %s is not the name of the trusted key that signed it", ErrBadCheckpoint, origin)
}

// Verifiers is the set of note verifiers for a keys.Trusted.
type Verifiers struct{ v note.Verifiers }

// NewVerifiers returns note verifiers named astrid/<id> for every trusted key.
func NewVerifiers(trusted keys.Trusted) (Verifiers, error) {
	ids := make([]string, 0, len(trusted))
	for id := range trusted {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var list []note.Verifier
	for _, id := range ids {
		if keys.ID(trusted[id]) != id {
			return Verifiers{}, fmt.Errorf("trusted key %s: id does not match the key", id)
		}
		vkey, err := note.NewEd25519VerifierKey(Origin(id), trusted[id])
		if err != nil {
			return Verifiers{}, fmt.Errorf("trusted key %s: %w", id, err)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return Verifiers{}, fmt.Errorf("trusted key %s: %w", id, err)
		}
		list = append(list, v)
	}
	return Verifiers{note.VerifierList(list...)}, nil
}

// signer is a note.Signer over a runtime key, named by its origin.
type signer struct {
	key  *keys.Key
	name string
	hash uint32
}

var _ note.Signer = (*signer)(nil)

func newSigner(k *keys.Key) (*signer, error) {
	name := Origin(k.ID())
	vkey, err := note.NewEd25519VerifierKey(name, k.Public())
	if err != nil {
		return nil, err
	}
	// vkey is "<name>+<8 hex digits of key hash>+<base64 key>".
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("unexpected verifier key %q", vkey)
	}
	h, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil {
		return nil, fmt.Errorf("verifier key hash: %w", err)
	}
	return &signer{key: k, name: name, hash: uint32(h)}, nil
}

func (s *signer) Name() string                    { return s.name }
func (s *signer) KeyHash() uint32                 { return s.hash }
func (s *signer) Sign(msg []byte) ([]byte, error) { return s.key.Sign(msg), nil }

// SignCheckpoint returns the signed note for tree, with origin astrid/<k's id>.
func SignCheckpoint(k *keys.Key, tree tlog.Tree) ([]byte, error) {
	s, err := newSigner(k)
	if err != nil {
		return nil, err
	}
	return s.sign(tree)
}

func (s *signer) sign(tree tlog.Tree) ([]byte, error) {
	return note.Sign(&note.Note{Text: string(FormatCheckpoint(s.name, tree))}, s)
}
