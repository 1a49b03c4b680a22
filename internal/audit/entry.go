package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// Domain is the domain separation string every encoded entry starts with.
const Domain = "astrid/audit/entry\x00"

// Version is the entry encoding version this package writes and reads.
const Version = 1

// Field bounds, in bytes (see the package comment).
const (
	MaxSession   = 256
	MaxPrincipal = 256
	MaxFrontend  = 64
	MaxKind      = 64
	MaxResource  = 4096
	MaxRule      = 256
	MaxTokenID   = 256
	MaxAllowance = 256
	MaxApproval  = 64
	MaxText      = 4096
)

// MaxEntrySize bounds an encoded entry: the fixed fields plus every string at
// its bound.
const MaxEntrySize = fixedSize + 10*4 + MaxSession + MaxPrincipal + MaxFrontend + MaxKind +
	MaxResource + MaxRule + MaxTokenID + MaxAllowance + MaxApproval + MaxText

// fixedSize counts the fixed-width fields.
const fixedSize = len(Domain) + 1 + 8 + 8 + 32 + 1 + 32 + 1 + 8 + 32 + 1 + 32

// ErrInvalidEntry wraps every reason an entry is refused by Encode or Append.
var ErrInvalidEntry = errors.New("invalid audit entry")

// ErrMalformed wraps every reason Decode refuses its input.
var ErrMalformed = errors.New("malformed audit entry")

// ErrUnknownVersion means an encoded entry has a version this binary does not
// know; it is also wrapped in ErrMalformed.
var ErrUnknownVersion = errors.New("unknown audit entry version")

// Type says whether an entry records a decision or an outcome.
type Type uint8

// Entry types.
const (
	TypeDecision Type = 1
	TypeOutcome  Type = 2
)

