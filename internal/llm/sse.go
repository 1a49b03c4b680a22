package llm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxSSEEvent bounds one server-sent event (all its data lines together).
// It leaves room for a tool call of MaxToolArguments sent whole, JSON-escaped.
const MaxSSEEvent = 2*MaxToolArguments + 64<<10

// SSEReader reads a text/event-stream response body as the HTML standard
// describes it (section 9.2.6, "Interpreting an event stream"): lines end
// in LF or CRLF; "event:" names the event, "data:" lines are joined with
// LF; a line starting with ":" is a comment; a blank line dispatches the
// event. Other fields (id, retry) are ignored. An event still open at the
// end of the stream is discarded, as the standard says: a cut stream never
// yields half an event.
//
// The providers decode the events themselves instead of through the SDKs'
// stream types: that keeps the cost of a delta to a few microseconds and
// lets them tell a clean end ("[DONE]") from a cut one.
type SSEReader struct {
	r     *bufio.Reader
	max   int
	event []byte
	data  []byte
	line  []byte
}

// NewSSEReader returns a reader of r whose events may be at most max bytes
// (MaxSSEEvent when max <= 0).
func NewSSEReader(r io.Reader, max int) *SSEReader {
	if max <= 0 {
		max = MaxSSEEvent
	}
	return &SSEReader{r: bufio.NewReaderSize(r, 32<<10), max: max}
}

// ErrSSETooLarge is returned for an event longer than the reader's bound.
var ErrSSETooLarge = errors.New("server-sent event too large")

// Next returns the next event's name (empty when the event named none) and
// data. The data is valid until the next call. At the end of the stream it
// returns io.EOF; a read error (a reset connection, a cancelled request) is
// returned as it is.
func (s *SSEReader) Next() (event string, data []byte, err error) {
	s.event = s.event[:0]
	s.data = s.data[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return "", nil, err
		}
		if len(line) == 0 {
			if !hasData && len(s.event) == 0 {
				continue
			}
			return string(s.event), s.data, nil
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(name) {
		case "": // a comment
		case "event":
			s.event = append(s.event[:0], value...)
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			hasData = true
			if len(s.data)+len(value) > s.max {
				return "", nil, fmt.Errorf("%w: more than %d bytes", ErrSSETooLarge, s.max)
			}
			s.data = append(s.data, value...)
		}
	}
}

// readLine returns one line without its line ending. A stream that ends
// without a final line ending returns io.EOF, dropping the partial line:
// the event it belongs to was never dispatched.
func (s *SSEReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(s.line)+len(chunk) > s.max+2 {
			return nil, fmt.Errorf("%w: a line of more than %d bytes", ErrSSETooLarge, s.max)
		}
		if err == nil {
			var line []byte
			if len(s.line) == 0 {
				line = chunk
			} else {
				s.line = append(s.line, chunk...)
				line = s.line
			}
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			s.line = append(s.line, chunk...)
			continue
		}
		return nil, err
	}
}
