// Package lineui is the plain-text front end of a chat session: line mode
// for pipes and scripts (RunLines), the event Printer that `astrid exec`
// and the first-run demo share with it, and what the terminal UI (package
// tui) shares with both: the Client interface and Options, the slash
// commands, the wording of approvals, decisions and tool calls, and
// Sanitize. It links no terminal UI library, so the astrid CLI can use it
// and stay small and fast to start.
//
// # Line mode
//
// RunLines is a frontend.Frontend over a reader and a writer, driven by
// frontend.Run: it reads lines from its input and sends each as the user's
// input, one turn at a time; it prints the streamed answer as it arrives,
// tool calls as one-line notes, and for an approval prints the request and
// reads the answer (o, s, w, a or d) from the next input line. An MCP
// server's form (and a sampling request's) is asked field by field, and a
// URL to open is shown with its domain. At the end of the input it waits
// for the running turn to finish and returns; an approval still
// unanswered then is denied, because a missing answer is a "no", and an
// unanswered form or URL is cancelled or declined.
//
// # Untrusted text
//
// Everything the model, a tool or an MCP server sends is untrusted: before it
// reaches the terminal, escape sequences and other control characters are
// removed (Sanitize, which is frontend.Sanitize; frontend.Run hands line
// mode output already sanitized), so streamed text cannot move the cursor,
// rewrite the screen, set the clipboard or fake an approval prompt.
package lineui
