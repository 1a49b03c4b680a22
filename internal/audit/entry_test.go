package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/tlog"
)

func sampleDecision() Entry {
	return Entry{
		Seq:       7,
		Time:      time.Date(2026, 11, 22, 1, 2, 3, 4, time.UTC),
		Prev:      HashBytes([]byte("prev")),
		Type:      TypeDecision,
		Session:   "sess-1",
		Principal: "user:alice",
		Frontend:  "cli",
		Action:    Action{Kind: "write_file", Resource: "file:///w/a.txt", ArgsHash: HashBytes([]byte(`{"content":"x"}`))},
		Decision:  Allowed,
		Proof:     Proof{Rule: "workspace-write", TokenID: "tok-1", AllowanceID: "al-1", Approval: "allow_once"},
		Text:      "within the workspace",
	}
}

func sampleOutcome() Entry {
	return Entry{
		Seq:        8,
		Time:       time.Date(2026, 11, 22, 1, 2, 4, 0, time.UTC),
		Prev:       HashBytes([]byte("seven")),
		Type:       TypeOutcome,
		Session:    "sess-1",
		Principal:  "user:alice",
		Frontend:   "cli",
		Action:     Action{Kind: "write_file", Resource: "file:///w/a.txt"},
		Ref:        Ref{Seq: 7, Hash: HashBytes([]byte("seven"))},
		Status:     Failure,
		OutputHash: HashBytes([]byte("out")),
		Text:       "permission denied",
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, e := range []Entry{sampleDecision(), sampleOutcome()} {
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(Domain+"\x01")) {
			t.Errorf("encoding does not start with the domain and version: %q", b[:24])
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&e, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		b2, _ := got.Encode()
		if !bytes.Equal(b, b2) {
			t.Error("re-encoding differs")
		}
	}
}

// TestEncodingLayout pins the byte layout documented in the package comment.
func TestEncodingLayout(t *testing.T) {
	e := sampleDecision()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint64(b[20:]); got != 7 {
		t.Errorf("seq at offset 20 = %d", got)
	}
	if got := int64(binary.BigEndian.Uint64(b[28:])); got != e.Time.UnixNano() {
		t.Errorf("time at offset 28 = %d", got)
	}
	if !bytes.Equal(b[36:68], e.Prev[:]) {
		t.Error("prev not at offset 36")
	}
	if b[68] != byte(TypeDecision) {
		t.Error("type not at offset 68")
	}
	if n := binary.BigEndian.Uint32(b[69:]); n != uint32(len(e.Session)) || string(b[73:73+n]) != e.Session {
		t.Error("session not at offset 69")
	}
	if !strings.HasSuffix(string(b), "\x00\x00\x00\x14within the workspace") {
		t.Error("text is not the last field")
	}
	if h, _ := e.Hash(); h != tlog.RecordHash(b) {
		t.Error("Hash is not the RFC 6962 leaf hash of the encoding")
	}
}

func TestEncodeIsDeterministicAndCoversEveryField(t *testing.T) {
	base := sampleDecision()
	b0, _ := base.Encode()
	mutations := map[string]func(*Entry){
		"seq":       func(e *Entry) { e.Seq++ },
		"time":      func(e *Entry) { e.Time = e.Time.Add(time.Nanosecond) },
		"prev":      func(e *Entry) { e.Prev[0] ^= 1 },
		"session":   func(e *Entry) { e.Session += "x" },
		"principal": func(e *Entry) { e.Principal += "x" },
		"frontend":  func(e *Entry) { e.Frontend += "x" },
		"kind":      func(e *Entry) { e.Action.Kind += "x" },
		"resource":  func(e *Entry) { e.Action.Resource += "x" },
		"args":      func(e *Entry) { e.Action.ArgsHash[31] ^= 1 },
		"decision":  func(e *Entry) { e.Decision = Denied },
		"rule":      func(e *Entry) { e.Proof.Rule += "x" },
		"token":     func(e *Entry) { e.Proof.TokenID += "x" },
		"allowance": func(e *Entry) { e.Proof.AllowanceID += "x" },
		"approval":  func(e *Entry) { e.Proof.Approval += "x" },
		"text":      func(e *Entry) { e.Text += "x" },
		// Moving bytes between adjacent strings must change the encoding.
		"boundary": func(e *Entry) { e.Session, e.Principal = e.Session+"u", strings.TrimPrefix(e.Principal, "u") },
	}
	for name, mut := range mutations {
		e := base
		mut(&e)
		b, err := e.Encode()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if bytes.Equal(b, b0) {
			t.Errorf("%s: changing it does not change the encoding", name)
		}
	}
	o := sampleOutcome()
	o0, _ := o.Encode()
	for name, mut := range map[string]func(*Entry){
		"ref seq":      func(e *Entry) { e.Ref.Seq++ },
		"ref hash":     func(e *Entry) { e.Ref.Hash[0] ^= 1 },
		"status":       func(e *Entry) { e.Status = Success },
		"output hash":  func(e *Entry) { e.OutputHash[0] ^= 1 },
		"outcome text": func(e *Entry) { e.Text = "other error" },
	} {
		e := o
		mut(&e)
		b, _ := e.Encode()
		if bytes.Equal(b, o0) {
			t.Errorf("%s: changing it does not change the encoding", name)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	tests := map[string]func(*Entry){
		"negative seq":          func(e *Entry) { e.Seq = -1 },
		"long session":          func(e *Entry) { e.Session = strings.Repeat("s", MaxSession+1) },
		"long resource":         func(e *Entry) { e.Action.Resource = strings.Repeat("r", MaxResource+1) },
		"long text":             func(e *Entry) { e.Text = strings.Repeat("t", MaxText+1) },
		"bad utf8":              func(e *Entry) { e.Principal = "\xff" },
		"no kind":               func(e *Entry) { e.Action.Kind = "" },
		"no decision":           func(e *Entry) { e.Decision = 0 },
		"bad decision":          func(e *Entry) { e.Decision = 4 },
		"decision with status":  func(e *Entry) { e.Status = Success },
		"decision with ref":     func(e *Entry) { e.Ref.Seq = 1 },
		"unknown type":          func(e *Entry) { e.Type = 3 },
		"decision with outhash": func(e *Entry) { e.OutputHash[0] = 1 },
	}
	for name, mut := range tests {
		e := sampleDecision()
		mut(&e)
		if _, err := e.Encode(); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: Encode = %v, want ErrInvalidEntry", name, err)
		}
	}
	for name, mut := range map[string]func(*Entry){
		"no status":          func(e *Entry) { e.Status = 0 },
		"outcome w decision": func(e *Entry) { e.Decision = Allowed },
		"outcome w proof":    func(e *Entry) { e.Proof.Rule = "r" },
		"no ref hash":        func(e *Entry) { e.Ref.Hash = tlog.Hash{} },
		"negative ref":       func(e *Entry) { e.Ref.Seq = -2 },
	} {
		e := sampleOutcome()
		mut(&e)
		if _, err := e.Encode(); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: Encode = %v, want ErrInvalidEntry", name, err)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	e := sampleDecision()
	good, _ := e.Encode()
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	sessOff := 69
	tests := map[string][]byte{
		"empty":          {},
		"trailing byte":  append(bytes.Clone(good), 0),
		"wrong domain":   mod(func(b []byte) []byte { b[0] = 'A'; return b }),
		"version 2":      mod(func(b []byte) []byte { b[19] = 2; return b }),
		"version 0":      mod(func(b []byte) []byte { b[19] = 0; return b }),
		"huge seq":       mod(func(b []byte) []byte { b[20] = 0x80; return b }),
		"bad type":       mod(func(b []byte) []byte { b[68] = 9; return b }),
		"string too big": mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[sessOff:], MaxSession+1); return b }),
		"length past end": mod(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[sessOff:], 200)
			return b
		}),
		"bad utf8":  mod(func(b []byte) []byte { b[sessOff+4] = 0xff; return b }),
		"oversized": append(bytes.Clone(good), make([]byte, MaxEntrySize)...),
	}
	for i := 0; i < len(good); i++ {
		if _, err := Decode(good[:i]); err == nil {
			t.Errorf("Decode(first %d bytes) succeeded", i)
		}
	}
	for name, b := range tests {
		got, err := Decode(b)
		if err == nil || got != nil {
			t.Errorf("%s: Decode = %v, %v; want an error", name, got, err)
			continue
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v does not wrap ErrMalformed", name, err)
		}
	}
	if _, err := Decode(tests["version 2"]); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("version 2: %v, want ErrUnknownVersion", err)
	}
}

