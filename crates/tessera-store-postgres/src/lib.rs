//! Tessera's scale-out store: PostgreSQL, shared by every node.
//!
//! Races between nodes are settled by the database: refresh rotation locks
//! the session row (`SELECT … FOR UPDATE`), key creation and revocation
//! appends take transaction-scoped advisory locks, and every revocation is
//! announced with `NOTIFY` so other nodes read it at once.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
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

/// The channel on which revocations are announced.
pub const REVOCATION_CHANNEL: &str = "tessera_revocations";

/// Advisory lock ids (arbitrary, fixed) serialising key changes and
/// revocation appends across nodes.
const KEYS_LOCK: i64 = 0x7e55_e7a0_0001;
const REVOCATIONS_LOCK: i64 = 0x7e55_e7a0_0002;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    options: PgConnectOptions,
}

impl PgStore {
    /// Runs one of [`sweeps`]: a delete bounded by a time; how many rows went.
    async fn sweep(&self, sql: &'static str, cutoff: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query(sql)
            .bind(to_millis(cutoff))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected())
    }

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
        Ok(Self { pool, options })
    }

    /// Connects to `url` inside a new, empty schema of its own (named in the
    /// connections' `search_path`) and migrates it: isolated stores for
    /// tests that run in parallel against one database. Returns the schema name.
    pub async fn connect_in_new_schema(
        url: &str,
        max_connections: u32,
    ) -> StoreResult<(Self, String)> {
        let schema = format!("t_{}", Uuid::new_v4().simple());
        let admin = Self::connect(url, 2).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin.pool)
            .await
            .map_err(unavailable)?;
        admin.close().await;
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?
            .options([("search_path", schema.as_str())]);
        let store = Self::connect_with(options, max_connections).await?;
        store.migrate().await?;
        Ok((store, schema))
    }

    /// Applies pending migrations (concurrent nodes wait on sqlx's lock).
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for tests that look at raw tables.
    pub fn pool(&self) -> &PgPool {
        &self.pool
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

/// Takes a transaction-scoped advisory lock: held until commit or rollback,
/// so whatever the transaction does runs alone across every node.
async fn advisory_lock(conn: &mut sqlx::PgConnection, id: i64) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(id)
        .execute(conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

// sqlx only takes static SQL, so shared column lists are spliced in with concat!.
macro_rules! user_columns {
    () => {
        "id, username, username_normalized, password_hash, roles, disabled, created_at, updated_at"
    };
}

macro_rules! session_columns {
    () => {
        "id, kind, user_id, secret_hash, created_at, last_seen_at, idle_expires_at, absolute_expires_at, remember_me, ip, user_agent"
    };
}

async fn append_audit<'c, E>(executor: E, e: &AuditEvent) -> StoreResult<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let query = sqlx::query(
        "INSERT INTO audit_log (kind, user_id, ip, user_agent, at, detail) VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
    );
    bind_audit(query, e)
        .execute(executor)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Inserts a session only while its user is enabled and still has
/// `password_hash`. `FOR SHARE` holds the user row until commit: a password
/// change or disable (an `UPDATE` of that row) waits for this sign-in and
/// then ends its session, or this sign-in waits for it and finds the new
/// state. False when nothing was inserted.
async fn insert_session<'c, E>(executor: E, s: &Session, password_hash: &str) -> StoreResult<bool>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let query = sqlx::query(concat!(
        "INSERT INTO sessions (",
        session_columns!(),
        ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM ",
        "(SELECT 1 FROM users WHERE id = $12 AND password_hash = $13 AND NOT disabled FOR SHARE) AS u"
    ));
    let done = bind_credential(bind_session(query, s), s, password_hash)
        .execute(executor)
        .await
        .map_err(write_error)?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl Users for PgStore {
    async fn insert_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        let roles = serde_json::to_string(&user.roles).map_err(corrupt)?;
        sqlx::query(
            "INSERT INTO users (id, username, username_normalized, password_hash, roles, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user.id.to_string())
        .bind(user.username.display())
        .bind(user.username.normalized())
        .bind(password_hash)
        .bind(roles)
        .bind(user.disabled)
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
            " FROM users WHERE id = $1"
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
            " FROM users WHERE username_normalized = $1"
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
            " FROM users WHERE username_normalized > $1 ORDER BY username_normalized COLLATE \"C\" LIMIT $2"
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
        let done =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
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
        let done = sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
            .bind(disabled)
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
        let done = sqlx::query("UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3")
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
impl Sessions for PgStore {
    async fn insert_session(
        &self,
        s: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if !insert_session(&mut *tx, s, password_hash).await? {
            return Ok(false);
        }
        append_audit(&mut *tx, event).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn session_by_secret(&self, hash: &SecretHash) -> StoreResult<Option<Session>> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE secret_hash = $1"
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
            " FROM sessions WHERE id = $1"
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
        sqlx::query("UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE id = $3")
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
            "DELETE FROM sessions WHERE id = $1 RETURNING ",
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
            "DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2 RETURNING ",
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
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2 \
             ORDER BY created_at DESC, id"
        ))
        .bind(user_id.to_string())
        .bind(to_millis(now))
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
impl RefreshTokens for PgStore {
    async fn insert_token_session(
        &self,
        s: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if !insert_session(&mut *tx, s, password_hash).await? {
            return Ok(false);
        }
        append_audit(&mut *tx, event).await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&s.secret_hash.as_bytes()[..])
        .bind(s.id.as_str())
        .bind(to_millis(s.created_at))
        .execute(&mut *tx)
        .await
        .map_err(write_error)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn rotate_refresh(
        &self,
        presented: &SecretHash,
        new: &SecretHash,
        now: OffsetDateTime,
        grace: time::Duration,
        idle_ttl: time::Duration,
    ) -> StoreResult<Rotation> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // One read locks both the token row and its session row: every
        // exchange of the session's tokens is serialised, on whichever node
        // it arrives, and after waiting for a concurrent exchange the row is
        // read again as that exchange left it. A token deleted meanwhile (a
        // prune) is simply not found: never mistaken for the current one.
        let row = sqlx::query(concat!(
            "SELECT r.replaced_at AS replaced_at, ",
            "s.id, s.kind, s.user_id, s.secret_hash, s.created_at, s.last_seen_at, s.idle_expires_at, ",
            "s.absolute_expires_at, s.remember_me, s.ip, s.user_agent ",
            "FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.hash = $1 FOR UPDATE"
        ))
        .bind(&presented.as_bytes()[..])
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(Rotation::Unknown);
        };
        let replaced_at: Option<i64> = row.try_get("replaced_at").map_err(corrupt)?;
        let mut session = read_session(&row)?;
        let session_id = session.id.as_str().to_owned();
        if !session.is_live(now) {
            return Ok(Rotation::Expired);
        }
        if let Some(replaced_at) = replaced_at
            && from_millis(replaced_at)? + grace < now
        {
            sqlx::query("DELETE FROM sessions WHERE id = $1")
                .bind(&session_id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            return Ok(Rotation::Reused(session));
        }
        let now_ms = to_millis(now);
        sqlx::query("UPDATE refresh_tokens SET replaced_at = $1 WHERE session_id = $2 AND replaced_at IS NULL")
            .bind(now_ms)
            .bind(&session_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&new.as_bytes()[..])
        .bind(&session_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(write_error)?;
        let idle_expires_at = (now + idle_ttl).min(session.absolute_expires_at);
        sqlx::query("UPDATE sessions SET secret_hash = $1, last_seen_at = $2, idle_expires_at = $3 WHERE id = $4")
            .bind(&new.as_bytes()[..])
            .bind(now_ms)
            .bind(to_millis(idle_expires_at))
            .bind(&session_id)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
        tx.commit().await.map_err(unavailable)?;
        session.secret_hash = *new;
        session.last_seen_at = from_millis(now_ms)?;
        session.idle_expires_at = from_millis(to_millis(idle_expires_at))?;
        Ok(Rotation::Rotated(session))
    }

    async fn session_by_refresh(&self, hash: &SecretHash) -> StoreResult<Option<(Session, bool)>> {
        let row = sqlx::query(concat!(
            "SELECT r.replaced_at AS replaced_at, ",
            "s.id, s.kind, s.user_id, s.secret_hash, s.created_at, s.last_seen_at, s.idle_expires_at, ",
            "s.absolute_expires_at, s.remember_me, s.ip, s.user_agent ",
            "FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.hash = $1"
        ))
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

async fn insert_key<'c, E>(executor: E, key: &StoredKey) -> StoreResult<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    sqlx::query(
        "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retired_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
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
impl Keys for PgStore {
    async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, created_at, retired_at, expires_at FROM signing_keys ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(read_key).collect()
    }

    async fn ensure_current_key(&self, candidate: &StoredKey) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        advisory_lock(&mut tx, KEYS_LOCK).await?;
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
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        advisory_lock(&mut tx, KEYS_LOCK).await?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1, expires_at = $2 WHERE retired_at IS NULL",
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
        let done = sqlx::query(
            "UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3",
        )
        .bind(new)
        .bind(kid)
        .bind(old)
        .execute(&self.pool)
        .await
        .map_err(write_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_keys(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(sweeps::EXPIRED_KEYS, now).await
    }
}

#[async_trait]
impl Revocations for PgStore {
    async fn insert_revocations(
        &self,
        entries: &[(RevocationKind, String, OffsetDateTime)],
    ) -> StoreResult<Vec<Revocation>> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // Appends are serialised so positions become visible in order: a
        // reader that has seen position N has seen everything below it.
        advisory_lock(&mut tx, REVOCATIONS_LOCK).await?;
        let mut stored = Vec::with_capacity(entries.len());
        for (kind, value, expires_at) in entries {
            let row = sqlx::query(
                "INSERT INTO revocations (kind, value, expires_at) VALUES ($1, $2, $3) \
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
        // Delivered to every listening node when the transaction commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(REVOCATION_CHANNEL)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
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
            "SELECT seq, kind, value, expires_at FROM revocations WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3",
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

#[async_trait]
impl Audit for PgStore {
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        append_audit(&self.pool, e).await
    }

    async fn list_audit(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, user_id, ip, user_agent, at, detail::text AS detail FROM audit_log \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
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
impl Health for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn session_storage_bytes(&self) -> StoreResult<Option<u64>> {
        // The sessions table with its indexes and TOAST.
        let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('sessions')")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(bytes).ok())
    }
}

#[async_trait]
impl Counters for PgStore {
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
            "INSERT INTO counters (key, count, expires_at) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN counters.expires_at <= $3 THEN 1 ELSE counters.count + 1 END, \
             expires_at = CASE WHEN counters.expires_at <= $3 THEN excluded.expires_at ELSE counters.expires_at END \
             RETURNING count, expires_at",
        )
        .bind(key)
            .bind(end)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        let count: i64 = row.try_get("count").map_err(corrupt)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(corrupt)?;
        Ok((u64::try_from(count).unwrap_or(0), from_millis(expires_at)?))
    }

    async fn reserve(&self, attempt: &Attempt<'_>, now: OffsetDateTime) -> StoreResult<Admission> {
        // One call of the migration's reserve_attempt: both keys locked,
        // checked and counted in one transaction and one round trip.
        let rows = bind_attempt(
            sqlx::query(
                "SELECT key, count, expires_at, blocked_until, granted \
                 FROM reserve_attempt($1, $2, $3, $4, $5, $6, $7)",
            ),
            attempt,
            now,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let granted = match rows.first() {
            Some(row) => row.try_get::<bool, _>("granted").map_err(corrupt)?,
            None => false,
        };
        if granted && let Some(admission) = admitted(attempt, &rows)? {
            return Ok(admission);
        }
        refused(attempt, &rows, now)
    }

    async fn release(
        &self,
        attempt: &Attempt<'_>,
        succeeded: bool,
        _now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query("SELECT release_attempt($1, $2, $3)")
            .bind(attempt.ip)
            .bind(attempt.account)
            .bind(succeeded)
            .execute(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_expired_counters(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(sweeps::EXPIRED_COUNTERS, now).await
    }
}
