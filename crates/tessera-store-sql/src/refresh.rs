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

/// A refresh token (`$1`, or the placeholder given as `hash`) with its
/// session (`session_columns!`) and when it was replaced (`replaced_at`,
/// NULL while current), in one read; a caller may add columns and joins. A
/// macro, so a dialect can extend it in static SQL (a row lock, other
/// statements before it).
#[macro_export]
macro_rules! session_by_refresh {
    () => {
        $crate::session_by_refresh!(hash = "$1")
    };
    (hash = $hash:literal $(, $columns:literal, $joins:literal)?) => {
        concat!(
            "SELECT r.replaced_at AS replaced_at, ",
            "s.id, s.kind, s.user_id, s.secret_hash, s.created_at, s.last_seen_at, s.idle_expires_at, ",
            "s.absolute_expires_at, s.remember_me, s.ip, s.user_agent, s.amr",
            $($columns,)?
            " FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id",
            $($joins,)?
            " WHERE r.hash = ",
            $hash
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
        $crate::refresh_for_exchange!(hash = "$1")
    };
    (hash = $hash:literal) => {
        $crate::session_by_refresh!(
            hash = $hash,
            ", l.client_id AS client_id, l.scope AS client_scope, \
             COALESCE(c.public, TRUE) AS client_public",
            " LEFT JOIN oauth_client_sessions l ON l.session_id = s.id \
             LEFT JOIN oauth_clients c ON c.id = l.client_id"
        )
    };
}

/// Ends a session whose replaced token came back after the grace window
/// (`$1`: the session id). A macro, so a dialect can put other statements
/// after it in static SQL.
#[macro_export]
macro_rules! delete_reused_session {
    () => {
        "DELETE FROM sessions WHERE id = $1"
    };
}

const SESSION_BY_REFRESH: &str = session_by_refresh!();
/// Tokens replaced before `$1` (kept until then to detect reuse).
const REPLACED_BEFORE: &str =
    "DELETE FROM refresh_tokens WHERE replaced_at IS NOT NULL AND replaced_at < $1";

/// What an exchange does, decided from its read ([`decide`]).
#[derive(Debug)]
pub enum Step {
    /// Nothing to write: the answer as it is.
    Answer(Rotation),
    /// A replaced token past the grace window: theft. The session is
    /// deleted ([`delete_reused_session!`], bound by [`Step::bind_writes`]).
    Revoke(Session),
    /// The exchange: its writes ([`Dialect::EXCHANGE_REFRESH`], bound by
    /// [`Step::bind_writes`]), then the session as they leave it.
    Rotate {
        /// The session as read.
        session: Session,
        /// Which token was presented.
        presented: Presented,
        /// The client holding the session.
        holder: Option<Holder>,
        /// The session's new idle expiry.
        idle_expires_at: OffsetDateTime,
    },
}

/// Decides exchange `x` from its read (the token, its session and the
/// client holding it: `refresh_for_exchange!`'s row, `None` when the token
/// is unknown). A client the token is not for is refused before anything
/// else (a stranger neither spends nor revokes it).
pub fn decide<D: Dialect>(row: Option<D::Row>, x: &Exchange) -> StoreResult<Step> {
    let Some(row) = row else {
        return Ok(Step::Answer(Rotation::Unknown));
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
        return Ok(Step::Answer(Rotation::WrongClient(wrong)));
    }
    let replaced_at = D::opt_time(&row, "replaced_at")?;
    let session = read_session::<D>(&row)?;
    if !session.is_live(x.now) {
        return Ok(Step::Answer(Rotation::Expired));
    }
    Ok(match replaced_at {
        Some(replaced_at) if replaced_at + x.grace < x.now => Step::Revoke(session),
        // Whatever was current (the presented token, or within the grace
        // window its successor) is replaced now; the new token is the only
        // current one.
        _ => Step::Rotate {
            idle_expires_at: (x.now + x.idle_ttl).min(session.absolute_expires_at),
            session,
            presented: match replaced_at {
                None => Presented::Current,
                Some(_) => Presented::WithinGrace,
            },
            holder,
        },
    })
}

impl Step {
    /// Binds this step's writes (`$1`.. of `sql`, whose text starts with
    /// them): the session id for a revocation; `EXCHANGE_REFRESH`'s five
    /// for an exchange; nothing for an answer.
    pub fn bind_writes<'q, D: Dialect>(&self, sql: Sql<'q, D>, x: &Exchange) -> Sql<'q, D> {
        match self {
            Self::Answer(_) => sql,
            Self::Revoke(session) => sql.text(session.id.as_str()),
            Self::Rotate {
                session,
                idle_expires_at,
                ..
            } => sql
                .time(x.now)
                .text(session.id.as_str())
                .bytes(x.new.as_bytes())
                .time(*idle_expires_at)
                // The current token, replaced by its hash: the session's
                // replaced tokens are kept (for reuse detection) as long
                // as it may idle, hundreds for a session that refreshes
                // often, and finding it among them read them all.
                .bytes(session.secret_hash.as_bytes()),
        }
    }

    /// The exchange's answer, once the writes are done.
    pub fn done(self, x: &Exchange) -> StoreResult<Rotation> {
        Ok(match self {
            Self::Answer(answer) => answer,
            Self::Revoke(session) => Rotation::Reused(session),
            Self::Rotate {
                mut session,
                presented,
                holder,
                idle_expires_at,
            } => {
                // As stored: to the millisecond.
                session.secret_hash = x.new;
                session.last_seen_at = from_millis(to_millis(x.now))?;
                session.idle_expires_at = from_millis(to_millis(idle_expires_at))?;
                Rotation::Rotated(session, presented, holder)
            }
        })
    }
}

/// Performs `x` inside a transaction on `conn` that the dialect has made
/// exclusive for the token's session (a row lock, or the database's one
/// writer): reads the token, its session and the session's client in one
/// statement, decides ([`decide`]), then writes what it decided in one
/// round trip. The caller commits.
pub async fn exchange<D: Dialect>(conn: &mut D::Conn, x: &Exchange) -> StoreResult<Rotation> {
    let row = Sql::<D>::new(D::REFRESH_FOR_EXCHANGE)
        .bytes(x.presented.as_bytes())
        .fetch_optional(D::on(&mut *conn))
        .await
        .map_err(unavailable)?;
    let step = decide::<D>(row, x)?;
    let writes = match &step {
        Step::Answer(_) => None,
        Step::Revoke(_) => Some(delete_reused_session!()),
        Step::Rotate { .. } => Some(D::EXCHANGE_REFRESH),
    };
    if let Some(writes) = writes {
        step.bind_writes(Sql::<D>::new(writes), x)
            .execute(D::on(&mut *conn))
            .await
            .map_err(write_error)?;
    }
    step.done(x)
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
