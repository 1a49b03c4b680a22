-- Agent sessions: everything needed to resume one after a daemon restart.
CREATE TABLE sessions (
	id          TEXT PRIMARY KEY,
	workspace   TEXT NOT NULL,
	principal   TEXT NOT NULL,
	frontend    TEXT NOT NULL,
	title       TEXT NOT NULL DEFAULT '',
	mode        TEXT NOT NULL,
	model       TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	turns       INTEGER NOT NULL DEFAULT 0,
	spent       INTEGER NOT NULL DEFAULT 0, -- micro-dollars
	summary     TEXT NOT NULL DEFAULT '',
	messages    BLOB NOT NULL               -- JSON array of llm.Message
) STRICT;
CREATE INDEX sessions_workspace ON sessions(workspace, updated_at);
CREATE INDEX sessions_updated ON sessions(updated_at);
