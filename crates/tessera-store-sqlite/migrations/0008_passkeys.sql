-- Passkeys (WebAuthn credentials) and the state of ceremonies under way.

CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,  -- the credential as webauthn-rs serialises it (JSON)
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
) STRICT;

CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at);

-- Single use: taken (deleted) by the request that finishes the ceremony.
CREATE TABLE webauthn_ceremonies (
    id         TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT NOT NULL,  -- webauthn-rs ceremony state (JSON)
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX webauthn_ceremonies_by_expiry ON webauthn_ceremonies (expires_at);
