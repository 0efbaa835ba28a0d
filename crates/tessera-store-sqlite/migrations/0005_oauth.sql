-- OAuth 2.1 / OpenID Connect: registered clients, the consents users gave
-- them, the sessions they hold, and authorization codes (by hash only).

CREATE TABLE oauth_clients (
    id                        TEXT PRIMARY KEY NOT NULL,
    name                      TEXT NOT NULL,
    redirect_uris             TEXT NOT NULL,  -- JSON array, compared exactly
    post_logout_redirect_uris TEXT NOT NULL,  -- JSON array
    public                    INTEGER NOT NULL,
    secret_hash               BLOB CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
    skip_consent              INTEGER NOT NULL DEFAULT 0,
    id_token_alg              TEXT,
    created_at                INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth_consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;

-- Which client holds a session; the link goes with the session.
CREATE TABLE oauth_client_sessions (
    session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL
) STRICT;

CREATE INDEX oauth_client_sessions_by_client ON oauth_client_sessions (client_id);

CREATE TABLE oauth_codes (
    code_hash      BLOB PRIMARY KEY NOT NULL CHECK (length(code_hash) = 32),
    client_id      TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0,
    reused         INTEGER NOT NULL DEFAULT 0,
    session_id     TEXT
) STRICT;

CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);
