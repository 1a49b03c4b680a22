// Package rpc is JSON-RPC 2.0 over WebSocket for Astrid's daemon and its
// clients: the frame decoder, strict params decoding, the error codes, and
// Conn, a peer that serves calls and makes its own.
//
// # Framing
//
// One JSON-RPC object per WebSocket text message. DecodeFrame is the only
// parser of frames; it is strict (see its doc) and fuzzed. A frame larger
// than the limit (DefaultMaxFrame, 4 MiB) is read to its end, discarded and
// answered with -32600; a frame over four times the limit closes the
// connection with status 1009, so a peer cannot make the reader buffer
// without bound. A malformed frame is answered (-32700 or -32600, with the
// request's id when it could be read, else null) and the connection goes
// on: one bad frame costs one error reply, never the session.
//
// # Concurrency
//
// Calls are handled concurrently, each on its own goroutine, at most
// Options.MaxInflight at a time; notifications are handled in order on the
// read loop. Replies and notifications are written one frame at a time.
//
// # Errors
//
// Handlers return Go errors; ErrorFrom, the one place that maps them, turns
// them into codes (table at CodeParseError). Anything not in the table is
// an internal error: the peer gets "internal error" and the detail goes to
// the log, so no internal text leaks to a client.
//
// # Why not sourcegraph/jsonrpc2
//
// Its Conn closes the connection on any frame its ObjectStream cannot
// decode, so a malformed frame could not be answered with -32700 while the
// connection survives; it decodes requests through map[string]any and
// re-encodes params, accepts a missing or wrong "jsonrpc" member, and has
// no frame limit of its own. Messages already arrive framed from the
// WebSocket, so a strict decoder of one object per frame is smaller than an
// ObjectStream adapter around it.
package rpc
