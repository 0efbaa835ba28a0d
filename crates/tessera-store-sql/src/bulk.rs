//! Bulk loading: users, sessions and revocations by the thousand, in
//! multi-row inserts, one transaction per call (the larger the call, the
//! fewer times each index page is written).
//!
//! Not a store trait: the server never loads in bulk. It is for filling a
//! store from elsewhere (an import, `tessera bench --populate`), and writes
//! the rows the server's own writes would, bound through the same dialect
//! (so the same encodings of times, ids and addresses), without the audit
//! event a sign-in also writes.

use std::fmt::Write as _;

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::pool::PoolConnection;
use tessera_core::revocation::RevocationKind;
use tessera_core::session::{Session, SessionKind};
use tessera_core::store::StoreResult;
use tessera_core::user::UserRecord;
use time::OffsetDateTime;

use crate::dialect::{Dialect, Lock};
use crate::errors::{corrupt, unavailable, write_error};
use crate::sessions::bind_session_row;
use crate::sql::Sql;
use crate::store::SqlStore;
use crate::users::{bind_user, user_columns};

/// Rows per statement: each statement is one round trip, and 500 rows of
/// the widest table (sessions, 12 values a row) stay far below either
/// database's limit on bound values (SQLite's 32,766, PostgreSQL's 65,535).
const ROWS_PER_STATEMENT: usize = 500;

const USERS: &str = concat!("INSERT INTO users (", user_columns!(), ")");
const USER_WIDTH: usize = 8;
const SESSIONS: &str = concat!("INSERT INTO sessions (", crate::session_columns!(), ")");
const SESSION_WIDTH: usize = 12;
const REFRESH_TOKENS: &str = "INSERT INTO refresh_tokens (hash, session_id, created_at)";
const REFRESH_WIDTH: usize = 3;
const REVOCATIONS: &str = "INSERT INTO revocations (kind, value, expires_at)";
const REVOCATION_WIDTH: usize = 3;

/// Loading many rows at once (see the module's documentation).
#[async_trait]
pub trait BulkLoad: Send + Sync {
    /// Stores users with their password hashes, all or none;
    /// [`tessera_core::store::StoreError::Duplicate`] if a name or id is taken.
    async fn load_users(&self, users: &[UserRecord]) -> StoreResult<()>;
    /// Stores sessions of existing users as sign-ins store them, all or
    /// none: a token session with its secret hash as its current refresh
    /// token.
    async fn load_sessions(&self, sessions: &[Session]) -> StoreResult<()>;
    /// Appends revocations to the log in this order, all or none, and
    /// announces them as [`tessera_core::store::Revocations::insert_revocations`] does.
    async fn load_revocations(
        &self,
        entries: &[(RevocationKind, String, OffsetDateTime)],
    ) -> StoreResult<()>;
}

/// `head VALUES ($1, …, $width), …`: `rows` tuples of placeholders.
fn values(head: &str, width: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(head.len() + 8 + rows * width * 6);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            // Writing to a String cannot fail.
            let _ = write!(sql, "${}", row * width + column + 1);
        }
        sql.push(')');
    }
    sql
}

/// Inserts `items` into the table of `head` on `conn`, `ROWS_PER_STATEMENT`
/// a statement, each item's `width` values bound by `bind`.
async fn insert_all<D: Dialect, T: Sync>(
    conn: &mut D::Conn,
    head: &str,
    width: usize,
    items: &[T],
    bind: impl Fn(Sql<'static, D>, &T) -> Sql<'static, D> + Send + Sync,
) -> StoreResult<()> {
    for chunk in items.chunks(ROWS_PER_STATEMENT) {
        let mut statement = Sql::<D>::assembled(values(head, width, chunk.len()));
        for item in chunk {
            statement = bind(statement, item);
        }
        statement
            .execute(D::on(&mut *conn))
            .await
            .map_err(write_error)?;
    }
    Ok(())
}

impl<D: Dialect> SqlStore<D> {
    /// A connection of the pool, set up for a bulk load
    /// ([`Dialect::BULK_LOAD_SETUP`]); give it to [`end_bulk`] after.
    async fn bulk_connection(&self) -> StoreResult<PoolConnection<D::Db>> {
        let mut conn = self.pool().acquire().await.map_err(unavailable)?;
        if !D::BULK_LOAD_SETUP.is_empty() {
            Sql::<D>::new(D::BULK_LOAD_SETUP)
                .execute(D::on(&mut *conn))
                .await
                .map_err(unavailable)?;
        }
        Ok(conn)
    }
}

/// Undoes [`SqlStore::bulk_connection`]'s setup. Best effort: a connection
/// that cannot take it is broken, and the pool drops it.
async fn end_bulk<D: Dialect>(conn: &mut PoolConnection<D::Db>) {
    if !D::BULK_LOAD_TEARDOWN.is_empty() {
        let _ = Sql::<D>::new(D::BULK_LOAD_TEARDOWN)
            .execute(D::on(&mut *conn))
            .await;
    }
}

#[async_trait]
impl<D: Dialect> BulkLoad for SqlStore<D> {
    async fn load_users(&self, users: &[UserRecord]) -> StoreResult<()> {
        let rows = users
            .iter()
            .map(|r| Ok((r, serde_json::to_string(&r.user.roles).map_err(corrupt)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut conn = self.bulk_connection().await?;
        let loaded = async {
            let mut tx = conn.begin().await.map_err(unavailable)?;
            insert_all::<D, _>(&mut tx, USERS, USER_WIDTH, &rows, |q, (r, roles)| {
                bind_user(q, &r.user, &r.password_hash, roles)
            })
            .await?;
            tx.commit().await.map_err(unavailable)
        }
        .await;
        end_bulk::<D>(&mut conn).await;
        loaded
    }

    async fn load_sessions(&self, sessions: &[Session]) -> StoreResult<()> {
        let tokens: Vec<&Session> = sessions
            .iter()
            .filter(|s| s.kind == SessionKind::Token)
            .collect();
        let mut conn = self.bulk_connection().await?;
        let loaded = async {
            let mut tx = conn.begin().await.map_err(unavailable)?;
            insert_all::<D, _>(&mut tx, SESSIONS, SESSION_WIDTH, sessions, bind_session_row)
                .await?;
            insert_all::<D, _>(&mut tx, REFRESH_TOKENS, REFRESH_WIDTH, &tokens, |q, s| {
                q.bytes(s.secret_hash.as_bytes())
                    .text(s.id.as_str())
                    .time(s.created_at)
            })
            .await?;
            tx.commit().await.map_err(unavailable)
        }
        .await;
        end_bulk::<D>(&mut conn).await;
        loaded
    }

    async fn load_revocations(
        &self,
        entries: &[(RevocationKind, String, OffsetDateTime)],
    ) -> StoreResult<()> {
        // Serialised like every append, so positions become visible in order.
        let mut tx = D::begin_serialized(self.pool(), Lock::Revocations).await?;
        insert_all::<D, _>(
            &mut tx,
            REVOCATIONS,
            REVOCATION_WIDTH,
            entries,
            |q, (kind, value, expires_at)| q.text(kind.as_str()).text(value).time(*expires_at),
        )
        .await?;
        D::announce_revocations(&mut tx).await?;
        tx.commit().await.map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::values;

    #[test]
    fn placeholders_number_every_value_of_every_row() {
        assert_eq!(
            values("INSERT INTO t (a, b)", 2, 3),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6)"
        );
        assert_eq!(
            values("INSERT INTO t (a)", 1, 1),
            "INSERT INTO t (a) VALUES ($1)"
        );
    }
}
