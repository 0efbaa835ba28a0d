//! Tessera's embedded store: one SQLite file in WAL mode, nothing to install.
//!
//! `synchronous = FULL` makes every commit durable before it is
//! acknowledged, so an answered registration survives `kill -9` and power
//! loss alike.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tessera_core::attempt::{Admission, Attempt};
use tessera_core::audit::{AuditEvent, AuditRecord};
use tessera_core::keys::StoredKey;
use tessera_core::revocation::{Revocation, RevocationKind};
use tessera_core::secret::SecretHash;
use tessera_core::session::{Session, SessionId};
use tessera_core::store::{
    Audit, Counters, Health, Keys, RefreshTokens, Revocations, Rotation, Sessions, StoreError,
    StoreResult, Users, from_millis, to_millis,
};
use tessera_core::user::{User, UserRecord};
use tessera_store_sql::counters::{self as counter_sql, admitted, bind_attempt, refused};
use tessera_store_sql::{
    bind_audit, bind_credential, bind_session, corrupt, read_key, read_revocation, read_session,
    read_user, sweeps, unavailable, write_error,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// The schema migrations, applied in order and recorded in `_sqlx_migrations`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The embedded SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Connections for the rate-limit counters, which commit without a
    /// disk sync (see [`SqliteStore::connect`]).
    counters: SqlitePool,
    rotations: tokio::sync::mpsc::Sender<RotateRequest>,
}

impl SqliteStore {
    /// Runs one of [`sweeps`]: a delete bounded by a time; how many rows went.
    async fn sweep(&self, sql: &'static str, cutoff: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query(sql)
            .bind(to_millis(cutoff))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected())
    }

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
            .connect_with(options.synchronous(SqliteSynchronous::Normal))
            .await
            .map_err(unavailable)?;
        let (rotations, requests) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(rotation_writer(pool.clone(), requests));
        Ok(Self {
            pool,
            counters,
            rotations,
        })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.counters.close().await;
        self.pool.close().await;
    }

    /// The pool, for tests that look at the raw tables.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

// sqlx only takes static SQL, so shared column lists are spliced in with concat!.
macro_rules! user_columns {
    () => {
        "id, username, username_normalized, password_hash, roles, disabled, created_at, updated_at"
    };
}
macro_rules! insert_audit_sql {
    () => {
        "INSERT INTO audit_log (kind, user_id, ip, user_agent, at, detail) VALUES (?, ?, ?, ?, ?, ?)"
    };
}

macro_rules! session_columns {
    () => {
        "id, kind, user_id, secret_hash, created_at, last_seen_at, idle_expires_at, absolute_expires_at, remember_me, ip, user_agent"
    };
}

/// A new session, stored only while its user is enabled and has the password
/// hash bound last; the statements after it in a batch run only if it did
/// (`changes() = 1`). SQLite takes the write lock at the statement's start,
/// so no password change or disable can fall between check and insert.
macro_rules! insert_session_sql {
    () => {
        concat!(
            "INSERT INTO sessions (",
            session_columns!(),
            ") SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? ",
            "WHERE EXISTS (SELECT 1 FROM users WHERE id = ? AND password_hash = ? AND disabled = 0)"
        )
    };
}
macro_rules! insert_audit_if_stored_sql {
    () => {
        "INSERT INTO audit_log (kind, user_id, ip, user_agent, at, detail) SELECT ?, ?, ?, ?, ?, ? WHERE changes() = 1"
    };
}

