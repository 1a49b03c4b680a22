// Package capability implements Astrid's signed capability tokens: issuing,
// attenuating, verifying, matching and revoking them.
//
// A token says: principal P may perform permissions X on resources matching
// pattern R, between two instants, within a scope (one session, one
// workspace, or everywhere), possibly only once. The runtime signs it with
// its ed25519 key when a human answers "Allow Session / Workspace / Always";
// the security interceptor later looks for a token that covers an action
// (Service.FindCovering, Service.Authorize) and verifies it on every use.
//
// # Encoding (version 1)
//
// All integers are big-endian. str16 is a uint16 length followed by that
// many bytes; bytes8 is a uint8 length followed by that many bytes. The
// encoding of a token is
//
//	token = body || signature
//
//	body:
//	  field         type      constraints
//	  version       uint8     1 (any other value: ErrUnknownVersion)
//	  id            [16]byte  random, not all zero
//	  principal     str16     1..256 bytes, valid UTF-8, no NUL
//	  resource      str16     1..4096 bytes, a valid pattern (see Matching)
//	  permissions   uint16    bit set, nonzero; bit 0 read, 1 write,
//	                          2 execute, 3 delete, 4 invoke, 5 list,
//	                          6 create; bits 7..15 must be zero
//	  issued_at     int64     Unix seconds, > 0
//	  not_before    int64     Unix seconds, > 0
//	  expires_at    int64     Unix seconds, > issued_at and > not_before
//	  scope         uint8     1 session, 2 workspace, 3 persistent
//	  binding       str16     session: the session id, 1..256 bytes;
//	                          workspace: the workspace root, an absolute
//	                          clean path of 1..4096 bytes;
//	                          persistent: empty
//	  flags         uint8     bit 0 single_use, bit 1 allow_dynamic;
//	                          bits 2..7 must be zero
//	  issuer        str16     the signing key's ID: exactly 32 lowercase
//	                          hex digits (see package keys)
//	  approval      bytes8    0..64 bytes: hash of the audit entry recording
//	                          the approval that created the token
//	  parent        [16]byte  id of the token this one was attenuated from;
//	                          all zero when there is none; never equal to id
//	  signature     [64]byte  ed25519 signature
//
// The encoding is canonical: each token has exactly one encoding, the
// decoder rejects trailing bytes, and a token never exceeds MaxEncodedSize
// (16 KiB). The signature covers
//
//	"astrid-capability-token-v1" || 0x00 || body
//
// where the domain separation string keeps a token signature from being
// valid as any other message the runtime key signs (audit checkpoints).
// The token hash, used to cache verification results, is SHA-256 of the
// whole encoding (body and signature).
//
// Decode parses every field with its bound before it builds a Token, then
// validates the cross-field rules; it never panics and never returns a
// partially filled token.
//
// # Verification
//
// Every use of a token (Service.Use, Service.Authorize) checks, in order,
// and stops at the first failure: the encoding, the issuer (a trusted key),
// the signature, the time window (not_before - skew <= now < expires_at +
// skew), the scope binding (session id or workspace root equal to the
// caller's), that the store holds this very token and has not revoked it,
// and for a single-use token that it is consumed now, atomically in one
// UPDATE statement so that two concurrent uses (in one process or several)
// cannot both pass. Failures are *VerifyError values whose Reason is one of
// the Err* sentinels. Any error means "not authorized".
//
// The signature check is cached by token hash (Verifier); revoking a token
// drops the cache, and revocation is re-read from the store on every use,
// so a revocation by another process (the CLI) is seen at once.
//
// # Matching
//
// Resources are URIs; patterns are the same URIs with globs. There is no
// percent-decoding: every byte after the scheme is taken as written. The
// only glob character is '*'; there is no escape and no '?' or '[...]'.
//
//	file:///abs/path   segments split on '/'. '*' matches within one
//	                   segment; a segment "**" matches zero or more whole
//	                   segments ("/p/**" matches /p itself and everything
//	                   under it). Paths must be absolute; they are cleaned
//	                   lexically (duplicate and trailing slashes, "."),
//	                   and any ".." segment or NUL byte makes the resource or
//	                   pattern invalid. Callers pass canonical paths
//	                   (symlinks resolved).
//	exec://<line>      the whole command line; '*' matches any characters
//	                   (spaces included) and the pattern must match the
//	                   entire line. NUL is invalid.
//	net://host:port    host labels split on '.', globbed like path segments
//	                   ("*.github.com", "**.github.com"); hosts are
//	                   lowercased. The port is a number 1..65535; a pattern
//	                   may use "*" for any port. IPv6 literals in brackets.
//	mcp://server/tool  segments split on '/', globbed like paths; resources
//	capsule://id/cap   have exactly two non-empty segments.
//
// NOTE: an exec pattern such as "git status*" also matches
// "git status; rm -rf ~". Tokens authorize; the policy step of the
// interceptor, which parses the shell command, runs before them and refuses
// dynamic or compound commands unless the token has allow_dynamic.
//
// # Attenuation
//
// A child token (for a sub-agent) is issued from a parent only when it is
// provably no wider (CheckAttenuation): the same principal; a resource
// pattern that is equal, or a literal the parent matches, or a
// prefix-extension of a parent ending in "/**" (exec: a parent "L*"); a
// subset of the permissions; a time window inside the parent's; the same
// scope and binding, or any scope under a persistent parent; single_use kept;
// allow_dynamic not added. Attenuating counts as a use of the parent (a
// single-use parent is consumed). The child records its parent; revoking a
// token revokes all its descendants in the same transaction, and the store
// refuses a child whose parent is revoked.
package capability
