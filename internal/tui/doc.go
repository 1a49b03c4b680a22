// Package tui is the terminal chat UI of `astrid chat`, built with Bubble
// Tea, glamour and huh, and run by the astrid-tui executable (the astrid CLI
// execs it on a terminal, so that the CLI itself links none of it). It is
// thin: it turns the daemon's events (package api) into text and the
// human's keys into API calls, through the small Client interface it shares
// with line mode (package lineui), and holds no state of its own beyond
// what is on screen.
//
// # Wiring
//
// The caller connects to the daemon, creates or resumes a session, and
// subscribes to its events; then it runs one of the front ends:
//
//	opts := tui.Options{Client: c, Events: c.Events(), Session: info}
//	err := tui.Run(ctx, opts, os.Stdin, os.Stdout) // a terminal
//
// *client.Client satisfies Client. Events must carry the events of the
// session's subscription, in order, and be closed when the connection ends.
//
// # The terminal UI
//
// The transcript streams as text_delta events arrive (markdown rendered by
// glamour, code highlighted by chroma), with the model's reasoning dimmed
// and folded (ctrl+t unfolds it) and each tool call as a block that shows
// its name, resource and arguments when it starts and its status and output
// when it ends (ctrl+o unfolds the output). An approval_needed event opens a
// dialog with the exact resource, the risk, the reason and the pattern an
// allowance would cover; the keys o, s, w, a and d answer allow once, allow
// for the session, for the workspace, always, and deny. The dialog closes when
// the answer is accepted, or when approval_resolved says another frontend
// answered. elicitation_needed opens a form (huh) built from the request's
// flat JSON schema, or, for a URL request, shows the URL and its domain and
// asks whether to open it. Ctrl+C cancels the running turn; a second Ctrl+C
// within two seconds quits. Ctrl+Y copies the last answer to the clipboard
// with OSC 52. Lines starting with a slash are commands (/help lists them).
//
// # Untrusted text
//
// Everything the model, a tool or an MCP server sends is untrusted: before it
// reaches the terminal, escape sequences and other control characters are
// removed (Sanitize), so streamed text cannot move the cursor, rewrite the
// screen, set the clipboard or fake an approval dialog's frame.
package tui