func TestMaxEntrySizeHoldsTheLargestEntry(t *testing.T) {
	e := sampleDecision()
	e.Session = strings.Repeat("s", MaxSession)
	e.Principal = strings.Repeat("p", MaxPrincipal)
	e.Frontend = strings.Repeat("f", MaxFrontend)
	e.Action.Kind = strings.Repeat("k", MaxKind)
	e.Action.Resource = strings.Repeat("r", MaxResource)
	e.Proof = Proof{strings.Repeat("r", MaxRule), strings.Repeat("t", MaxTokenID), strings.Repeat("a", MaxAllowance), strings.Repeat("y", MaxApproval)}
	e.Text = strings.Repeat("x", MaxText)
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxEntrySize {
		t.Errorf("largest entry is %d bytes, MaxEntrySize %d", len(b), MaxEntrySize)
	}
	if _, err := Decode(b); err != nil {
		t.Error(err)
	}
}

func TestClipText(t *testing.T) {
	long := strings.Repeat("é", MaxText) // 2 bytes each
	got := ClipText(long + "\xff")
	if len(got) > MaxText || !strings.HasSuffix(got, "…") {
		t.Errorf("ClipText: %d bytes", len(got))
	}
	e := sampleOutcome()
	e.Text = got
	if _, err := e.Encode(); err != nil {
		t.Error(err)
	}
	if ClipText("ok\xff") != "ok\uFFFD" {
		t.Error("invalid UTF-8 not replaced")
	}
}

func FuzzDecode(f *testing.F) {
	for _, e := range []Entry{sampleDecision(), sampleOutcome()} {
		b, _ := e.Encode()
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(Domain + "\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			if e != nil {
				t.Fatal("entry returned with an error")
			}
			return
		}
		// Anything accepted is canonical: it re-encodes to the same bytes.
		b2, err := e.Encode()
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("non-canonical encoding accepted:\n%x\n%x", b, b2)
		}
	})
}
