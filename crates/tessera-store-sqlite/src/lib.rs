//! Tessera's embedded store: one SQLite file in WAL mode, nothing to install.
//!
//! `synchronous = FULL` makes every commit durable before it is
//! acknowledged, so an answered registration survives `kill -9` and power
//! loss alike. The store's operations are `tessera-store-sql`'s; this crate
//! holds what is SQLite's own: connection setup, the statements SQLite
//! writes its own way, the one writer that commits refresh exchanges in
//! groups, and the admission of password attempts in one statement.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteQueryResult, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection as _, Row, Transaction};
use tessera_core::attempt::{Admission, Attempt};
use tessera_core::store::{Rotation, StoreError, StoreResult, from_millis, to_millis};
use tessera_store_sql::counters::{admitted, bind_attempt, refused};
use tessera_store_sql::refresh::{Step, decide};
use tessera_store_sql::{
    Backend, Dialect, Exchange, Lock, Sql, SqlStore, Statement, corrupt, delete_reused_session,
    keys, refresh_for_exchange, session_columns, unavailable, write_error,
};
use time::OffsetDateTime;
use uuid::Uuid;

pub mod backup;

/// The schema migrations, applied in order and recorded in `_sqlx_migrations`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The embedded SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    sql: SqlStore<SqliteDialect>,
}

tessera_store_sql::forward_store_traits!(SqliteStore => sql);

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::connect(options).await
    }

    /// Opens a `sqlite://` URL.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true);
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> StoreResult<Self> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        // Every password attempt writes its counters twice (reserved, then
        // given back or kept). With a disk sync each (~4 ms here, under the
        // write lock) those writes, not Argon2id, would bound sign-in. In WAL
        // mode a commit without a sync is still atomic and ordered, and the
        // next synced commit (any session) makes it durable: a power failure
        // can only forget the latest counts.
        let counters = SqlitePoolOptions::new()
            .max_connections(2)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone().synchronous(SqliteSynchronous::Normal))
            .await
            .map_err(unavailable)?;
        let (rotations, requests) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(rotation_writer(options, requests));
        Ok(Self {
            sql: SqlStore::new(pool, counters, SqliteDialect { rotations }),
        })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(self.pool())
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        let (closed, done) = tokio::sync::oneshot::channel();
        let writer = &self.sql.dialect().rotations;
        if writer.send(ToWriter::Close(closed)).await.is_ok() {
            // An error here: the writer had stopped already.
            let _ = done.await;
        }
        self.sql.close().await;
    }

    /// The pool, for tests that look at the raw tables.
    pub fn pool(&self) -> &SqlitePool {
        self.sql.pool()
    }
}

/// SQLite's dialect: times as Unix milliseconds, ids and addresses as text.
#[derive(Debug, Clone)]
struct SqliteDialect {
    /// The refresh writer's queue.
    rotations: tokio::sync::mpsc::Sender<ToWriter>,
}

impl Backend for SqliteDialect {
    type Db = sqlx::Sqlite;
    type Args = sqlx::sqlite::SqliteArguments;
    type Conn = sqlx::SqliteConnection;
    type Row = SqliteRow;
}

/// A new session, stored only while its user is enabled and has the password
/// hash bound last; the statements after it in the text run only if it did
/// (`changes() = 1`). SQLite takes the write lock at the statement's start,
/// so no password change or disable can fall between check and insert.
macro_rules! insert_session_and_audit {
    () => {
        concat!(
            "INSERT INTO sessions (",
            session_columns!(),
            ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 ",
            "WHERE EXISTS (SELECT 1 FROM users WHERE id = $13 AND password_hash = $14 AND disabled = 0); ",
            "INSERT INTO audit_log (kind, user_id, ip, user_agent, at, detail) ",
            "SELECT $15, $16, $17, $18, $19, $20 WHERE changes() = 1"
        )
    };
}

/// An exchange's writes ([`Dialect::EXCHANGE_REFRESH`]): three statements,
/// one wake-up of the database thread. A macro, so the refresh writer can
/// send the next statement with them.
macro_rules! exchange_refresh {
    () => {
        "UPDATE refresh_tokens SET replaced_at = $1 WHERE hash = $5; \
         INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($3, $2, $1); \
         UPDATE sessions SET secret_hash = $3, last_seen_at = $1, idle_expires_at = $4 WHERE id = $2"
    };
}

