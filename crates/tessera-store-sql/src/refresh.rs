//! Refresh tokens of token sessions (`refresh_tokens`) and their exchange.
//! A session's current token is its `secret_hash`; replaced tokens are
//! kept (with `replaced_at`) to tell a retry within the grace window from
//! theft.

use tessera_core::audit::AuditEvent;
use tessera_core::secret::SecretHash;
use tessera_core::session::Session;
use tessera_core::store::{
    Holder, Presented, Rotation, StoreResult, check_presenter, from_millis, to_millis,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::dialect::{Dialect, Exchange};
use crate::errors::{unavailable, write_error};
use crate::sessions::read_session;
use crate::sql::Sql;
use crate::store::SqlStore;

/// A refresh token (`$1`) with its session (`session_columns!`) and when
/// it was replaced (`replaced_at`, NULL while current), in one read; a
/// caller may add columns and joins. A macro, so a dialect can extend it in
/// static SQL (a row lock).
#[macro_export]
macro_rules! session_by_refresh {
    ($($columns:literal, $joins:literal)?) => {
        concat!(
            "SELECT r.replaced_at AS replaced_at, ",
            "s.id, s.kind, s.user_id, s.secret_hash, s.created_at, s.last_seen_at, s.idle_expires_at, ",
            "s.absolute_expires_at, s.remember_me, s.ip, s.user_agent",
            $($columns,)?
            " FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id",
            $($joins,)?
            " WHERE r.hash = $1"
        )
    };
}

/// [`session_by_refresh!`] and the client holding the session, if any
/// (`client_id`, `client_scope`, `client_public`): all an exchange decides
/// on, in one read. Each join is by primary key; a link goes with its
/// session and with its client (foreign keys), so it never lacks either.
#[macro_export]
macro_rules! refresh_for_exchange {
    () => {
        $crate::session_by_refresh!(
            ", l.client_id AS client_id, l.scope AS client_scope, \
             COALESCE(c.public, TRUE) AS client_public",
            " LEFT JOIN oauth_client_sessions l ON l.session_id = s.id \
             LEFT JOIN oauth_clients c ON c.id = l.client_id"
        )
    };
}

const SESSION_BY_REFRESH: &str = session_by_refresh!();
const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";
/// Tokens replaced before `$1` (kept until then to detect reuse).
const REPLACED_BEFORE: &str =
    "DELETE FROM refresh_tokens WHERE replaced_at IS NOT NULL AND replaced_at < $1";

/// Performs `x` inside a transaction on `conn` that the dialect has made
/// exclusive for the token's session (a row lock, or the database's one
/// writer): reads the token, its session and the session's client in one
/// statement; refuses a client the token is not for before anything else
/// (a stranger neither spends nor revokes it), then either deletes the
/// session (reuse past the grace window) or writes the exchange in one
/// round trip. The caller commits.
pub async fn exchange<D: Dialect>(conn: &mut D::Conn, x: &Exchange) -> StoreResult<Rotation> {
    let row = Sql::<D>::new(D::REFRESH_FOR_EXCHANGE)
        .bytes(x.presented.as_bytes())
        .fetch_optional(D::on(&mut *conn))
        .await
        .map_err(unavailable)?;
    let Some(row) = row else {
        return Ok(Rotation::Unknown);
    };
    let holder = match D::opt_uuid(&row, "client_id")? {
        Some(client_id) => Some(Holder {
            client_id,
            scope: D::text(&row, "client_scope")?,
            public: D::flag(&row, "client_public")?,
        }),
        None => None,
    };
    if let Err(wrong) = check_presenter(holder.as_ref(), x.by) {
        return Ok(Rotation::WrongClient(wrong));
    }
    let replaced_at = D::opt_time(&row, "replaced_at")?;
    let mut session = read_session::<D>(&row)?;
    if !session.is_live(x.now) {
        return Ok(Rotation::Expired);
    }
    if let Some(replaced_at) = replaced_at
        && replaced_at + x.grace < x.now
    {
        Sql::<D>::new(DELETE_SESSION)
            .text(session.id.as_str())
            .execute(D::on(&mut *conn))
            .await
            .map_err(unavailable)?;
        return Ok(Rotation::Reused(session));
    }
    // Whatever was current (the presented token, or within the grace
    // window its successor) is replaced now; the new token is the only
    // current one.
    let idle_expires_at = (x.now + x.idle_ttl).min(session.absolute_expires_at);
    Sql::<D>::new(D::EXCHANGE_REFRESH)
        .time(x.now)
        .text(session.id.as_str())
        .bytes(x.new.as_bytes())
        .time(idle_expires_at)
        .bytes(session.secret_hash.as_bytes())
        .execute(D::on(&mut *conn))
        .await
        .map_err(write_error)?;
    // As stored: to the millisecond.
    session.secret_hash = x.new;
    session.last_seen_at = from_millis(to_millis(x.now))?;
    session.idle_expires_at = from_millis(to_millis(idle_expires_at))?;
    let presented = match replaced_at {
        None => Presented::Current,
        Some(_) => Presented::WithinGrace,
    };
    Ok(Rotation::Rotated(session, presented, holder))
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::RefreshTokens::insert_token_session`].
    pub async fn insert_token_session(
        &self,
        s: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        self.insert_session_with(D::INSERT_TOKEN_SESSION, s, event, password_hash)
            .await
    }

    /// See [`tessera_core::store::RefreshTokens::rotate_refresh`].
    pub async fn rotate_refresh(
        &self,
        presented: &SecretHash,
        new: &SecretHash,
        by: Option<Uuid>,
        now: OffsetDateTime,
        grace: time::Duration,
        idle_ttl: time::Duration,
    ) -> StoreResult<Rotation> {
        let x = Exchange {
            presented: *presented,
            new: *new,
            by,
            now,
            grace,
            idle_ttl,
        };
        self.dialect().rotate_refresh(self.pool(), x).await
    }

    /// See [`tessera_core::store::RefreshTokens::session_by_refresh`].
    pub async fn session_by_refresh(
        &self,
        hash: &SecretHash,
    ) -> StoreResult<Option<(Session, bool)>> {
        let row = Sql::<D>::new(SESSION_BY_REFRESH)
            .bytes(hash.as_bytes())
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        row.map(|row| {
            let replaced = D::opt_time(&row, "replaced_at")?;
            Ok((read_session::<D>(&row)?, replaced.is_none()))
        })
        .transpose()
    }

    /// See [`tessera_core::store::RefreshTokens::prune_refresh_tokens`].
    pub async fn prune_refresh_tokens(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(REPLACED_BEFORE, before).await
    }
}
