-- Passkeys (WebAuthn credentials) and the state of ceremonies under way.

CREATE TABLE passkeys (
    id            UUID PRIMARY KEY NOT NULL,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BYTEA NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,  -- the credential as webauthn-rs serialises it (JSON)
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ
);

CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at);

-- Single use: taken (deleted) by the request that finishes the ceremony.
CREATE TABLE webauthn_ceremonies (
    id         UUID PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    user_id    UUID REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT NOT NULL,  -- webauthn-rs ceremony state (JSON)
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX webauthn_ceremonies_by_expiry ON webauthn_ceremonies (expires_at);
