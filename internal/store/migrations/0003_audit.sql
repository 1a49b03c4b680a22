-- The audit log (package audit). Rows are only ever inserted; what they
-- hold is covered by the entries' hashes and the signed checkpoints, so
-- `astrid audit verify` detects any change made here by other means.

-- audit_entries holds one row per entry. data is the entry's encoding (what
-- is hashed), hashes the RFC 6962 stored hashes written with it (32 bytes
-- each). The other columns repeat fields of data for queries; verify
-- checks that they agree with it.
CREATE TABLE audit_entries (
	seq      INTEGER PRIMARY KEY CHECK (seq >= 0),
	data     BLOB    NOT NULL,
	hashes   BLOB    NOT NULL,
	time     INTEGER NOT NULL,
	type     TEXT    NOT NULL,
	session  TEXT    NOT NULL,
	kind     TEXT    NOT NULL,
	decision TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_entries_session ON audit_entries(session, seq);
CREATE INDEX audit_entries_time ON audit_entries(time);

-- audit_checkpoints holds the signed checkpoint note of every commit,
-- keyed by the tree size it signs.
CREATE TABLE audit_checkpoints (
	size INTEGER PRIMARY KEY CHECK (size >= 0),
	note BLOB    NOT NULL
) STRICT;