#[async_trait]
impl Users for SqliteStore {
    async fn insert_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        let roles = serde_json::to_string(&user.roles).map_err(corrupt)?;
        sqlx::query(
            "INSERT INTO users (id, username, username_normalized, password_hash, roles, disabled, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(user.username.display())
        .bind(user.username.normalized())
        .bind(password_hash)
        .bind(roles)
        .bind(i64::from(user.disabled))
        .bind(to_millis(user.created_at))
        .bind(to_millis(user.updated_at))
        .execute(&self.pool)
        .await
        .map_err(write_error)?;
        Ok(())
    }

    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .as_ref()
        .map(read_user)
        .transpose()
    }

    async fn user_by_username(&self, normalized: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username_normalized = ?"
        ))
        .bind(normalized)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .as_ref()
        .map(read_user)
        .transpose()
    }

    async fn list_users(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username_normalized > ? \
             ORDER BY username_normalized LIMIT ?"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(|r| read_user(r).map(|r| r.user)).collect()
    }

    async fn set_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(hash)
            .bind(to_millis(now))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?")
            .bind(i64::from(disabled))
            .bind(to_millis(now))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_roles(
        &self,
        id: Uuid,
        roles: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let roles = serde_json::to_string(roles).map_err(corrupt)?;
        let done = sqlx::query("UPDATE users SET roles = ?, updated_at = ? WHERE id = ?")
            .bind(roles)
            .bind(to_millis(now))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn insert_session(
        &self,
        s: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        // Both statements in one round trip to the database thread.
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let both = sqlx::query(concat!(
            insert_session_sql!(),
            "; ",
            insert_audit_if_stored_sql!()
        ));
        let done = bind_audit(
            bind_credential(bind_session(both, s), s, password_hash),
            event,
        )
        .execute(&mut *tx)
        .await
        .map_err(write_error)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    async fn session_by_secret(&self, hash: &SecretHash) -> StoreResult<Option<Session>> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE secret_hash = ?"
        ))
        .bind(&hash.as_bytes()[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .as_ref()
        .map(read_session)
        .transpose()
    }

    async fn session_by_id(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .as_ref()
        .map(read_session)
        .transpose()
    }

    async fn touch_session(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id = ?")
            .bind(to_millis(last_seen_at))
            .bind(to_millis(idle_expires_at))
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        sqlx::query(concat!(
            "DELETE FROM sessions WHERE id = ? RETURNING ",
            session_columns!()
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .as_ref()
        .map(read_session)
        .transpose()
    }

    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<&SessionId>,
    ) -> StoreResult<Vec<Session>> {
        let rows = sqlx::query(concat!(
            "DELETE FROM sessions WHERE user_id = ? AND id IS NOT ? RETURNING ",
            session_columns!()
        ))
        .bind(user_id.to_string())
        .bind(except.map(SessionId::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(read_session).collect()
    }

    async fn list_user_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        let now = to_millis(now);
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions \
             WHERE user_id = ? AND idle_expires_at > ? AND absolute_expires_at > ? \
             ORDER BY created_at DESC, id"
        ))
        .bind(user_id.to_string())
        .bind(now)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(read_session).collect()
    }

    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(sweeps::EXPIRED_SESSIONS, now).await
    }
}

#[async_trait]
impl Audit for SqliteStore {
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        bind_audit(sqlx::query(insert_audit_sql!()), e)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list_audit(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, user_id, ip, user_agent, at, detail FROM audit_log \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let user_id: Option<String> = row.try_get("user_id").map_err(corrupt)?;
                let ip: Option<String> = row.try_get("ip").map_err(corrupt)?;
                let detail: String = row.try_get("detail").map_err(corrupt)?;
                Ok(AuditRecord {
                    id: row.try_get("id").map_err(corrupt)?,
                    event: AuditEvent {
                        kind: row.try_get("kind").map_err(corrupt)?,
                        user_id: user_id
                            .map(|id| Uuid::parse_str(&id))
                            .transpose()
                            .map_err(corrupt)?,
                        ip: ip.and_then(|ip| IpAddr::from_str(&ip).ok()),
                        user_agent: row.try_get("user_agent").map_err(corrupt)?,
                        at: from_millis(row.try_get("at").map_err(corrupt)?)?,
                        detail: serde_json::from_str(&detail).map_err(corrupt)?,
                    },
                })
            })
            .collect()
    }
}

#[async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn session_storage_bytes(&self) -> StoreResult<Option<u64>> {
        // The sessions table with its indexes (the audit log, which also
        // grows with sign-ins, is a log, not session state).
        let bytes: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN \
             (SELECT name FROM sqlite_schema WHERE tbl_name = 'sessions')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(u64::try_from(bytes).ok())
    }
}

