-- Token sessions: refresh tokens (by SHA-256), signing keys, revocations.

CREATE TABLE refresh_tokens (
    hash        BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    replaced_at INTEGER
) STRICT;

CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_replaced ON refresh_tokens (replaced_at) WHERE replaced_at IS NOT NULL;

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    algorithm   TEXT NOT NULL,
    private_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    expires_at  INTEGER
) STRICT;

CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('sid', 'jti')),
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX revocations_by_expiry ON revocations (expires_at);
