//! What the SQL stores (SQLite and PostgreSQL) share: their tables have the
//! same columns with the same encodings (times as Unix milliseconds, ids
//! and addresses as text, roles as a JSON array), so rows are read back
//! into the domain once, generically over the sqlx row type, and sqlx
//! errors map to [`StoreError`] the same way.

use std::net::IpAddr;

use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};
use tessera_core::audit::AuditEvent;
use tessera_core::keys::{Algorithm, StoredKey};
use tessera_core::revocation::{Revocation, RevocationKind};
use tessera_core::secret::SecretHash;
use tessera_core::session::{Session, SessionId, SessionKind};
use tessera_core::store::{StoreError, StoreResult, from_millis, to_millis};
use tessera_core::user::{User, UserRecord};
use tessera_core::username::Username;
use uuid::Uuid;

pub mod counters;

/// Deletes bounded by a time: their one parameter, `$1`, is the cut-off in
/// Unix milliseconds. `$1` is PostgreSQL's placeholder and SQLite takes it too.
pub mod sweeps {
    /// Sessions past their idle or absolute expiry.
    pub const EXPIRED_SESSIONS: &str =
        "DELETE FROM sessions WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1";
    /// Refresh tokens replaced before the cut-off (kept until then to detect reuse).
    pub const REPLACED_REFRESH_TOKENS: &str =
        "DELETE FROM refresh_tokens WHERE replaced_at IS NOT NULL AND replaced_at < $1";
    /// Retired signing keys no token can still need.
    pub const EXPIRED_KEYS: &str =
        "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at <= $1";
    /// Revocations that can no longer match a valid token.
    pub const EXPIRED_REVOCATIONS: &str = "DELETE FROM revocations WHERE expires_at <= $1";
    /// Counters whose window and block have passed.
    pub const EXPIRED_COUNTERS: &str =
        "DELETE FROM counters WHERE expires_at <= $1 AND blocked_until <= $1";
}

/// The store cannot be reached or refused the statement.
pub fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Like [`unavailable`], but a unique-key violation is [`StoreError::Duplicate`].
pub fn write_error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Duplicate;
    }
    unavailable(e)
}

/// Stored data that does not read back into the domain.
pub fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Binds a new session's columns in `session_columns` order: id, kind,
/// user_id, secret_hash, created_at, last_seen_at, idle_expires_at,
/// absolute_expires_at, remember_me, ip, user_agent.
pub fn bind_session<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments>,
    s: &'q Session,
) -> Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(s.id.as_str())
        .bind(s.kind.as_str())
        .bind(s.user_id.to_string())
        .bind(&s.secret_hash.as_bytes()[..])
        .bind(to_millis(s.created_at))
        .bind(to_millis(s.last_seen_at))
        .bind(to_millis(s.idle_expires_at))
        .bind(to_millis(s.absolute_expires_at))
        .bind(s.remember_me)
        .bind(s.ip.map(|ip| ip.to_string()))
        .bind(s.user_agent.as_deref())
}

/// Binds the condition of a session insert: its user's id and the password
/// hash the sign-in was checked against.
pub fn bind_credential<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments>,
    s: &'q Session,
    password_hash: &'q str,
) -> Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
{
    query.bind(s.user_id.to_string()).bind(password_hash)
}

/// Binds an audit event's columns: kind, user_id, ip, user_agent, at, detail.
pub fn bind_audit<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments>,
    e: &'q AuditEvent,
) -> Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    &'q String: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(&e.kind)
        .bind(e.user_id.map(|id| id.to_string()))
        .bind(e.ip.map(|ip| ip.to_string()))
        .bind(e.user_agent.as_deref())
        .bind(to_millis(e.at))
        .bind(e.detail.to_string())
}

/// One column of `row`, decoded; a wrong type or a missing column is corrupt data.
fn column<'r, R, T>(row: &'r R, name: &'r str) -> StoreResult<T>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name).map_err(corrupt)
}

/// A user row (`user_columns`).
pub fn read_user<'r, R>(row: &'r R) -> StoreResult<UserRecord>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let id: String = column(row, "id")?;
    let roles: String = column(row, "roles")?;
    let user = User {
        id: Uuid::parse_str(&id).map_err(corrupt)?,
        username: Username::from_stored(
            column(row, "username")?,
            column(row, "username_normalized")?,
        ),
        roles: serde_json::from_str(&roles).map_err(corrupt)?,
        disabled: column(row, "disabled")?,
        created_at: from_millis(column(row, "created_at")?)?,
        updated_at: from_millis(column(row, "updated_at")?)?,
    };
    Ok(UserRecord {
        user,
        password_hash: column(row, "password_hash")?,
    })
}

/// A session row (`session_columns`).
pub fn read_session<'r, R>(row: &'r R) -> StoreResult<Session>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let id: String = column(row, "id")?;
    let kind: String = column(row, "kind")?;
    let user_id: String = column(row, "user_id")?;
    let hash: Vec<u8> = column(row, "secret_hash")?;
    let ip: Option<String> = column(row, "ip")?;
    Ok(Session {
        id: SessionId::parse(&id).ok_or_else(|| corrupt("session id"))?,
        kind: SessionKind::parse(&kind).ok_or_else(|| corrupt("session kind"))?,
        user_id: Uuid::parse_str(&user_id).map_err(corrupt)?,
        secret_hash: SecretHash::from_slice(&hash).ok_or_else(|| corrupt("secret hash"))?,
        created_at: from_millis(column(row, "created_at")?)?,
        last_seen_at: from_millis(column(row, "last_seen_at")?)?,
        idle_expires_at: from_millis(column(row, "idle_expires_at")?)?,
        absolute_expires_at: from_millis(column(row, "absolute_expires_at")?)?,
        remember_me: column(row, "remember_me")?,
        ip: ip.and_then(|ip| ip.parse::<IpAddr>().ok()),
        user_agent: column(row, "user_agent")?,
    })
}

/// A signing key row.
pub fn read_key<'r, R>(row: &'r R) -> StoreResult<StoredKey>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let algorithm: String = column(row, "algorithm")?;
    let retired_at: Option<i64> = column(row, "retired_at")?;
    let expires_at: Option<i64> = column(row, "expires_at")?;
    Ok(StoredKey {
        kid: column(row, "kid")?,
        algorithm: Algorithm::parse(&algorithm).ok_or_else(|| corrupt("key algorithm"))?,
        sealed: column(row, "private_key")?,
        created_at: from_millis(column(row, "created_at")?)?,
        retired_at: retired_at.map(from_millis).transpose()?,
        expires_at: expires_at.map(from_millis).transpose()?,
    })
}

/// A revocation row.
pub fn read_revocation<'r, R>(row: &'r R) -> StoreResult<Revocation>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: String = column(row, "kind")?;
    Ok(Revocation {
        seq: column(row, "seq")?,
        kind: RevocationKind::parse(&kind).ok_or_else(|| corrupt("revocation kind"))?,
        value: column(row, "value")?,
        expires_at: from_millis(column(row, "expires_at")?)?,
    })
}
