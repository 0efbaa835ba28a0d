//! A statement being bound: chained binds that go through the dialect's
//! conversions, then run on an executor. The SQL is always a `&'static
//! str`, so sqlx prepares it once per connection and keeps it.

use std::net::IpAddr;

use sqlx::{Database, Executor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::Statement;
use crate::dialect::Dialect;

/// A statement of dialect `D` and what has been bound so far, in `$N` order.
pub struct Sql<'q, D: Dialect>(Statement<'q, D>);

impl<'q, D: Dialect> Sql<'q, D> {
    /// A statement to bind.
    #[inline]
    pub fn new(sql: &'static str) -> Self {
        Self(sqlx::query(sql))
    }

    /// A statement assembled at run time from fixed parts (column lists,
    /// placeholders), never from input: a multi-row insert whose row
    /// count is only known then. sqlx keeps it prepared per text.
    pub fn assembled(sql: String) -> Self {
        Self(sqlx::query(sqlx::AssertSqlSafe(sql)))
    }

    /// Binds text.
    #[inline]
    pub fn text(self, v: &str) -> Self {
        Self(D::bind_text(self.0, v))
    }

    /// Binds text or NULL.
    #[inline]
    pub fn opt_text(self, v: Option<&str>) -> Self {
        Self(D::bind_opt_text(self.0, v))
    }

    /// Binds bytes.
    #[inline]
    pub fn bytes(self, v: &[u8]) -> Self {
        Self(D::bind_bytes(self.0, v))
    }

    /// Binds bytes or NULL.
    #[inline]
    pub fn opt_bytes(self, v: Option<&[u8]>) -> Self {
        Self(D::bind_opt_bytes(self.0, v))
    }

    /// Binds an integer.
    #[inline]
    pub fn int(self, v: i64) -> Self {
        Self(D::bind_int(self.0, v))
    }

    /// Binds a flag.
    #[inline]
    pub fn flag(self, v: bool) -> Self {
        Self(D::bind_flag(self.0, v))
    }

    /// Binds a time, to the millisecond.
    #[inline]
    pub fn time(self, v: OffsetDateTime) -> Self {
        Self(D::bind_time(self.0, v))
    }

    /// Binds a time or NULL.
    #[inline]
    pub fn opt_time(self, v: Option<OffsetDateTime>) -> Self {
        Self(D::bind_opt_time(self.0, v))
    }

    /// Binds an id.
    #[inline]
    pub fn uuid(self, v: Uuid) -> Self {
        Self(D::bind_uuid(self.0, v))
    }

    /// Binds an id or NULL.
    #[inline]
    pub fn opt_uuid(self, v: Option<Uuid>) -> Self {
        Self(D::bind_opt_uuid(self.0, v))
    }

    /// Binds an address or NULL.
    #[inline]
    pub fn ip(self, v: Option<IpAddr>) -> Self {
        Self(D::bind_ip(self.0, v))
    }

    /// Runs the statement; how many rows it changed.
    pub async fn execute<'c, E>(self, executor: E) -> sqlx::Result<u64>
    where
        E: Executor<'c, Database = D::Db>,
    {
        let done: <D::Db as Database>::QueryResult = self.0.execute(executor).await?;
        Ok(D::rows_affected(&done))
    }

    /// Runs the statement; its first row, if any.
    pub async fn fetch_optional<'c, E>(self, executor: E) -> sqlx::Result<Option<D::Row>>
    where
        E: Executor<'c, Database = D::Db>,
    {
        self.0.fetch_optional(executor).await
    }

    /// Runs the statement; its one row.
    pub async fn fetch_one<'c, E>(self, executor: E) -> sqlx::Result<D::Row>
    where
        E: Executor<'c, Database = D::Db>,
    {
        self.0.fetch_one(executor).await
    }

    /// Runs the statement; all its rows.
    pub async fn fetch_all<'c, E>(self, executor: E) -> sqlx::Result<Vec<D::Row>>
    where
        E: Executor<'c, Database = D::Db>,
    {
        self.0.fetch_all(executor).await
    }
}
