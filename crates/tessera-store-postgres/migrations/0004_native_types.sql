-- PostgreSQL's own types where SQLite's shape was copied: ids as uuid,
-- times as timestamptz (the application keeps them to the millisecond),
-- addresses as inet. Existing rows are converted in place.

-- Times were Unix milliseconds. Whole seconds and the milliseconds left are
-- added apart, so even times far ahead convert exactly (no float rounding).
CREATE FUNCTION pg_temp.from_millis(ms BIGINT) RETURNS TIMESTAMPTZ
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_timestamp(ms / 1000) + (ms % 1000) * INTERVAL '1 millisecond'
$$;

-- Addresses were text; what does not read as an address (it was ignored
-- when read) is dropped rather than failing the migration.
CREATE FUNCTION pg_temp.to_inet(ip TEXT) RETURNS INET
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN ip::inet;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

-- The key's type changes under its references: the foreign key goes and comes back.
ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;

ALTER TABLE users
    ALTER COLUMN id TYPE UUID USING id::uuid,
    -- Names compare bytewise, as in SQLite, whatever the database's
    -- collation: the order pages of users follow.
    ALTER COLUMN username_normalized TYPE TEXT COLLATE "C",
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(created_at),
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(updated_at);

ALTER TABLE sessions
    ALTER COLUMN user_id TYPE UUID USING user_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(created_at),
    ALTER COLUMN last_seen_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(last_seen_at),
    ALTER COLUMN idle_expires_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(idle_expires_at),
    ALTER COLUMN absolute_expires_at TYPE TIMESTAMPTZ
        USING pg_temp.from_millis(absolute_expires_at),
    ALTER COLUMN ip TYPE INET USING pg_temp.to_inet(ip);

ALTER TABLE sessions ADD CONSTRAINT sessions_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;

ALTER TABLE refresh_tokens
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(created_at),
    ALTER COLUMN replaced_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(replaced_at);

ALTER TABLE signing_keys
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(created_at),
    ALTER COLUMN retired_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(retired_at),
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(expires_at);

ALTER TABLE revocations
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(expires_at);

-- A table rewrite fires no row trigger: the append-only guard stays quiet.
ALTER TABLE audit_log
    ALTER COLUMN user_id TYPE UUID USING user_id::uuid,
    ALTER COLUMN ip TYPE INET USING pg_temp.to_inet(ip),
    ALTER COLUMN at TYPE TIMESTAMPTZ USING pg_temp.from_millis(at);

-- "Never blocked" was 0, the epoch; it stays the epoch.
ALTER TABLE counters ALTER COLUMN blocked_until DROP DEFAULT;
ALTER TABLE counters
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING pg_temp.from_millis(expires_at),
    ALTER COLUMN blocked_until TYPE TIMESTAMPTZ USING pg_temp.from_millis(blocked_until);
ALTER TABLE counters ALTER COLUMN blocked_until SET DEFAULT TIMESTAMPTZ 'epoch';

-- The counters' functions, as in 0003 but on times: `p_now` is a time,
-- the window and waits stay durations in milliseconds.
DROP FUNCTION reserve_attempt(TEXT, TEXT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT);

CREATE FUNCTION reserve_attempt(
    p_ip TEXT, p_account TEXT, p_now TIMESTAMPTZ, p_window BIGINT, p_limit BIGINT,
    p_first_wait BIGINT, p_max_wait BIGINT)
RETURNS TABLE (
    key TEXT, count BIGINT, expires_at TIMESTAMPTZ, blocked_until TIMESTAMPTZ, granted BOOLEAN)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    keys TEXT[] := ARRAY(SELECT k FROM unnest(ARRAY[p_ip, p_account]) AS k
                         WHERE k IS NOT NULL ORDER BY k);
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO counters (key, count, expires_at, blocked_until)
        SELECT k, 0, TIMESTAMPTZ 'epoch', TIMESTAMPTZ 'epoch' FROM unnest(keys) AS k ORDER BY k
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
        expires_at = CASE WHEN c.expires_at <= p_now
                     THEN p_now + p_window * INTERVAL '1 millisecond'
                     ELSE c.expires_at END,
        blocked_until = CASE
            WHEN c.key = p_account AND next.n >= p_limit
                THEN p_now + LEAST(p_max_wait, p_first_wait << LEAST(next.n - p_limit, 20)::int)
                     * INTERVAL '1 millisecond'
            ELSE c.blocked_until END
    FROM next WHERE c.key = next.k
    RETURNING c.key, c.count, c.expires_at, c.blocked_until, true;
END;
$$;

CREATE OR REPLACE FUNCTION release_attempt(p_ip TEXT, p_account TEXT, p_succeeded BOOLEAN)
RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE counters AS c SET
        count = CASE WHEN c.key = p_account AND p_succeeded THEN 0
                     WHEN c.count > 0 THEN c.count - 1 ELSE 0 END,
        blocked_until = CASE WHEN c.key = p_account AND p_succeeded THEN TIMESTAMPTZ 'epoch'
                             ELSE c.blocked_until END
    WHERE c.key IN (p_ip, p_account);
END;
$$;

DROP FUNCTION pg_temp.from_millis(BIGINT);
DROP FUNCTION pg_temp.to_inet(TEXT);
