-- capability_tokens holds signed capability tokens (package capability).
-- encoded is the authoritative signed encoding; the other columns copy its
-- fields for listing and lookups and are never trusted for authorization.
-- parent_id links attenuated tokens; revocation walks it downwards.
CREATE TABLE capability_tokens (
	id            TEXT PRIMARY KEY CHECK (length(id) = 32),
	parent_id     TEXT REFERENCES capability_tokens(id) CHECK (parent_id IS NULL OR length(parent_id) = 32),
	hash          BLOB NOT NULL CHECK (length(hash) = 32),
	encoded       BLOB NOT NULL CHECK (length(encoded) <= 16384),
	principal     TEXT NOT NULL,
	resource      TEXT NOT NULL,
	permissions   INTEGER NOT NULL,
	scope         TEXT NOT NULL CHECK (scope IN ('session', 'workspace', 'persistent')),
	binding       TEXT NOT NULL,
	single_use    INTEGER NOT NULL CHECK (single_use IN (0, 1)),
	issuer        TEXT NOT NULL,
	issued_at     INTEGER NOT NULL,
	not_before    INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	used_at       INTEGER,
	revoked_at    INTEGER,
	revoke_reason TEXT
) STRICT;
CREATE INDEX capability_tokens_parent ON capability_tokens(parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX capability_tokens_active ON capability_tokens(expires_at) WHERE revoked_at IS NULL AND used_at IS NULL;
