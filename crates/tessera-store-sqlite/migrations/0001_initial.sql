-- Times are Unix milliseconds (UTC); ids are text; secrets appear only as SHA-256 digests.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY NOT NULL,
    username            TEXT NOT NULL,
    username_normalized TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    roles               TEXT NOT NULL DEFAULT '[]',
    disabled            INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('cookie', 'token')),
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash         BLOB NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    remember_me         INTEGER NOT NULL DEFAULT 0,
    ip                  TEXT,
    user_agent          TEXT
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_by_absolute_expiry ON sessions (absolute_expires_at);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    ip         TEXT,
    user_agent TEXT,
    at         INTEGER NOT NULL,
    detail     TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE INDEX audit_log_by_user ON audit_log (user_id);

-- The audit log is append-only, whatever the application does.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
