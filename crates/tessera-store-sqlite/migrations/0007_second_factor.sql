-- How each session's user proved who they are (a bit set: 1 password,
-- 2 one-time code, 4 hardware key); sessions from before are password ones.
ALTER TABLE sessions ADD COLUMN amr INTEGER NOT NULL DEFAULT 1;
ALTER TABLE oauth_codes ADD COLUMN amr INTEGER NOT NULL DEFAULT 1;

-- TOTP factors: the secret sealed under the key-encryption key; pending
-- until confirmed (enabled_at); the last time step accepted, so a code is
-- used once (0: none yet).
CREATE TABLE totp_factors (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    enabled_at INTEGER,
    last_step  INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Recovery codes, by salted SHA-256 only; a used code is deleted.
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL CHECK (length(code_hash) = 32),
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- Sign-ins waiting for their second factor, by the token's hash only.
CREATE TABLE mfa_challenges (
    token_hash           BLOB PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip                   TEXT,
    amr                  INTEGER NOT NULL,
    next                 TEXT NOT NULL,
    password_fingerprint BLOB NOT NULL CHECK (length(password_fingerprint) = 32),
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL
) STRICT;

CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at);