func (t Type) String() string {
	switch t {
	case TypeDecision:
		return "decision"
	case TypeOutcome:
		return "outcome"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Decision is the interceptor's verdict on an action.
type Decision uint8

// Decisions. The zero value means "none" and is valid only in outcomes.
const (
	Allowed  Decision = 1
	Denied   Decision = 2
	Deferred Decision = 3
)

func (d Decision) String() string {
	switch d {
	case 0:
		return ""
	case Allowed:
		return "allowed"
	case Denied:
		return "denied"
	case Deferred:
		return "deferred"
	}
	return fmt.Sprintf("decision(%d)", uint8(d))
}

// ParseDecision parses "allowed", "denied" or "deferred".
func ParseDecision(s string) (Decision, error) {
	for _, d := range []Decision{Allowed, Denied, Deferred} {
		if s == d.String() {
			return d, nil
		}
	}
	return 0, fmt.Errorf("decision %q: want allowed, denied or deferred", s)
}

// Status is the outcome of an executed action.
type Status uint8

// Outcome statuses. The zero value means "none" and is valid only in
// decisions.
const (
	Success Status = 1
	Failure Status = 2
)

func (s Status) String() string {
	switch s {
	case 0:
		return ""
	case Success:
		return "success"
	case Failure:
		return "error"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Action is what was asked for.
type Action struct {
	// Kind is the action kind, for example a tool name.
	Kind string
	// Resource is the resource URI (file:///..., exec://..., net://...).
	Resource string
	// ArgsHash is the SHA-256 of the full arguments (see HashBytes).
	ArgsHash tlog.Hash
}

// Proof records what justified a decision. Each field is empty when it did
// not take part.
type Proof struct {
	Rule        string // policy rule
	TokenID     string // capability token
	AllowanceID string // recorded allowance
	Approval    string // the human's answer (allow_once, deny, ...)
}

// Ref names a decision entry from its outcome entry.
type Ref struct {
	Seq  int64
	Hash tlog.Hash
}

// Entry is one audit record. Seq, Time and Prev are assigned by the log when
// the entry is appended; Append overwrites whatever the caller put there.
type Entry struct {
	Seq  int64
	Time time.Time
	Prev tlog.Hash

	Type      Type
	Session   string
	Principal string
	Frontend  string
	Action    Action

	// Decision and Proof are set in decision entries only.
	Decision Decision
	Proof    Proof

	// Ref, Status and OutputHash are set in outcome entries only.
	Ref        Ref
	Status     Status
	OutputHash tlog.Hash

	// Text is the reason of a decision or the message of an outcome.
	Text string
}

// Validate reports whether e can be encoded: every string within its bound
// and valid UTF-8, and the fields consistent with the type. A decision entry
// needs a kind and a decision and has no outcome fields; an outcome entry
// needs a status and a reference to an earlier entry, and has no decision or
// proof.
func (e *Entry) Validate() error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	return nil
}

func (e *Entry) validate() error {
	if e.Seq < 0 {
		return fmt.Errorf("seq %d is negative", e.Seq)
	}
	for _, f := range []struct {
		name string
		v    string
		max  int
	}{
		{"session", e.Session, MaxSession},
		{"principal", e.Principal, MaxPrincipal},
		{"frontend", e.Frontend, MaxFrontend},
		{"kind", e.Action.Kind, MaxKind},
		{"resource", e.Action.Resource, MaxResource},
		{"rule", e.Proof.Rule, MaxRule},
		{"token id", e.Proof.TokenID, MaxTokenID},
		{"allowance id", e.Proof.AllowanceID, MaxAllowance},
		{"approval", e.Proof.Approval, MaxApproval},
		{"text", e.Text, MaxText},
	} {
		if len(f.v) > f.max {
			return fmt.Errorf("%s is %d bytes, more than %d", f.name, len(f.v), f.max)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%s is not valid UTF-8", f.name)
		}
	}
	switch e.Type {
	case TypeDecision:
		switch {
		case e.Action.Kind == "":
			return errors.New("decision without an action kind")
		case e.Decision < Allowed || e.Decision > Deferred:
			return fmt.Errorf("decision entry with decision %d", e.Decision)
		case e.Status != 0 || e.Ref != (Ref{}) || e.OutputHash != (tlog.Hash{}):
			return errors.New("decision entry with outcome fields")
		}
	case TypeOutcome:
		switch {
		case e.Status != Success && e.Status != Failure:
			return fmt.Errorf("outcome entry with status %d", e.Status)
		case e.Decision != 0 || e.Proof != (Proof{}):
			return errors.New("outcome entry with decision fields")
		case e.Ref.Seq < 0:
			return fmt.Errorf("outcome references seq %d", e.Ref.Seq)
		case e.Ref.Hash == (tlog.Hash{}):
			return errors.New("outcome entry without the hash of its decision")
		}
	default:
		return fmt.Errorf("unknown entry type %d", e.Type)
	}
	return nil
}

// Hash returns the entry's hash: the RFC 6962 leaf hash of its encoding.
func (e *Entry) Hash() (tlog.Hash, error) {
	b, err := e.Encode()
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.RecordHash(b), nil
}

// Encode returns the version 1 encoding of e (see the package comment).
func (e *Entry) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, fixedSize+10*4+len(e.Session)+len(e.Principal)+len(e.Frontend)+
		len(e.Action.Kind)+len(e.Action.Resource)+len(e.Proof.Rule)+len(e.Proof.TokenID)+
		len(e.Proof.AllowanceID)+len(e.Proof.Approval)+len(e.Text))
	b = append(b, Domain...)
	b = append(b, Version)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	var nanos int64 // the zero Time encodes as 0, the Unix epoch
	if !e.Time.IsZero() {
		nanos = e.Time.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(nanos))
	b = append(b, e.Prev[:]...)
	b = append(b, byte(e.Type))
	b = appendStr(b, e.Session)
	b = appendStr(b, e.Principal)
	b = appendStr(b, e.Frontend)
	b = appendStr(b, e.Action.Kind)
	b = appendStr(b, e.Action.Resource)
	b = append(b, e.Action.ArgsHash[:]...)
	b = append(b, byte(e.Decision))
	b = appendStr(b, e.Proof.Rule)
	b = appendStr(b, e.Proof.TokenID)
	b = appendStr(b, e.Proof.AllowanceID)
	b = appendStr(b, e.Proof.Approval)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Ref.Seq))
	b = append(b, e.Ref.Hash[:]...)
	b = append(b, byte(e.Status))
	b = append(b, e.OutputHash[:]...)
	b = appendStr(b, e.Text)
	return b, nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// Decode parses a version 1 encoding. It decodes everything before it