impl Dialect for SqliteDialect {
    const INSERT_SESSION: &'static str = insert_session_and_audit!();
    const INSERT_TOKEN_SESSION: &'static str = concat!(
        insert_session_and_audit!(),
        "; INSERT INTO refresh_tokens (hash, session_id, created_at) ",
        "SELECT $4, $1, $5 WHERE changes() = 1"
    );
    const WRITES_ARE_ONE_STATEMENT: bool = false;
    // Exchanges run in the writer's transaction, which holds the write lock.
    const REFRESH_FOR_EXCHANGE: &'static str = refresh_for_exchange!();
    const EXCHANGE_REFRESH: &'static str = exchange_refresh!();
    const INSERT_AUDIT: &'static str = "INSERT INTO audit_log \
        (kind, user_id, ip, user_agent, at, detail) VALUES ($1, $2, $3, $4, $5, $6)";
    const LIST_AUDIT: &'static str = "SELECT id, kind, user_id, ip, user_agent, at, detail \
        FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2";
    const RELEASE_ATTEMPT: &'static str = "UPDATE counters SET \
        count = CASE WHEN key = $2 AND $3 THEN 0 WHEN count > 0 THEN count - 1 ELSE 0 END, \
        blocked_until = CASE WHEN key = $2 AND $3 THEN 0 ELSE blocked_until END \
        WHERE key IN ($1, $2)";
    // The sessions table with its indexes (the audit log, which also grows
    // with sign-ins, is a log, not session state).
    // A bulk load writes index pages in random order (ids and secret hashes
    // are random). Within SQLite's default page cache (2 MB) they spill to
    // the WAL and are read back many times over in one transaction; and
    // each multi-row insert inside a transaction keeps the pages it
    // changes in a statement journal, a temporary file by default. At a
    // million sessions that was 55 KB written per session. The load's
    // connection gets room for the indexes (256 MiB) and its journals in
    // memory, then the defaults back.
    const BULK_LOAD_SETUP: &'static str = "PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY";
    const BULK_LOAD_TEARDOWN: &'static str =
        "PRAGMA cache_size = -2000; PRAGMA temp_store = DEFAULT";
    const SESSION_STORAGE_BYTES: &'static str = "SELECT COALESCE(SUM(pgsize), 0) AS bytes \
        FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'sessions')";

    fn bind_time<'q>(q: Statement<'q, Self>, v: OffsetDateTime) -> Statement<'q, Self> {
        q.bind(to_millis(v))
    }

    fn bind_opt_time<'q>(q: Statement<'q, Self>, v: Option<OffsetDateTime>) -> Statement<'q, Self> {
        q.bind(v.map(to_millis))
    }

    fn bind_uuid<'q>(q: Statement<'q, Self>, v: Uuid) -> Statement<'q, Self> {
        q.bind(v.to_string())
    }

    fn bind_opt_uuid<'q>(q: Statement<'q, Self>, v: Option<Uuid>) -> Statement<'q, Self> {
        q.bind(v.map(|id| id.to_string()))
    }

    fn bind_ip<'q>(q: Statement<'q, Self>, v: Option<IpAddr>) -> Statement<'q, Self> {
        q.bind(v.map(|ip| ip.to_string()))
    }

    fn time(row: &SqliteRow, column: &str) -> StoreResult<OffsetDateTime> {
        from_millis(row.try_get(column).map_err(corrupt)?)
    }

    fn opt_time(row: &SqliteRow, column: &str) -> StoreResult<Option<OffsetDateTime>> {
        let ms: Option<i64> = row.try_get(column).map_err(corrupt)?;
        ms.map(from_millis).transpose()
    }

    fn uuid(row: &SqliteRow, column: &str) -> StoreResult<Uuid> {
        let id: &str = row.try_get(column).map_err(corrupt)?;
        Uuid::parse_str(id).map_err(corrupt)
    }

    fn opt_uuid(row: &SqliteRow, column: &str) -> StoreResult<Option<Uuid>> {
        let id: Option<&str> = row.try_get(column).map_err(corrupt)?;
        id.map(Uuid::parse_str).transpose().map_err(corrupt)
    }

    fn ip(row: &SqliteRow, column: &str) -> StoreResult<Option<IpAddr>> {
        let ip: Option<&str> = row.try_get(column).map_err(corrupt)?;
        Ok(ip.and_then(|ip| ip.parse().ok()))
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    async fn begin_serialized(
        pool: &SqlitePool,
        _lock: Lock,
    ) -> StoreResult<Transaction<'static, sqlx::Sqlite>> {
        // IMMEDIATE takes the write lock up front: the database has one
        // writer, so every serialised transaction runs alone.
        pool.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)
    }

    async fn announce_revocations(_conn: &mut sqlx::SqliteConnection) -> StoreResult<()> {
        // One process per database file: nobody else to tell.
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        _pool: &SqlitePool,
        exchange: Exchange,
    ) -> StoreResult<Rotation> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Unavailable("the refresh writer has stopped".into());
        self.rotations
            .send(ToWriter::Rotate(RotateRequest { exchange, reply }))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn replace_sealed_key(
        pool: &SqlitePool,
        kid: &str,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        let mut conn = pool.acquire().await.map_err(unavailable)?;
        // The bytes replaced (a key in clear, or sealed under a retired
        // key-encryption key) must not linger in the file: secure_delete
        // zeroes the space they leave, for this statement only (it costs
        // writes elsewhere).
        Sql::<Self>::new("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        let replaced = keys::replace_sealed::<Self>(&mut *conn, kid, old, new).await;
        Sql::<Self>::new("PRAGMA secure_delete = OFF")
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        let replaced = replaced?;
        if replaced {
            // The WAL still holds the page as it was: move everything into
            // the database file and empty the WAL. Best effort: a reader
            // holding it back leaves it for the next checkpoint.
            let _ = Sql::<Self>::new("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await;
        }
        Ok(replaced)
    }

    async fn reserve(
        counters: &SqlitePool,
        attempt: &Attempt<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Admission> {
        // One statement, so one write transaction: SQLite takes its write
        // lock before reading, and reads the counters (into a temporary
        // table, as the statement writes the table it reads) before
        // changing them. Both keys are admitted or neither; the rows
        // returned are the ones counted.
        let granted = bind_attempt::<Self>(RESERVE, attempt, now)
            .fetch_all(counters)
            .await
            .map_err(unavailable)?;
        if let Some(admission) = admitted::<Self>(attempt, &granted)? {
            return Ok(admission);
        }
        // Refused, nothing written: read why, for the answer's Retry-After.
        let rows = Sql::<Self>::new(COUNTER_STATE)
            .opt_text(attempt.ip)
            .text(attempt.account)
            .fetch_all(counters)
            .await
            .map_err(unavailable)?;
        refused::<Self>(attempt, &rows, now)
    }
}

/// Admits an attempt ([`bind_attempt`] binds `$1`..`$7`) and counts it
/// under both keys, or changes nothing: the rules of
/// `tessera_core::attempt` in one statement. Returns the counted rows.
const RESERVE: &str = "\
WITH k(key) AS (SELECT $1 UNION ALL SELECT $2), \
     p(now, window_ms, lim, first_ms, max_ms) AS (SELECT $3, $4, $5, $6, $7) \
INSERT INTO counters (key, count, expires_at, blocked_until) \
SELECT k.key, 1, p.now + p.window_ms, \
       CASE WHEN k.key = $2 AND p.lim <= 1 THEN p.now + p.first_ms ELSE 0 END \
FROM k, p \
WHERE k.key IS NOT NULL AND NOT EXISTS ( \
    SELECT 1 FROM counters AS c WHERE c.key IN ($1, $2) AND ( \
        c.blocked_until > p.now \
        OR (c.key = $1 AND c.expires_at > p.now AND c.count >= p.lim))) \
ON CONFLICT (key) DO UPDATE SET \
    count = CASE WHEN counters.expires_at <= $3 THEN 1 ELSE counters.count + 1 END, \
    expires_at = CASE WHEN counters.expires_at <= $3 THEN excluded.expires_at \
                 ELSE counters.expires_at END, \
    blocked_until = CASE \
        WHEN counters.key <> $2 THEN counters.blocked_until \
        WHEN counters.expires_at <= $3 THEN excluded.blocked_until \
        WHEN counters.count + 1 >= $5 \
            THEN $3 + min($7, $6 << min(counters.count + 1 - $5, 20)) \
        ELSE counters.blocked_until END \
RETURNING key, count, expires_at, blocked_until";

/// The counters of an attempt's keys (`$1` address, may be NULL; `$2` account).
const COUNTER_STATE: &str =
    "SELECT key, count, expires_at, blocked_until FROM counters WHERE key IN ($1, $2)";

/// One refresh exchange waiting for the writer.
#[derive(Debug)]
struct RotateRequest {
    exchange: Exchange,
    reply: tokio::sync::oneshot::Sender<StoreResult<Rotation>>,
}

/// What the refresh writer is asked.
#[derive(Debug)]
enum ToWriter {
    /// An exchange.
    Rotate(RotateRequest),
    /// To close its connection (after the exchanges asked before) and stop.
    Close(tokio::sync::oneshot::Sender<()>),
}

/// Most exchanges committed together.
const ROTATION_BATCH: usize = 64;

/// Runs refresh exchanges one after the other, like a lock would, but
/// commits the exchanges that arrived together in one transaction: one disk
/// sync for the batch instead of one each (group commit). Each exchange
/// still sees every earlier one. The writer has a connection of its own,
/// opened on first use: a pooled one would cost a round trip to its
/// database thread per batch (the pool's liveness check) on top of the
/// batch's own.
async fn rotation_writer(
    options: SqliteConnectOptions,
    mut requests: tokio::sync::mpsc::Receiver<ToWriter>,
) {
    let mut conn: Option<SqliteConnection> = None;
    while let Some(first) = requests.recv().await {
        let (mut batch, mut close) = (Vec::new(), None);
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                ToWriter::Rotate(request) => batch.push(request),
                ToWriter::Close(reply) => close = Some(reply),
            }
            if close.is_none() && batch.len() < ROTATION_BATCH {
                next = requests.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            conn = run_batch(conn, &options, batch).await;
        }
        if let Some(reply) = close {
            if let Some(conn) = conn.take() {
                let _ = conn.close().await;
            }
            let _ = reply.send(());
            return;
        }
    }
}

/// Runs `batch` on `conn` (opened first if need be), answers each request,
/// and hands back the connection to use next.
async fn run_batch(
    mut conn: Option<SqliteConnection>,
    options: &SqliteConnectOptions,
    batch: Vec<RotateRequest>,
) -> Option<SqliteConnection> {
    let done = match conn.as_mut() {
        Some(conn) => rotate_batch(conn, &batch).await,
        None => match SqliteConnection::connect_with(options).await {
            Ok(opened) => rotate_batch(conn.insert(opened), &batch).await,
            Err(e) => Err(unavailable(e)),
        },
    };
    match done {
        Ok(outcomes) => {
            for (request, outcome) in batch.into_iter().zip(outcomes) {
                // The asker may have gone away; the exchange stands.
                let _ = request.reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            // Closing the connection rolls back whatever the batch left
            // open; the next batch opens a new one.
            conn = None;
            let message = e.to_string();
            for request in batch {
                let _ = request
                    .reply
                    .send(Err(StoreError::Unavailable(message.clone())));
            }
        }
    }
    conn
}

/// The texts of a batch: each exchange's writes travel with the next
/// exchange's read (its token's placeholder after the writes'), the first
/// read with BEGIN and the last writes with COMMIT. A batch of n exchanges
/// is n + 1 round trips to the database thread instead of 2n + 2, and the
/// write lock is held that much less.
const BEGIN_AND_READ: &str = concat!("BEGIN IMMEDIATE; ", refresh_for_exchange!());
const READ: &str = refresh_for_exchange!();
const REVOKE_AND_READ: &str = concat!(
    delete_reused_session!(),
    "; ",
    refresh_for_exchange!(hash = "$2")
);
const ROTATE_AND_READ: &str = concat!(
    exchange_refresh!(),
    "; ",
    refresh_for_exchange!(hash = "$6")
);
const COMMIT: &str = "COMMIT";
const REVOKE_AND_COMMIT: &str = concat!(delete_reused_session!(), "; COMMIT");
const ROTATE_AND_COMMIT: &str = concat!(exchange_refresh!(), "; COMMIT");

/// One batch in one transaction on the writer's connection. IMMEDIATE
/// takes the write lock up front: no other writer interleaves. Each
/// exchange is decided as [`exchange`] decides it, on a read that follows
/// the previous exchange's writes. Plain statements rather than sqlx's
/// transaction, whose begin and commit each wait for the caller to take
/// the answer; on an error the caller closes the connection, which rolls
/// back.
async fn rotate_batch(
    conn: &mut SqliteConnection,
    batch: &[RotateRequest],
) -> StoreResult<Vec<Rotation>> {
    let Some(first) = batch.first() else {
        return Ok(Vec::new());
    };
    let mut row = Sql::<SqliteDialect>::new(BEGIN_AND_READ)
        .bytes(first.exchange.presented.as_bytes())
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut requests = batch.iter().peekable();
    while let Some(request) = requests.next() {
        let x = &request.exchange;
        let step = decide::<SqliteDialect>(row.take(), x)?;
        let next = requests.peek().map(|next| &next.exchange);
        let text = match (&step, next.is_some()) {
            (Step::Answer(_), true) => READ,
            (Step::Revoke(_), true) => REVOKE_AND_READ,
            (Step::Rotate { .. }, true) => ROTATE_AND_READ,
            (Step::Answer(_), false) => COMMIT,
            (Step::Revoke(_), false) => REVOKE_AND_COMMIT,
            (Step::Rotate { .. }, false) => ROTATE_AND_COMMIT,
        };
        let mut sql = step.bind_writes(Sql::<SqliteDialect>::new(text), x);
        if let Some(next) = next {
            sql = sql.bytes(next.presented.as_bytes());
        }
        row = sql.fetch_optional(&mut *conn).await.map_err(write_error)?;
        outcomes.push(step.done(x)?);
    }
    Ok(outcomes)
}
