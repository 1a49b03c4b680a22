package llm

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

type sseEvent struct{ Name, Data string }

func readAll(r *SSEReader) ([]sseEvent, error) {
	var out []sseEvent
	for {
		name, data, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, sseEvent{name, string(data)})
	}
}

func TestSSEReader(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []sseEvent
		err  error
	}{
		{"anthropic", "event: ping\ndata: {\"type\": \"ping\"}\n\nevent: message_stop\ndata: {}\n\n", []sseEvent{{"ping", `{"type": "ping"}`}, {"message_stop", "{}"}}, io.EOF},
		{"openai", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []sseEvent{{"", `{"a":1}`}, {"", "[DONE]"}}, io.EOF},
		{"crlf, comments, no space, other fields", ": keep-alive\r\nid: 7\r\nretry: 10\r\nevent:x\r\ndata:1\r\n\r\n", []sseEvent{{"x", "1"}}, io.EOF},
		{"multi-line data", "data: a\ndata:\ndata: b\n\n", []sseEvent{{"", "a\n\nb"}}, io.EOF},
		{"blank lines between events", "\n\n\ndata: a\n\n\n\ndata: b\n\n", []sseEvent{{"", "a"}, {"", "b"}}, io.EOF},
		{"an event open at the end is dropped", "data: a\n\ndata: {\"half\":", []sseEvent{{"", "a"}}, io.EOF},
		{"an event without its blank line is dropped", "data: a\n\ndata: b\n", []sseEvent{{"", "a"}}, io.EOF},
		{"only a colon after the field", "data:\n\n", []sseEvent{{"", ""}}, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time too: framing must not depend on read sizes.
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				got, err := readAll(NewSSEReader(r, 0))
				if diff := cmp.Diff(tc.want, got); diff != "" || !errors.Is(err, tc.err) {
					t.Errorf("events (-want +got):\n%s\nerror %v", diff, err)
				}
			}
		})
	}
}

func TestSSEReaderBounds(t *testing.T) {
	long := "data: " + strings.Repeat("x", 100) + "\n\n"
	if _, err := readAll(NewSSEReader(strings.NewReader(long), 50)); !errors.Is(err, ErrSSETooLarge) {
		t.Errorf("long line: %v", err)
	}
	many := strings.Repeat("data: "+strings.Repeat("x", 20)+"\n", 10) + "\n"
	if _, err := readAll(NewSSEReader(strings.NewReader(many), 100)); !errors.Is(err, ErrSSETooLarge) {
		t.Errorf("many lines: %v", err)
	}
	// A line longer than the bufio buffer but within the bound is fine.
	big := strings.Repeat("y", 100<<10)
	got, err := readAll(NewSSEReader(strings.NewReader("data: "+big+"\n\n"), 0))
	if len(got) != 1 || got[0].Data != big || !errors.Is(err, io.EOF) {
		t.Errorf("%d events, error %v", len(got), err)
	}
	boom := errors.New("connection reset")
	if _, err := readAll(NewSSEReader(io.MultiReader(strings.NewReader("data: a\n\n"), iotest.ErrReader(boom)), 0)); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("event: a\ndata: 1\n\ndata: 2\r\n\r\n: c\n"), 16)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max <= 0 || max > 1<<16 {
			max = 64
		}
		r := NewSSEReader(strings.NewReader(string(in)), max)
		for range len(in) + 1 {
			_, data, err := r.Next()
			if err != nil {
				return
			}
			if len(data) > max {
				t.Fatalf("event of %d bytes, bound %d", len(data), max)
			}
		}
		t.Fatal("more events than bytes")
	})
}
