package lineui

import (
	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/frontend"
)

// Notice describes, on one sanitized line, an event that only informs the
// user (frontend.Notice); ok is false for any other event.
func Notice(e api.Event) (line string, ok bool) { return frontend.Notice(e) }
