package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/astrid-runtime/astrid/internal/security"
)

// readFile is read_file{file_path, offset, limit}.
type readFile struct{ limits Limits }

type readFileArgs struct {
	FilePath string
	Offset   int
	Limit    int
}

const maxReadLimit = 100_000

func (t readFile) Spec() Spec {
	return Spec{
		Name: "read_file",
		Description: fmt.Sprintf(`Read a text file. Lines are numbered like cat -n: the line number right-aligned in 6 columns, a tab, then the line. A last line in square brackets gives the path, the lines shown, whether more follow, and the encoding.
By default up to %d lines from the start are shown; use offset (1-based line number) and limit to read other parts of long files. Lines longer than %d characters are cut and marked. Binary files (a NUL byte in the first 8 KiB) are refused.
A relative file_path is relative to the workspace root.`, t.limits.ReadLines, t.limits.LineChars),
		InputSchema: json.RawMessage(fmt.Sprintf(`{
  "type": "object",
  "properties": {
    "file_path": {"type": "string", "description": "Path of the file to read (absolute, or relative to the workspace root)."},
    "offset": {"type": "integer", "minimum": 1, "description": "First line to show (1-based). Default 1."},
    "limit": {"type": "integer", "minimum": 1, "maximum": %d, "description": "Number of lines to show. Default %d."}
  },
  "required": ["file_path"],
  "additionalProperties": false
}`, maxReadLimit, t.limits.ReadLines)),
		ReadOnly: true,
	}
}

func parseReadFile(raw []byte) (readFileArgs, error) {
	var a readFileArgs
	err := decodeArgs("read_file", raw,
		field{name: "file_path", required: true, dst: &a.FilePath},
		field{name: "offset", dst: &a.Offset},
		field{name: "limit", dst: &a.Limit},
	)
	switch {
	case err != nil:
		return readFileArgs{}, err
	case a.FilePath == "":
		return readFileArgs{}, &ArgError{Tool: "read_file", Field: "file_path", Msg: "is empty"}
	case a.Offset < 0:
		return readFileArgs{}, &ArgError{Tool: "read_file", Field: "offset", Msg: fmt.Sprintf("must be a line number >= 1, got %d", a.Offset)}
	case a.Limit < 0 || a.Limit > maxReadLimit:
		return readFileArgs{}, &ArgError{Tool: "read_file", Field: "limit", Msg: fmt.Sprintf("must be between 1 and %d, got %d", maxReadLimit, a.Limit)}
	}
	return a, nil
}

func (t readFile) Prepare(s security.Session, raw json.RawMessage) (security.Action, security.Executor, error) {
	args, err := parseReadFile(raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	a, err := fileAction("read_file", "file_path", security.FileRead, s, args.FilePath, raw)
	if err != nil {
		return security.Action{}, nil, err
	}
	return a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return t.run(a.Path, args)
	}), nil
}