#[async_trait]
impl RefreshTokens for SqliteStore {
    async fn insert_token_session(
        &self,
        s: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let all = sqlx::query(concat!(
            insert_session_sql!(),
            "; ",
            insert_audit_if_stored_sql!(),
            "; INSERT INTO refresh_tokens (hash, session_id, created_at) SELECT ?, ?, ? WHERE changes() = 1"
        ));
        let done = bind_audit(
            bind_credential(bind_session(all, s), s, password_hash),
            event,
        )
        .bind(&s.secret_hash.as_bytes()[..])
        .bind(s.id.as_str())
        .bind(to_millis(s.created_at))
        .execute(&mut *tx)
        .await
        .map_err(write_error)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    async fn rotate_refresh(
        &self,
        presented: &SecretHash,
        new: &SecretHash,
        now: OffsetDateTime,
        grace: time::Duration,
        idle_ttl: time::Duration,
    ) -> StoreResult<Rotation> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = RotateRequest {
            presented: *presented,
            new: *new,
            now,
            grace,
            idle_ttl,
            reply,
        };
        self.rotations
            .send(request)
            .await
            .map_err(|_| StoreError::Unavailable("the refresh writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the refresh writer has stopped".into()))?
    }

    async fn session_by_refresh(&self, hash: &SecretHash) -> StoreResult<Option<(Session, bool)>> {
        let row = sqlx::query(SESSION_BY_REFRESH)
            .bind(&hash.as_bytes()[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| {
            let replaced: Option<i64> = row.try_get("replaced_at").map_err(corrupt)?;
            Ok((read_session(&row)?, replaced.is_none()))
        })
        .transpose()
    }

    async fn prune_refresh_tokens(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(sweeps::REPLACED_REFRESH_TOKENS, before).await
    }
}

/// A refresh token's session, and when the token was replaced (NULL while current).
const SESSION_BY_REFRESH: &str = concat!(
    "SELECT r.replaced_at AS replaced_at, ",
    "s.id, s.kind, s.user_id, s.secret_hash, s.created_at, s.last_seen_at, s.idle_expires_at, ",
    "s.absolute_expires_at, s.remember_me, s.ip, s.user_agent ",
    "FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.hash = ?"
);

/// One refresh exchange waiting for the writer.
#[derive(Debug)]
struct RotateRequest {
    presented: SecretHash,
    new: SecretHash,
    now: OffsetDateTime,
    grace: time::Duration,
    idle_ttl: time::Duration,
    reply: tokio::sync::oneshot::Sender<StoreResult<Rotation>>,
}

/// Most exchanges committed together.
const ROTATION_BATCH: usize = 64;

/// Runs refresh exchanges one after the other, like a lock would, but
/// commits the exchanges that arrived together in one transaction: one disk
/// sync for the batch instead of one each (group commit). Each exchange
/// still sees every earlier one.
async fn rotation_writer(
    pool: SqlitePool,
    mut requests: tokio::sync::mpsc::Receiver<RotateRequest>,
) {
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while batch.len() < ROTATION_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        match rotate_batch(&pool, &batch).await {
            Ok(outcomes) => {
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    // The asker may have gone away; the exchange stands.
                    let _ = request.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for request in batch {
                    let _ = request
                        .reply
                        .send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
}

async fn rotate_batch(pool: &SqlitePool, batch: &[RotateRequest]) -> StoreResult<Vec<Rotation>> {
    // IMMEDIATE takes the write lock up front: no other writer interleaves.
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        outcomes.push(rotate_one(&mut tx, request).await?);
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(outcomes)
}

async fn rotate_one(conn: &mut sqlx::SqliteConnection, r: &RotateRequest) -> StoreResult<Rotation> {
    // Token and session in one read: every statement here runs while the
    // batch holds the write lock.
    let row = sqlx::query(SESSION_BY_REFRESH)
        .bind(&r.presented.as_bytes()[..])
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    let Some(row) = row else {
        return Ok(Rotation::Unknown);
    };
    let replaced_at: Option<i64> = row.try_get("replaced_at").map_err(corrupt)?;
    let mut session = read_session(&row)?;
    let session_id = session.id.as_str().to_owned();
    if !session.is_live(r.now) {
        return Ok(Rotation::Expired);
    }
    if let Some(replaced_at) = replaced_at
        && from_millis(replaced_at)? + r.grace < r.now
    {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(&session_id)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        return Ok(Rotation::Reused(session));
    }
    let now_ms = to_millis(r.now);
    let idle_expires_at = (r.now + r.idle_ttl).min(session.absolute_expires_at);
    // Whatever was current (the presented token, or within the grace
    // window its successor) is replaced now; the new token is the only
    // current one. The three writes go to the database thread together.
    sqlx::query(
        "UPDATE refresh_tokens SET replaced_at = ? WHERE session_id = ? AND replaced_at IS NULL; \
         INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?); \
         UPDATE sessions SET secret_hash = ?, last_seen_at = ?, idle_expires_at = ? WHERE id = ?",
    )
    .bind(now_ms)
    .bind(&session_id)
    .bind(&r.new.as_bytes()[..])
    .bind(&session_id)
    .bind(now_ms)
    .bind(&r.new.as_bytes()[..])
    .bind(now_ms)
    .bind(to_millis(idle_expires_at))
    .bind(&session_id)
    .execute(&mut *conn)
    .await
    .map_err(write_error)?;
    session.secret_hash = r.new;
    session.last_seen_at = from_millis(now_ms)?;
    session.idle_expires_at = from_millis(to_millis(idle_expires_at))?;
    Ok(Rotation::Rotated(session))
}

async fn insert_key<'c, E>(executor: E, key: &StoredKey) -> StoreResult<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retired_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.kid)
    .bind(key.algorithm.as_str())
    .bind(key.sealed.as_slice())
    .bind(to_millis(key.created_at))
    .bind(key.retired_at.map(to_millis))
    .bind(key.expires_at.map(to_millis))
    .execute(executor)
    .await
    .map_err(write_error)?;
    Ok(())
}

#[async_trait]
impl Keys for SqliteStore {
    async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, created_at, retired_at, expires_at FROM signing_keys \
             ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(read_key).collect()
    }

    async fn ensure_current_key(&self, candidate: &StoredKey) -> StoreResult<()> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        let current: i64 =
            sqlx::query_scalar("SELECT count(*) FROM signing_keys WHERE retired_at IS NULL")
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?;
        if current == 0 {
            insert_key(&mut *tx, candidate).await?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn rotate_key(
        &self,
        new: &StoredKey,
        now: OffsetDateTime,
        retired_expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = ?, expires_at = ? WHERE retired_at IS NULL",
        )
        .bind(to_millis(now))
        .bind(to_millis(retired_expires_at))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        insert_key(&mut *tx, new).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn replace_sealed_key(&self, kid: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        // The bytes replaced (a key in clear, or sealed under a retired
        // key-encryption key) must not linger in the file: secure_delete
        // zeroes the space they leave, for this statement only (it costs
        // writes elsewhere).
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        let done = sqlx::query(
            "UPDATE signing_keys SET private_key = ? WHERE kid = ? AND private_key = ?",
        )
        .bind(new)
        .bind(kid)
        .bind(old)
        .execute(&mut *conn)
        .await
        .map_err(write_error);
        sqlx::query("PRAGMA secure_delete = OFF")
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        let replaced = done?.rows_affected() == 1;
        if replaced {
            // The WAL still holds the page as it was: move everything into
            // the database file and empty the WAL. Best effort: a reader
            // holding it back leaves it for the next checkpoint.
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await;
        }
        Ok(replaced)
    }

    async fn delete_expired_keys(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(sweeps::EXPIRED_KEYS, now).await
    }
}

#[async_trait]
impl Revocations for SqliteStore {
    async fn insert_revocations(
        &self,
        entries: &[(RevocationKind, String, OffsetDateTime)],
    ) -> StoreResult<Vec<Revocation>> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let mut stored = Vec::with_capacity(entries.len());
        for (kind, value, expires_at) in entries {
            let row = sqlx::query(
                "INSERT INTO revocations (kind, value, expires_at) VALUES (?, ?, ?) \
                 RETURNING seq, kind, value, expires_at",
            )
            .bind(kind.as_str())
            .bind(value)
            .bind(to_millis(*expires_at))
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
            stored.push(read_revocation(&row)?);
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(stored)
    }

    async fn revocations_since(
        &self,
        after: i64,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<Revocation>> {
        let rows = sqlx::query(
            "SELECT seq, kind, value, expires_at FROM revocations WHERE seq > ? AND expires_at > ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(read_revocation).collect()
    }

    async fn delete_expired_revocations(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(sweeps::EXPIRED_REVOCATIONS, now).await
    }
}

/// Admits an attempt ([`tessera_store_sql::counters::bind_attempt`] binds
/// `$1`..`$7`) and counts it under both keys, or changes nothing: the rules
/// of `tessera_core::attempt` in one statement. Returns the counted rows.
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

/// Gives one slot back on each key (`$1` address, `$2` account); after a
/// success (`$3`) the account's count and wait are forgotten.
const RELEASE: &str = "UPDATE counters SET \
     count = CASE WHEN key = $2 AND $3 THEN 0 WHEN count > 0 THEN count - 1 ELSE 0 END, \
     blocked_until = CASE WHEN key = $2 AND $3 THEN 0 ELSE blocked_until END \
     WHERE key IN ($1, $2)";

#[async_trait]
impl Counters for SqliteStore {
    async fn hit(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<(u64, OffsetDateTime)> {
        let end = to_millis(now + window);
        let now = to_millis(now);
        // One upsert: concurrent hits on any node each count exactly once.
        let row = sqlx::query(
            "INSERT INTO counters (key, count, expires_at) VALUES (?, 1, ?) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN counters.expires_at <= ? THEN 1 ELSE counters.count + 1 END, \
             expires_at = CASE WHEN counters.expires_at <= ? THEN excluded.expires_at ELSE counters.expires_at END \
             RETURNING count, expires_at",
        )
        .bind(key)
            .bind(end)
            .bind(now)
            .bind(now)
            .fetch_one(&self.counters)
            .await
            .map_err(unavailable)?;
        let count: i64 = row.try_get("count").map_err(corrupt)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(corrupt)?;
        Ok((u64::try_from(count).unwrap_or(0), from_millis(expires_at)?))
    }

    async fn reserve(&self, attempt: &Attempt<'_>, now: OffsetDateTime) -> StoreResult<Admission> {
        // One statement, so one write transaction: SQLite takes its write
        // lock before reading, and reads the counters (into a temporary
        // table, as the statement writes the table it reads) before
        // changing them. Both keys are admitted or neither; the rows
        // returned are the ones counted.
        let granted = bind_attempt(sqlx::query(RESERVE), attempt, now)
            .fetch_all(&self.counters)
            .await
            .map_err(unavailable)?;
        if let Some(admission) = admitted(attempt, &granted)? {
            return Ok(admission);
        }
        // Refused, nothing written: read why, for the answer's Retry-After.
        let rows = sqlx::query(COUNTER_STATE)
            .bind(attempt.ip)
            .bind(attempt.account)
            .fetch_all(&self.counters)
            .await
            .map_err(unavailable)?;
        refused(attempt, &rows, now)
    }

    async fn release(
        &self,
        attempt: &Attempt<'_>,
        succeeded: bool,
        _now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query(RELEASE)
            .bind(attempt.ip)
            .bind(attempt.account)
            .bind(succeeded)
            .execute(&self.counters)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn block(
        &self,
        key: &str,
        until: OffsetDateTime,
        _now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query(counter_sql::BLOCK)
            .bind(key)
            .bind(to_millis(until))
            .execute(&self.counters)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_expired_counters(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(sweeps::EXPIRED_COUNTERS, now).await
    }
}
