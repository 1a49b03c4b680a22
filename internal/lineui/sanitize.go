package lineui

import "github.com/astrid-runtime/astrid/internal/frontend"

// Sanitize returns s fit to print on a terminal (frontend.Sanitize: escape
// sequences, control characters but newline and tab, and bidirectional
// overrides removed).
func Sanitize(s string) string { return frontend.Sanitize(s) }

// SanitizeLine is Sanitize for text shown on one line (frontend.SanitizeLine).
func SanitizeLine(s string) string { return frontend.SanitizeLine(s) }
