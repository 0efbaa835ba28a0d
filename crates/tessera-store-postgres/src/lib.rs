//! Tessera's scale-out store: PostgreSQL, shared by every node.
//!
//! Races between nodes are settled by the database: refresh rotation locks
//! the token and session rows (`SELECT … FOR UPDATE`), a sign-in holds its
//! user row (`FOR SHARE`), key changes and revocation appends take
//! transaction-scoped advisory locks, password attempts are admitted by the
//! `reserve_attempt` function, and every revocation is announced with
//! `NOTIFY` so other nodes read it at once. The store's operations are
//! `tessera-store-sql`'s; this crate holds what is PostgreSQL's own.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgQueryResult, PgRow,
};
use sqlx::{PgConnection, Postgres, Row, Transaction};
use tessera_core::attempt::{Admission, Attempt};
use tessera_core::store::{Rotation, StoreError, StoreResult, from_millis, to_millis};
use tessera_store_sql::counters::{admitted, bind_attempt, refused};
use tessera_store_sql::refresh::exchange;
use tessera_store_sql::{
    Backend, Codec, Dialect, Exchange, Lock, Sql, SqlStore, Statement, corrupt, keys,
    refresh_for_exchange, session_columns, unavailable,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// The schema migrations, applied in order and recorded in `_sqlx_migrations`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The channel on which revocations are announced.
pub const REVOCATION_CHANNEL: &str = "tessera_revocations";

/// Advisory lock ids (arbitrary, fixed) serialising key changes and
/// revocation appends across nodes.
const KEYS_LOCK: i64 = 0x7e55_e7a0_0001;
const REVOCATIONS_LOCK: i64 = 0x7e55_e7a0_0002;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    sql: SqlStore<PgDialect>,
    options: PgConnectOptions,
}

tessera_store_sql::forward_store_traits!(PgStore => sql);

