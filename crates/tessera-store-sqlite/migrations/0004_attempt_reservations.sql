-- A key's block lives in its counter's row, so that one statement can check
-- and count an attempt atomically (a counter's window and its block end at
-- different times: each has its column).
ALTER TABLE counters ADD COLUMN blocked_until INTEGER NOT NULL DEFAULT 0;

-- Counts were kept under 'fail:<key>' and blocks as rows 'block:<key>':
-- both move into '<key>''s row, so no block in force is lost.
UPDATE counters SET key = substr(key, 6) WHERE key LIKE 'fail:%';
INSERT INTO counters (key, count, expires_at, blocked_until)
    SELECT substr(key, 7), 0, expires_at, expires_at FROM counters WHERE key LIKE 'block:%'
    ON CONFLICT (key) DO UPDATE SET blocked_until = excluded.blocked_until;
DELETE FROM counters WHERE key LIKE 'block:%';
