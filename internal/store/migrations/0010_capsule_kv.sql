-- The key-value stores of capsules: one namespace per capsule id.
CREATE TABLE capsule_kv (
	capsule    TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      BLOB NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (capsule, key)
) STRICT, WITHOUT ROWID;