impl PgStore {
    /// Connects to a `postgres://` URL with a pool of `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
        Self::connect_with(options, max_connections).await
    }

    /// Connects with explicit options (e.g. a `search_path` for tests).
    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        // Counters commit cheaply inside reserve_attempt itself: one pool.
        let sql = SqlStore::new(pool.clone(), pool, PgDialect);
        Ok(Self { sql, options })
    }

    /// Connects to `url` inside a new, empty schema of its own (named in the
    /// connections' `search_path`) and migrates it: isolated stores for
    /// tests that run in parallel against one database. Returns the schema name.
    pub async fn connect_in_new_schema(
        url: &str,
        max_connections: u32,
    ) -> StoreResult<(Self, String)> {
        let store = Self::connect_to_new_schema(url, max_connections).await?;
        store.0.migrate().await?;
        Ok(store)
    }

    /// Like [`PgStore::connect_in_new_schema`], but leaves the schema
    /// empty: the caller migrates it (as far as it wants, with its own
    /// migrator for tests of the migrations themselves).
    pub async fn connect_to_new_schema(
        url: &str,
        max_connections: u32,
    ) -> StoreResult<(Self, String)> {
        let schema = format!("t_{}", Uuid::new_v4().simple());
        let admin = Self::connect(url, 2).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(admin.pool())
            .await
            .map_err(unavailable)?;
        admin.close().await;
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?
            .options([("search_path", schema.as_str())]);
        let store = Self::connect_with(options, max_connections).await?;
        Ok((store, schema))
    }

    /// Drops a schema that [`PgStore::connect_to_new_schema`] made, with
    /// everything in it. Any other name is refused.
    pub async fn drop_schema(url: &str, schema: &str) -> StoreResult<()> {
        // The name goes into the statement's text: only the shape those
        // schemas are given passes.
        let ours = schema
            .strip_prefix("t_")
            .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ours {
            return Err(StoreError::Unavailable(format!(
                "{schema} is not a schema of a store made in a new schema"
            )));
        }
        let admin = Self::connect(url, 2).await?;
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(admin.pool())
            .await
            .map_err(unavailable);
        admin.close().await;
        dropped.map(|_| ())
    }

    /// Applies pending migrations (concurrent nodes wait on sqlx's lock).
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(self.pool())
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.sql.close().await;
    }

    /// The pool, for tests that look at raw tables.
    pub fn pool(&self) -> &PgPool {
        self.sql.pool()
    }

    /// Calls `on_revocation` whenever any node appends revocations, until the
    /// returned task is aborted. Reconnects after failures; a notification
    /// lost while disconnected is caught by the caller's periodic sync.
    pub fn listen_revocations<F>(&self, on_revocation: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() + Send + Sync + 'static,
    {
        let options = self.options.clone();
        tokio::spawn(async move {
            loop {
                match listen_once(&options, &on_revocation).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation listener lost PostgreSQL; retrying")
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }
}

async fn listen_once<F: Fn()>(
    options: &PgConnectOptions,
    on_revocation: &F,
) -> Result<(), sqlx::Error> {
    let mut listener =
        PgListener::connect_with(&PgPool::connect_lazy_with(options.clone())).await?;
    listener.listen(REVOCATION_CHANNEL).await?;
    // Anything appended while we were not listening is read now.
    on_revocation();
    loop {
        listener.recv().await?;
        on_revocation();
    }
}

/// PostgreSQL's dialect: ids as `uuid`, times as `timestamptz`, addresses
/// as `inet` (migration 0004).
#[derive(Debug, Clone, Copy)]
struct PgDialect;

/// `t` as both dialects keep times: to the millisecond (a `timestamptz`
/// holds microseconds), cut as SQLite's Unix milliseconds are.
fn to_the_millisecond(t: OffsetDateTime) -> OffsetDateTime {
    from_millis(to_millis(t)).unwrap_or(t)
}

impl Backend for PgDialect {
    type Db = Postgres;
    type Args = PgArguments;
    type Conn = PgConnection;
    type Row = PgRow;
}

/// A new session, inserted only while its user is enabled and still has
/// the password hash `$14`. `FOR SHARE` holds the user row until commit: a
/// password change or disable (an `UPDATE` of that row) waits for this
/// sign-in and then ends its session, or this sign-in waits for it and
/// finds the new state. One statement, so atomic without a transaction;
/// the outer insert (the audit event) counts whether it was stored.
macro_rules! insert_session {
    ($($also:literal),*) => {
        concat!(
            "WITH u AS (SELECT 1 FROM users WHERE id = $13 AND password_hash = $14 ",
            "AND NOT disabled FOR SHARE), ",
            "s AS (INSERT INTO sessions (",
            session_columns!(),
            ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM u RETURNING 1)",
            $($also,)*
            " INSERT INTO audit_log (kind, user_id, ip, user_agent, at, detail) ",
            "SELECT $15, $16, $17, $18, $19, $20::jsonb FROM s"
        )
    };
}

impl Dialect for PgDialect {
    const INSERT_SESSION: &'static str = insert_session!();
    const INSERT_TOKEN_SESSION: &'static str = insert_session!(
        ", r AS (INSERT INTO refresh_tokens (hash, session_id, created_at) SELECT $4, $1, $5 FROM s)"
    );
    const WRITES_ARE_ONE_STATEMENT: bool = true;
    // Locks the token row and its session row: every exchange of the
    // session's tokens is serialised, on whichever node it arrives, and
    // after waiting for a concurrent exchange the row is read again as that
    // exchange left it. A token deleted meanwhile (a prune) is simply not
    // found: never mistaken for the current one. The client's link and row
    // are only read (PostgreSQL locks no row of an outer join's nullable
    // side): a session's link never changes.
    const REFRESH_FOR_EXCHANGE: &'static str =
        concat!(refresh_for_exchange!(), " FOR UPDATE OF r, s");
    // One statement: its parts see one snapshot, so the token inserted is
    // not among those it replaces.
    const EXCHANGE_REFRESH: &'static str = "\
        WITH replaced AS (UPDATE refresh_tokens SET replaced_at = $1 WHERE hash = $5), \
        added AS (INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($3, $2, $1)) \
        UPDATE sessions SET secret_hash = $3, last_seen_at = $1, idle_expires_at = $4 WHERE id = $2";
    const INSERT_AUDIT: &'static str = "INSERT INTO audit_log \
        (kind, user_id, ip, user_agent, at, detail) VALUES ($1, $2, $3, $4, $5, $6::jsonb)";
    const LIST_AUDIT: &'static str = "SELECT id, kind, user_id, ip, user_agent, at, \
        detail::text AS detail FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2";
    const RELEASE_ATTEMPT: &'static str = "SELECT release_attempt($1, $2, $3)";
    // The sessions table with its indexes and TOAST.
    // Its shared buffers hold a bulk load's pages; nothing to set.
    const BULK_LOAD_SETUP: &'static str = "";
    const BULK_LOAD_TEARDOWN: &'static str = "";
    const SESSION_STORAGE_BYTES: &'static str =
        "SELECT pg_total_relation_size('sessions') AS bytes";

    fn bind_time<'q>(q: Statement<'q, Self>, v: OffsetDateTime) -> Statement<'q, Self> {
        q.bind(to_the_millisecond(v))
    }

    fn bind_opt_time<'q>(q: Statement<'q, Self>, v: Option<OffsetDateTime>) -> Statement<'q, Self> {
        q.bind(v.map(to_the_millisecond))
    }

    fn bind_uuid<'q>(q: Statement<'q, Self>, v: Uuid) -> Statement<'q, Self> {
        q.bind(v)
    }

    fn bind_opt_uuid<'q>(q: Statement<'q, Self>, v: Option<Uuid>) -> Statement<'q, Self> {
        q.bind(v)
    }

    fn bind_ip<'q>(q: Statement<'q, Self>, v: Option<IpAddr>) -> Statement<'q, Self> {
        q.bind(v)
    }

    fn time(row: &PgRow, column: &str) -> StoreResult<OffsetDateTime> {
        row.try_get(column).map_err(corrupt)
    }

    fn opt_time(row: &PgRow, column: &str) -> StoreResult<Option<OffsetDateTime>> {
        row.try_get(column).map_err(corrupt)
    }

    fn uuid(row: &PgRow, column: &str) -> StoreResult<Uuid> {
        row.try_get(column).map_err(corrupt)
    }

    fn opt_uuid(row: &PgRow, column: &str) -> StoreResult<Option<Uuid>> {
        row.try_get(column).map_err(corrupt)
    }

    fn ip(row: &PgRow, column: &str) -> StoreResult<Option<IpAddr>> {
        row.try_get(column).map_err(corrupt)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    async fn begin_serialized(
        pool: &PgPool,
        lock: Lock,
    ) -> StoreResult<Transaction<'static, Postgres>> {
        let id = match lock {
            Lock::Keys => KEYS_LOCK,
            Lock::Revocations => REVOCATIONS_LOCK,
        };
        let mut tx = pool.begin().await.map_err(unavailable)?;
        // Transaction-scoped: held until commit or rollback, so whatever
        // the transaction does runs alone across every node.
        Sql::<Self>::new("SELECT pg_advisory_xact_lock($1)")
            .int(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        Ok(tx)
    }

    async fn announce_revocations(conn: &mut PgConnection) -> StoreResult<()> {
        // Delivered to every listening node when the transaction commits.
        Sql::<Self>::new("SELECT pg_notify($1, '')")
            .text(REVOCATION_CHANNEL)
            .execute(conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn rotate_refresh(&self, pool: &PgPool, x: Exchange) -> StoreResult<Rotation> {
        let mut tx = pool.begin().await.map_err(unavailable)?;
        let outcome = exchange::<Self>(&mut tx, &x).await?;
        if matches!(outcome, Rotation::Rotated(..) | Rotation::Reused(_)) {
            tx.commit().await.map_err(unavailable)?;
        }
        Ok(outcome)
    }

    async fn replace_sealed_key(
        pool: &PgPool,
        kid: &str,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        keys::replace_sealed::<Self>(pool, kid, old, new).await
    }

    async fn reserve(
        counters: &PgPool,
        attempt: &Attempt<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Admission> {
        // One call of the migrations' reserve_attempt: both keys locked,
        // checked and counted in one transaction and one round trip.
        let rows = bind_attempt::<Self>(
            "SELECT key, count, expires_at, blocked_until, granted \
             FROM reserve_attempt($1, $2, $3, $4, $5, $6, $7)",
            attempt,
            now,
        )
        .fetch_all(counters)
        .await
        .map_err(unavailable)?;
        let granted = match rows.first() {
            Some(row) => Self::flag(row, "granted")?,
            None => false,
        };
        if granted && let Some(admission) = admitted::<Self>(attempt, &rows)? {
            return Ok(admission);
        }
        refused::<Self>(attempt, &rows, now)
    }
}
