// Package audit is Astrid's tamper-evident audit log: one append-only log for
// the whole runtime (every session, every frontend), kept as an RFC 6962
// Merkle tree whose roots the runtime signs.
//
// Every action the security interceptor judges produces a decision entry
// (who asked for what, and whether and why it was allowed, denied or
// deferred). An action that then runs produces a second, outcome entry that
// names the decision entry by sequence number and hash. The caller runs an
// action only after [Log.Append] of its decision returned without error: the
// log fails closed.
//
// This comment is the specification of what is stored, hashed and signed.
//
// # Entry encoding, version 1
//
// An entry is encoded deterministically; the encoding is what the log hashes
// and stores, and decoding then re-encoding any accepted input yields the
// same bytes. Integers are big-endian. A string is a uint32 length followed
// by that many bytes of valid UTF-8 (str below); a hash is 32 raw bytes.
//
//	offset  size  field
//	0       19    domain      "astrid/audit/entry\x00" (domain separation)
//	19      1     version     1
//	20      8     seq         uint64, the entry's 0-based position in the log (≤ 2^63-1)
//	28      8     time        int64, Unix time in nanoseconds (UTC), set by the log
//	36      32    prev        hash of entry seq-1; 32 zero bytes for seq 0
//	68      1     type        1 decision, 2 outcome
//	69      ...   session     str, ≤ 256 bytes
//	        ...   principal   str, ≤ 256 bytes
//	        ...   frontend    str, ≤ 64 bytes
//	        ...   kind        str, ≤ 64 bytes (action kind, e.g. "write_file")
//	        ...   resource    str, ≤ 4096 bytes (resource URI)
//	        32    args_hash   SHA-256 of the action's full arguments
//	        1     decision    0 none (outcome), 1 allowed, 2 denied, 3 deferred
//	        ...   rule        str, ≤ 256 bytes (policy rule that decided)
//	        ...   token_id    str, ≤ 256 bytes (capability token used)
//	        ...   allowance   str, ≤ 256 bytes (allowance id used)
//	        ...   approval    str, ≤ 64 bytes (the human's answer)
//	        8     ref_seq     uint64, outcome: seq of its decision entry; else 0
//	        32    ref_hash    outcome: hash of its decision entry; else zeros
//	        1     status      0 none (decision), 1 success, 2 error
//	        32    output_hash outcome: SHA-256 of the full output; else zeros
//	        ...   text        str, ≤ 4096 bytes (decision reason or outcome message)
//
// Every field is present exactly once, in this order; nothing follows text.
// An encoded entry is at most [MaxEntrySize] bytes. Decoders reject, with an
// error and never a panic, input that is longer than that, truncated, has
// trailing bytes, another domain or an unknown version, a string over its
// bound or not UTF-8, an out-of-range enumeration, or fields that contradict
// the type (see [Entry.Validate]). A future version 2 changes the version
// byte; version 1 decoders refuse it rather than guess.
//
// # Hashes and the tree
//
// An entry's hash is its RFC 6962 leaf hash, SHA-256(0x00 || encoding)
// (RFC 6962, section 2.1; [tlog.RecordHash]). The entries, in seq order, are
// the leaves of an RFC 6962 Merkle tree; interior nodes are
// SHA-256(0x01 || left || right). Each entry also stores the tree's "stored
// hashes" that became computable when it was appended ([tlog.StoredHashes]:
// its leaf hash, then one hash per subtree it completed, 32 bytes each,
// 1 + the number of trailing one bits of seq hashes in all), so tree hashes
// and inclusion and consistency proofs (RFC 6962, section 2.1.1 and 2.1.2)
// need O(log n) reads. The prev field additionally makes the entries a hash
// chain a reader can walk without the tree.
//
// # Checkpoints
//
// A checkpoint is a signed statement of the tree's size and root hash, in
// the signed-note format of golang.org/x/mod/sumdb/note. Its text is three
// lines (the C2SP tlog-checkpoint body, [tlog.FormatTree] with the origin as
// the first line):
//
//	astrid/<runtime key id>
//	<tree size, decimal>
//	<root hash, standard base64>
//
// followed by a blank line and one signature line
// "— astrid/<key id> <base64(key hash || ed25519 signature)>", where the key
// hash is the note package's hash of the name and the 0x01-prefixed ed25519
// public key. The origin must equal the name of the key that signed it. A
// checkpoint note is at most [MaxCheckpointSize] bytes.
//
// Every commit of appended entries ends with a checkpoint of the new tree
// size in the same transaction, so no stored entry is ever unsigned: the
// writer batches concurrent appends (group commit) and signs once per batch.
//
// # Verification
//
// [Verify] recomputes, streaming in seq order with memory bounded by
// O(log n): every entry's encoding and hash, its prev link, its stored
// hashes, each outcome's reference to its decision, every checkpoint's
// signature (against [keys.Trusted]) and root, and that the newest
// checkpoint covers every entry. Given a checkpoint the user kept elsewhere,
// it proves with an RFC 6962 consistency proof that the log still extends
// it, which detects truncation and rewritten history even when the attacker
// also rewrote the stored checkpoints. It reports the first bad sequence
// number and what is wrong as an [*Error].
//
// NOTE: the log makes tampering evident, not impossible: someone who can
// write $ASTRID_HOME/state.db can delete it. A checkpoint kept elsewhere is
// what turns "the log looks fine" into "the log still holds what it held".
package audit
