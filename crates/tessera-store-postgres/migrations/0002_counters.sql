-- Expiring counters (rate limits) when no Redis is configured.
CREATE TABLE counters (
    key        TEXT PRIMARY KEY,
    count      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX counters_by_expiry ON counters (expires_at);
