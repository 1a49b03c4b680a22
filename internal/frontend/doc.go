// Package frontend is what every chat frontend of a session shares — line
// mode, the terminal UI, and the Telegram, Discord and web frontends to
// come: the Frontend interface a frontend implements, and Run, the driver
// that connects one session's event stream and the daemon API to it.
//
// # The contract
//
// A Frontend is the user's side only: it reads the user's input (Input),
// shows output (Show: the streamed answer, tool calls, notices, errors,
// the turn's state) and puts the questions of approvals to the user
// (Approve). Optional capabilities are found by type assertion: forms
// (FormEliciter), URLs to open (URLEliciter) and interrupting the running
// turn (Interrupter). Run does all the talking to the daemon: sendInput,
// cancelTurn, approvalResponse and elicitationResponse, keeping track of
// the turn (busy or idle), of requests answered elsewhere, and of errors.
//
// Several frontends may watch one session. The first valid answer to an
// approval wins: when another frontend answers first (approval_resolved),
// Run cancels the context of the open prompt and shows the outcome; an
// answer that loses the race (api.ErrConflict) is told, not an error.
//
// # Failing closed
//
// Nothing is ever approved unless the frontend returned that decision for
// that request. A failing or cancelled Approve sends no answer: the daemon
// defers the action at its deadline (astrid approvals answers it later).
// A failing elicitation prompt is answered "cancel", which shares nothing
// with the server. A failing frontend call is shown as an error and never
// ends Run.
//
// # Untrusted text: Run sanitizes
//
// Everything the model, a tool or an MCP server sends is untrusted. Run
// sanitizes every string it hands to a Frontend (Sanitize, or SanitizeLine
// for one-line fields): escape sequences, control characters other than
// newline and tab, and Unicode bidirectional overrides are removed, so a
// terminal frontend can print them as they are. Sanitizing is not
// escaping: a frontend that renders markup (HTML, Markdown) must still
// escape the text for it. Values a frontend sends back (a form's choices)
// are the server's own, unchanged.
//
// This package links no UI library and nothing of the runtime: only the
// api types, so the thin astrid CLI and the bots can use it.
package frontend
