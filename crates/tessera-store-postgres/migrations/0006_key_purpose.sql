-- What a signing key signs: access tokens, or ID tokens only (the RS256 key
-- kept beside a configured algorithm other than RS256). One current key per
-- purpose.
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'access'
    CHECK (purpose IN ('access', 'id_token'));
