package lineui

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
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
