-- Allowances recorded by "Allow Session" (bound to a session id) and "Allow
-- Workspace" (bound to a workspace root) answers.
CREATE TABLE allowances (
	id          TEXT PRIMARY KEY,
	scope       TEXT NOT NULL CHECK (scope IN ('session', 'workspace')),
	binding     TEXT NOT NULL, -- the session id or the workspace root
	pattern     TEXT NOT NULL, -- a capability resource pattern
	permission  TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	approval    TEXT NOT NULL DEFAULT '' -- hex hash of the audit entry of the approval
) STRICT;
CREATE INDEX allowances_binding ON allowances(scope, binding);

-- The deferred approval queue: actions nobody could answer in time.
-- status: pending -> approved | denied; approved -> executing -> done.
CREATE TABLE deferred (
	id          TEXT PRIMARY KEY,
	session_id  TEXT NOT NULL,
	request     TEXT NOT NULL, -- JSON approval.Request
	action      BLOB NOT NULL, -- the action to run once approved (opaque here)
	status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'executing', 'done')),
	created_at  INTEGER NOT NULL,
	resolved_at INTEGER,
	answer      TEXT,          -- JSON approval.Answer
	result      TEXT           -- outcome summary after execution
) STRICT;
CREATE INDEX deferred_status ON deferred(status, created_at);
CREATE INDEX deferred_session ON deferred(session_id);
