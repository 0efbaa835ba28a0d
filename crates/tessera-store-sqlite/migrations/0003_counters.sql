-- Expiring counters (rate limits) when no Redis is configured.
CREATE TABLE counters (
    key        TEXT PRIMARY KEY NOT NULL,
    count      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX counters_by_expiry ON counters (expires_at);
