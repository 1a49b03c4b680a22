package frontend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/astrid-runtime/astrid/internal/api"
)

// Sanitize returns s fit to print on a terminal: it removes escape
// sequences and every control character but newline and tab, replaces
// invalid UTF-8, and drops the Unicode bidirectional overrides that can make
// text read differently from what it is.
//
// NOTE: model output, tool output and MCP messages are untrusted. Without
// this, a model could emit OSC 52 (write the clipboard), move the cursor to
// paint a fake approval dialog, or retitle the window.
func Sanitize(s string) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean && utf8.ValidString(s) {
		return s
	}
	// Whole sequences go first, so that no "[31m" is left behind when
	// their ESC is dropped; then every control character that remains.
	s = ansi.Strip(strings.ToValidUTF8(s, "\uFFFD"))
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if !unsafeRune(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SanitizeLine is Sanitize for text shown on one line: newlines and tabs
// become spaces.
func SanitizeLine(s string) string {
	s = Sanitize(s)
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		return r
	}, s)
}

func unsafeRune(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f: // C0 controls, ESC among them, and DEL
		return true
	case r >= 0x80 && r <= 0x9f: // C1 controls (CSI, OSC, DCS as one rune)
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e || r == 0x200f:
		return true // bidirectional embeddings, overrides, isolates and marks
	case r == utf8.RuneError:
		return false
	}
	return !unicode.IsPrint(r) && !unicode.IsSpace(r) && !unicode.Is(unicode.Mn, r) && r != 0x200d
}

// Clip shortens s to n runes, marking the cut.
func Clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// ApprovalTitle is the request's one-line summary.
func ApprovalTitle(r api.ApprovalRequest) string {
	if r.Summary != "" {
		return SanitizeLine(r.Summary)
	}
	return SanitizeLine(r.Kind + " " + r.Resource)
}

// ToolArgs renders a tool call's arguments on one line, at most n runes.
func ToolArgs(raw json.RawMessage, n int) string {
	if len(raw) == 0 {
		return ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return ""
		}
		return Clip(SanitizeLine(b.String()), n)
	}
	// Keep the order the model wrote them in.
	dec := json.NewDecoder(bytes.NewReader(raw))
	var parts []string
	if _, err := dec.Token(); err == nil {
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				break
			}
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				break
			}
			k, _ := t.(string)
			var s string
			if json.Unmarshal(v, &s) == nil {
				parts = append(parts, fmt.Sprintf("%s=%q", k, Clip(s, 60)))
			} else {
				var b bytes.Buffer
				_ = json.Compact(&b, v)
				parts = append(parts, k+"="+Clip(b.String(), 60))
			}
		}
	}
	return Clip(SanitizeLine(strings.Join(parts, " ")), n)
}

// CountLines counts the lines of s as shown.
func CountLines(s string) int {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return 0
	}
	return strings.Count(s, "\n") + 1
}

// SendError words a failed sendInput for the user.
func SendError(err error) string {
	switch {
	case errors.Is(err, api.ErrConflict):
		return "a turn is already running in this session (another frontend?); wait for it"
	case errors.Is(err, api.ErrUnavailable):
		return "this daemon cannot run turns: " + SanitizeLine(err.Error())
	case errors.Is(err, api.ErrBudgetExceeded):
		return "the budget is spent: " + SanitizeLine(err.Error())
	}
	return "sending failed: " + SanitizeLine(err.Error())
}

// USD formats dollars with four decimals.
func USD(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 4, 64) }