// run reads path, the resolved path the interceptor judged.
func (t readFile) run(path string, args readFileArgs) ([]byte, error) {
	f, fi, err := openRegular(-1, path, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	offset := max(args.Offset, 1)
	limit := args.Limit
	if limit == 0 {
		limit = t.limits.ReadLines
	}
	br := bufio.NewReaderSize(io.LimitReader(f, t.limits.ReadBytes), 64<<10)
	head, _ := br.Peek(binarySniff)
	enc := "UTF-8"
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return nil, failf("%s is UTF-16 encoded; read_file shows UTF-8 text only", path)
	case isBinary(head):
		return nil, failf("%s is a binary file (it has a NUL byte in its first 8 KiB); read_file shows text only", path)
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		enc = "UTF-8 with a byte order mark"
		br.Discard(3)
	}
	maxLine := t.limits.LineChars * utf8.UTFMax
	var out strings.Builder
	out.Grow(int(min(fi.Size()+fi.Size()/4+64, 4<<20))) // the text plus line numbers
	var line []byte
	n, shown, crlf, valid, more := 0, 0, false, true, false
	for {
		var full int // the line's length in bytes, without its newline
		var eof bool
		line, full, eof, err = readLine(br, line[:0], maxLine)
		if err != nil {
			return nil, err
		}
		if eof && full == 0 && len(line) == 0 {
			break
		}
		n++
		if n < offset {
			if eof {
				break
			}
			continue
		}
		if shown == limit {
			more = true
			break
		}
		if bytes.HasSuffix(line, []byte("\r")) && full == len(line) {
			line = line[:len(line)-1]
			full--
			crlf = true
		}
		text, cut := clipRunes(line, t.limits.LineChars)
		if !utf8.Valid(text) {
			valid = false
			text = bytes.ToValidUTF8(text, []byte("\uFFFD"))
		}
		writeLineNo(&out, n)
		out.Write(text)
		if cut || full > len(line) {
			fmt.Fprintf(&out, " … [line %d cut: %d bytes in full]", n, full)
		}
		out.WriteByte('\n')
		shown++
		if eof {
			break
		}
	}
	capped := fi.Size() > t.limits.ReadBytes && !more
	if !valid {
		enc = "not valid UTF-8 (invalid bytes shown as \uFFFD)"
	}
	if crlf {
		enc += ", CRLF line endings (shown without the CR)"
	}
	switch {
	case n == 0:
		fmt.Fprintf(&out, "[%s: empty file]", displayPath(path))
	case shown == 0 && capped:
		return nil, failf("offset %d is beyond the first %d lines, which is all read_file reads of this %d-byte file (the first %d bytes)", offset, n, fi.Size(), t.limits.ReadBytes)
	case shown == 0:
		return nil, failf("offset %d is past the end of %s, which has %d lines", offset, path, n)
	case more:
		fmt.Fprintf(&out, "[%s: lines %d-%d; more follow, continue with offset=%d · %s]", displayPath(path), offset, n-1, n, enc)
	case capped:
		fmt.Fprintf(&out, "[%s: lines %d-%d; stopped after the first %d bytes of a %d-byte file · %s]", displayPath(path), offset, n, t.limits.ReadBytes, fi.Size(), enc)
	default:
		fmt.Fprintf(&out, "[%s: lines %d-%d of %d · %s]", displayPath(path), offset, n, n, enc)
	}
	return []byte(out.String()), nil
}

// writeLineNo writes n right-aligned in 6 columns and a tab, as cat -n
// does (fmt.Fprintf("%6d\t") without its cost per line).
func writeLineNo(b *strings.Builder, n int) {
	var buf [24]byte
	d := strconv.AppendInt(buf[:0], int64(n), 10)
	for i := len(d); i < 6; i++ {
		b.WriteByte(' ')
	}
	b.Write(d)
	b.WriteByte('\t')
}

// readLine reads one line into buf, keeping at most keep bytes of it. It
// returns the kept bytes (without the newline), the line's full length,
// and whether the input ended.
func readLine(br *bufio.Reader, buf []byte, keep int) ([]byte, int, bool, error) {
	full := 0
	for {
		chunk, err := br.ReadSlice('\n')
		body := bytes.TrimSuffix(chunk, []byte("\n"))
		full += len(body)
		if room := keep - len(buf); room > 0 {
			buf = append(buf, body[:min(room, len(body))]...)
		}
		switch err {
		case nil:
			return buf, full, false, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			return buf, full, true, nil
		default:
			return nil, 0, false, err
		}
	}
}

// clipRunes keeps the first n runes of b and says whether it cut.
func clipRunes(b []byte, n int) ([]byte, bool) {
	if len(b) <= n {
		return b, false
	}
	i, count := 0, 0
	for i < len(b) && count < n {
		_, size := utf8.DecodeRune(b[i:])
		i += size
		count++
	}
	return b[:i], i < len(b)
}

// displayPath shows a path as is, or quoted when it holds control
// characters or invalid UTF-8 (so that a file name cannot forge lines of
// output).
func displayPath(p string) string {
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return fmt.Sprintf("%q", p)
		}
	}
	return p
}
