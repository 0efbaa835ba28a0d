-- A key's block lives in its counter's row (a counter's window and its
-- block end at different times: each has its column).
ALTER TABLE counters ADD COLUMN blocked_until BIGINT NOT NULL DEFAULT 0;

-- Counts were kept under 'fail:<key>' and blocks as rows 'block:<key>':
-- both move into '<key>''s row, so no block in force is lost.
UPDATE counters SET key = substr(key, 6) WHERE key LIKE 'fail:%';
INSERT INTO counters (key, count, expires_at, blocked_until)
    SELECT substr(key, 7), 0, expires_at, expires_at FROM counters WHERE key LIKE 'block:%'
    ON CONFLICT (key) DO UPDATE SET blocked_until = excluded.blocked_until;
DELETE FROM counters WHERE key LIKE 'block:%';

-- Every password attempt writes its counters twice (reserved, then given
-- back or kept), so these two functions commit without waiting for the WAL
-- to reach the disk (set_config(..., true) lasts to the end of the calling
-- statement's transaction): still atomic and ordered, and a crash can only
-- forget the latest counts, while a disk flush each would add two to every
-- sign-in.

-- Admits a password attempt and counts it under its address (may be NULL)
-- and account keys, or refuses it and changes nothing: the rules of
-- tessera_core::attempt, atomic over both keys, in one round trip. Both rows
-- are made to exist and locked in key order (attempts sharing a key wait
-- for each other, never deadlock), then decided on as they are.
-- Returns the keys' rows: counted (granted) or as they were (refused).
CREATE FUNCTION reserve_attempt(
    p_ip TEXT, p_account TEXT, p_now BIGINT, p_window BIGINT, p_limit BIGINT,
    p_first_wait BIGINT, p_max_wait BIGINT)
RETURNS TABLE (key TEXT, count BIGINT, expires_at BIGINT, blocked_until BIGINT, granted BOOLEAN)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    keys TEXT[] := ARRAY(SELECT k FROM unnest(ARRAY[p_ip, p_account]) AS k
                         WHERE k IS NOT NULL ORDER BY k);
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO counters (key, count, expires_at, blocked_until)
        SELECT k, 0, 0, 0 FROM unnest(keys) AS k ORDER BY k
        ON CONFLICT (key) DO NOTHING;
    PERFORM 1 FROM counters AS c WHERE c.key = ANY(keys) ORDER BY c.key FOR UPDATE;
    IF EXISTS (
        SELECT 1 FROM counters AS c WHERE c.key = ANY(keys) AND (
            c.blocked_until > p_now
            OR (c.key = p_ip AND c.expires_at > p_now AND c.count >= p_limit)))
    THEN
        RETURN QUERY SELECT c.key, c.count, c.expires_at, c.blocked_until, false
            FROM counters AS c WHERE c.key = ANY(keys);
        RETURN;
    END IF;
    RETURN QUERY
    WITH next AS (
        SELECT c.key AS k,
               CASE WHEN c.expires_at <= p_now THEN 1 ELSE c.count + 1 END AS n
        FROM counters AS c WHERE c.key = ANY(keys))
    UPDATE counters AS c SET
        count = next.n,
        expires_at = CASE WHEN c.expires_at <= p_now THEN p_now + p_window
                     ELSE c.expires_at END,
        blocked_until = CASE
            WHEN c.key = p_account AND next.n >= p_limit
                THEN p_now + LEAST(p_max_wait, p_first_wait << LEAST(next.n - p_limit, 20)::int)
            ELSE c.blocked_until END
    FROM next WHERE c.key = next.k
    RETURNING c.key, c.count, c.expires_at, c.blocked_until, true;
END;
$$;

-- Gives an admitted attempt's slot back on each key; after a success the
-- account's count and wait are forgotten too.
CREATE FUNCTION release_attempt(p_ip TEXT, p_account TEXT, p_succeeded BOOLEAN)
RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE counters AS c SET
        count = CASE WHEN c.key = p_account AND p_succeeded THEN 0
                     WHEN c.count > 0 THEN c.count - 1 ELSE 0 END,
        blocked_until = CASE WHEN c.key = p_account AND p_succeeded THEN 0
                             ELSE c.blocked_until END
    WHERE c.key IN (p_ip, p_account);
END;
$$;