// returns anything: on error the result is nil.
func Decode(b []byte) (*Entry, error) {
	e, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return e, nil
}

func decode(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%d bytes, more than %d", len(b), MaxEntrySize)
	}
	d := decoder{b: b}
	if dom := d.bytes(len(Domain)); d.err == nil && string(dom) != Domain {
		return nil, errors.New("not an audit entry (wrong domain)")
	}
	if v := d.u8(); d.err == nil && v != Version {
		return nil, fmt.Errorf("%w %d", ErrUnknownVersion, v)
	}
	var e Entry
	seq := d.u64()
	if seq > math.MaxInt64 {
		d.fail("seq out of range")
	}
	e.Seq = int64(seq)
	e.Time = time.Unix(0, int64(d.u64())).UTC()
	d.hash(&e.Prev)
	e.Type = Type(d.u8())
	e.Session = d.str("session", MaxSession)
	e.Principal = d.str("principal", MaxPrincipal)
	e.Frontend = d.str("frontend", MaxFrontend)
	e.Action.Kind = d.str("kind", MaxKind)
	e.Action.Resource = d.str("resource", MaxResource)
	d.hash(&e.Action.ArgsHash)
	e.Decision = Decision(d.u8())
	e.Proof.Rule = d.str("rule", MaxRule)
	e.Proof.TokenID = d.str("token id", MaxTokenID)
	e.Proof.AllowanceID = d.str("allowance id", MaxAllowance)
	e.Proof.Approval = d.str("approval", MaxApproval)
	ref := d.u64()
	if ref > math.MaxInt64 {
		d.fail("ref_seq out of range")
	}
	e.Ref.Seq = int64(ref)
	d.hash(&e.Ref.Hash)
	e.Status = Status(d.u8())
	d.hash(&e.OutputHash)
	e.Text = d.str("text", MaxText)
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// decoder reads fields; after the first error every read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = errors.New("truncated")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.bytes(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) hash(h *tlog.Hash) {
	if v := d.bytes(32); v != nil {
		copy(h[:], v)
	}
}

func (d *decoder) str(name string, max int) string {
	v := d.bytes(4)
	if v == nil {
		return ""
	}
	n := binary.BigEndian.Uint32(v)
	if n > uint32(max) {
		d.err = fmt.Errorf("%s length %d exceeds %d", name, n, max)
		return ""
	}
	s := d.bytes(int(n))
	if s == nil {
		return ""
	}
	if !utf8.Valid(s) {
		d.err = fmt.Errorf("%s is not valid UTF-8", name)
		return ""
	}
	return string(s)
}

// HashBytes returns the SHA-256 of b, the hash used for ArgsHash and
// OutputHash.
func HashBytes(b []byte) tlog.Hash { return sha256.Sum256(b) }

// ActionHash is the ArgsHash of an action: kind, resource and arguments,
// each length-prefixed, so that a clipped resource still names exactly one
// action. The interceptor and every other writer of action entries use it.
func ActionHash(kind, resource string, args []byte) tlog.Hash {
	h := sha256.New()
	for _, s := range []string{kind, resource, string(args)} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var out tlog.Hash
	copy(out[:], h.Sum(nil))
	return out
}

// ClipText makes s fit the text field: invalid UTF-8 is replaced and the
// result is cut, on a rune boundary, to at most MaxText bytes. Callers use
// it for error messages of unknown size, so that recording an outcome never
// fails on its message.
func ClipText(s string) string { return ClipUTF8(s, MaxText) }

// ClipUTF8 is s with invalid UTF-8 replaced, cut by Clip to at most max
// bytes: for fields whose text comes from outside (names, paths, errors).
func ClipUTF8(s string, max int) string {
	return Clip(strings.ToValidUTF8(s, "\uFFFD"), max)
}

// Clip cuts s, on a rune boundary, to at most max bytes, marking the cut
// with "…"; a string that fits is returned as is. Callers use it to fit a
// field of an entry into its bound (see the Max* constants).
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}
