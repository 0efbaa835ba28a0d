-- How each session's user proved who they are (a bit set: 1 password,
-- 2 one-time code, 4 hardware key); sessions from before are password ones.
ALTER TABLE sessions ADD COLUMN amr BIGINT NOT NULL DEFAULT 1;
ALTER TABLE oauth_codes ADD COLUMN amr BIGINT NOT NULL DEFAULT 1;

-- TOTP factors: the secret sealed under the key-encryption key; pending
-- until confirmed (enabled_at); the last time step accepted, so a code is
-- used once (0: none yet).
CREATE TABLE totp_factors (
    user_id    UUID PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    enabled_at TIMESTAMPTZ,
    last_step  BIGINT NOT NULL DEFAULT 0
);

-- Recovery codes, by salted SHA-256 only; a used code is deleted.
CREATE TABLE recovery_codes (
    user_id   UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL CHECK (length(code_hash) = 32),
    PRIMARY KEY (user_id, code_hash)
);

-- Sign-ins waiting for their second factor, by the token's hash only.
CREATE TABLE mfa_challenges (
    token_hash           BYTEA PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
    user_id              UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip                   INET,
    amr                  BIGINT NOT NULL,
    next                 TEXT NOT NULL,
    password_fingerprint BYTEA NOT NULL CHECK (length(password_fingerprint) = 32),
    created_at           TIMESTAMPTZ NOT NULL,
    expires_at           TIMESTAMPTZ NOT NULL
);

CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at);
