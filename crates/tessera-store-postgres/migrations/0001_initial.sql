-- Times are Unix milliseconds (UTC); ids are text; secrets appear only as SHA-256 digests.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    username            TEXT NOT NULL,
    username_normalized TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    roles               TEXT NOT NULL DEFAULT '[]',
    disabled            BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    kind                TEXT NOT NULL CHECK (kind IN ('cookie', 'token')),
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash         BYTEA NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    created_at          BIGINT NOT NULL,
    last_seen_at        BIGINT NOT NULL,
    idle_expires_at     BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    remember_me         BOOLEAN NOT NULL DEFAULT FALSE,
    ip                  TEXT,
    user_agent          TEXT
);

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_by_absolute_expiry ON sessions (absolute_expires_at);

CREATE TABLE refresh_tokens (
    hash        BYTEA PRIMARY KEY CHECK (length(hash) = 32),
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    replaced_at BIGINT
);

CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_replaced ON refresh_tokens (replaced_at) WHERE replaced_at IS NOT NULL;

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    expires_at  BIGINT
);

CREATE TABLE revocations (
    seq        BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('sid', 'jti')),
    value      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX revocations_by_expiry ON revocations (expires_at);

CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    ip         TEXT,
    user_agent TEXT,
    at         BIGINT NOT NULL,
    detail     JSONB NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_log_by_user ON audit_log (user_id);

-- The audit log is append-only, whatever the application does.
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
