//! Sessions of both kinds (`sessions`).

use tessera_core::audit::AuditEvent;
use tessera_core::auth_methods::AuthMethods;
use tessera_core::secret::SecretHash;
use tessera_core::session::{Session, SessionId, SessionKind};
use tessera_core::store::StoreResult;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::bind_audit;
use crate::dialect::Dialect;
use crate::errors::{corrupt, unavailable, write_error};
use crate::sql::Sql;
use crate::store::SqlStore;

/// The columns of a session, in the order [`bind_session`] binds them.
/// A macro, to be spliced into static SQL (the dialects' too) with concat!.
#[macro_export]
macro_rules! session_columns {
    () => {
        "id, kind, user_id, secret_hash, created_at, last_seen_at, idle_expires_at, absolute_expires_at, remember_me, ip, user_agent, amr"
    };
}

const BY_SECRET: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE secret_hash = $1"
);
const BY_ID: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE id = $1"
);
const TOUCH: &str = "UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE id = $3";
const DELETE: &str = concat!(
    "DELETE FROM sessions WHERE id = $1 RETURNING ",
    session_columns!()
);
const DELETE_OF_USER: &str = concat!(
    "DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2 RETURNING ",
    session_columns!()
);
const LIVE_OF_USER: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE user_id = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2 \
     ORDER BY created_at DESC, id"
);
/// Sessions past their idle or absolute expiry at `$1`, `$2` at most.
const EXPIRED: &str = crate::store::batched_delete!(
    "sessions",
    "id",
    "idle_expires_at <= $1 OR absolute_expires_at <= $1"
);

/// Binds a session's columns, in `session_columns!` order.
pub(crate) fn bind_session_row<'q, D: Dialect>(q: Sql<'q, D>, s: &Session) -> Sql<'q, D> {
    q.text(s.id.as_str())
        .text(s.kind.as_str())
        .uuid(s.user_id)
        .bytes(s.secret_hash.as_bytes())
        .time(s.created_at)
        .time(s.last_seen_at)
        .time(s.idle_expires_at)
        .time(s.absolute_expires_at)
        .flag(s.remember_me)
        .ip(s.ip)
        .opt_text(s.user_agent.as_deref())
        .int(i64::from(s.amr.bits()))
}

/// Binds a new session's columns (`$1`..`$12`), then the condition of its
/// insert: its user's id (`$13`) and the password hash the sign-in was
/// checked against (`$14`).
fn bind_session<'q, D: Dialect>(q: Sql<'q, D>, s: &Session, password_hash: &str) -> Sql<'q, D> {
    bind_session_row(q, s).uuid(s.user_id).text(password_hash)
}

/// A session row (`session_columns!`).
pub(crate) fn read_session<D: Dialect>(row: &D::Row) -> StoreResult<Session> {
    let id = D::text(row, "id")?;
    let kind = D::text(row, "kind")?;
    let hash = D::bytes(row, "secret_hash")?;
    Ok(Session {
        id: SessionId::parse(&id).ok_or_else(|| corrupt("session id"))?,
        kind: SessionKind::parse(&kind).ok_or_else(|| corrupt("session kind"))?,
        user_id: D::uuid(row, "user_id")?,
        secret_hash: SecretHash::from_slice(&hash).ok_or_else(|| corrupt("secret hash"))?,
        created_at: D::time(row, "created_at")?,
        last_seen_at: D::time(row, "last_seen_at")?,
        idle_expires_at: D::time(row, "idle_expires_at")?,
        absolute_expires_at: D::time(row, "absolute_expires_at")?,
        remember_me: D::flag(row, "remember_me")?,
        ip: D::ip(row, "ip")?,
        user_agent: D::opt_text(row, "user_agent")?,
        amr: read_amr::<D>(row)?,
    })
}

/// A session's authentication methods (`amr`, a bit set).
pub(crate) fn read_amr<D: Dialect>(row: &D::Row) -> StoreResult<AuthMethods> {
    let bits = D::int(row, "amr")?;
    u8::try_from(bits)
        .ok()
        .and_then(AuthMethods::from_bits)
        .ok_or_else(|| corrupt("session amr"))
}

impl<D: Dialect> SqlStore<D> {
    /// Runs `sql`, [`Dialect::INSERT_SESSION`] or one that also stores the
    /// first refresh token, for session `s` and its audit `event`: in one
    /// round trip, atomically. False when the user's state refused it.
    pub(crate) async fn insert_session_with(
        &self,
        sql: &'static str,
        s: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        let all = bind_audit(bind_session(Sql::<D>::new(sql), s, password_hash), event);
        let changed = if D::WRITES_ARE_ONE_STATEMENT {
            all.execute(D::on_pool(self.pool()))
                .await
                .map_err(write_error)?
        } else {
            let mut tx = self.pool().begin().await.map_err(unavailable)?;
            let changed = all.execute(D::on(&mut tx)).await.map_err(write_error)?;
            tx.commit().await.map_err(unavailable)?;
            changed
        };
        Ok(changed > 0)
    }

    /// See [`tessera_core::store::Sessions::insert_session`].
    pub async fn insert_session(
        &self,
        s: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        self.insert_session_with(D::INSERT_SESSION, s, event, password_hash)
            .await
    }

    /// See [`tessera_core::store::Sessions::session_by_secret`].
    pub async fn session_by_secret(&self, hash: &SecretHash) -> StoreResult<Option<Session>> {
        Sql::<D>::new(BY_SECRET)
            .bytes(hash.as_bytes())
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_session::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::Sessions::session_by_id`].
    pub async fn session_by_id(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        Sql::<D>::new(BY_ID)
            .text(id.as_str())
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_session::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::Sessions::touch_session`].
    pub async fn touch_session(&self, session: &Session) -> StoreResult<()> {
        Sql::<D>::new(TOUCH)
            .time(session.last_seen_at)
            .time(session.idle_expires_at)
            .text(session.id.as_str())
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// See [`tessera_core::store::Sessions::delete_session`].
    pub async fn delete_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        Sql::<D>::new(DELETE)
            .text(id.as_str())
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_session::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::Sessions::delete_user_sessions`].
    pub async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<&SessionId>,
    ) -> StoreResult<Vec<Session>> {
        let rows = Sql::<D>::new(DELETE_OF_USER)
            .uuid(user_id)
            .opt_text(except.map(SessionId::as_str))
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_session::<D>).collect()
    }

    /// See [`tessera_core::store::Sessions::list_user_sessions`].
    pub async fn list_user_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        let rows = Sql::<D>::new(LIVE_OF_USER)
            .uuid(user_id)
            .time(now)
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_session::<D>).collect()
    }

    /// See [`tessera_core::store::Sessions::delete_expired_sessions`].
    pub async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep_in_batches(EXPIRED, now).await
    }
}
