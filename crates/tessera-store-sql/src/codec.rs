//! The values both dialects store alike (text, bytes, integers, flags) and
//! the executors statements run on, generically over the sqlx database.
//!
//! sqlx states what a database can bind and decode as bounds on the value
//! types (`i64: Encode<'_, DB>`), which generic code would have to repeat
//! everywhere; here they are stated once, on the blanket impl of [`Codec`],
//! and every [`Backend`] whose database meets them is a `Codec`.

use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use tessera_core::store::StoreResult;

use crate::errors::corrupt;

/// A dialect's sqlx types.
pub trait Backend: Sized + Send + Sync + 'static {
    /// The sqlx database.
    type Db: Database<Arguments = Self::Args, Connection = Self::Conn, Row = Self::Row>;
    /// Its bound arguments.
    type Args: IntoArguments<Self::Db>;
    /// Its connection.
    type Conn: sqlx::Connection<Database = Self::Db>;
    /// Its row.
    type Row: Row<Database = Self::Db>;
}

/// A statement of backend `B`, with what has been bound so far.
pub type Statement<'q, B> = Query<'q, <B as Backend>::Db, <B as Backend>::Args>;

/// Binding, decoding and executing what both dialects keep alike.
pub trait Codec: Backend {
    /// The pool as an executor (each statement on a connection of its own).
    fn on_pool(pool: &Pool<Self::Db>) -> impl Executor<'_, Database = Self::Db>;
    /// A connection (or an open transaction) as an executor.
    fn on(conn: &mut Self::Conn) -> impl Executor<'_, Database = Self::Db>;

    /// Binds text.
    fn bind_text<'q>(q: Statement<'q, Self>, v: &str) -> Statement<'q, Self>;
    /// Binds text or NULL.
    fn bind_opt_text<'q>(q: Statement<'q, Self>, v: Option<&str>) -> Statement<'q, Self>;
    /// Binds bytes.
    fn bind_bytes<'q>(q: Statement<'q, Self>, v: &[u8]) -> Statement<'q, Self>;
    /// Binds bytes or NULL.
    fn bind_opt_bytes<'q>(q: Statement<'q, Self>, v: Option<&[u8]>) -> Statement<'q, Self>;
    /// Binds an integer.
    fn bind_int<'q>(q: Statement<'q, Self>, v: i64) -> Statement<'q, Self>;
    /// Binds a flag.
    fn bind_flag<'q>(q: Statement<'q, Self>, v: bool) -> Statement<'q, Self>;

    /// A text column.
    fn text(row: &Self::Row, column: &str) -> StoreResult<String>;
    /// A text column that may be NULL.
    fn opt_text(row: &Self::Row, column: &str) -> StoreResult<Option<String>>;
    /// A bytes column.
    fn bytes(row: &Self::Row, column: &str) -> StoreResult<Vec<u8>>;
    /// A bytes column that may be NULL.
    fn opt_bytes(row: &Self::Row, column: &str) -> StoreResult<Option<Vec<u8>>>;
    /// An integer column.
    fn int(row: &Self::Row, column: &str) -> StoreResult<i64>;
    /// A flag column.
    fn flag(row: &Self::Row, column: &str) -> StoreResult<bool>;
}

impl<B: Backend> Codec for B
where
    for<'c> &'c mut B::Conn: Executor<'c, Database = B::Db>,
    for<'a> &'a str: Encode<'a, B::Db> + Type<B::Db> + ColumnIndex<B::Row>,
    for<'a> Option<&'a str>: Encode<'a, B::Db> + Type<B::Db>,
    for<'a> &'a [u8]: Encode<'a, B::Db> + Type<B::Db>,
    for<'a> Option<&'a [u8]>: Encode<'a, B::Db> + Type<B::Db>,
    for<'a> Option<Vec<u8>>: Decode<'a, B::Db> + Type<B::Db>,
    for<'a> i64: Encode<'a, B::Db> + Decode<'a, B::Db> + Type<B::Db>,
    for<'a> bool: Encode<'a, B::Db> + Decode<'a, B::Db> + Type<B::Db>,
    for<'a> String: Decode<'a, B::Db> + Type<B::Db>,
    for<'a> Option<String>: Decode<'a, B::Db> + Type<B::Db>,
    for<'a> Vec<u8>: Decode<'a, B::Db> + Type<B::Db>,
{
    #[inline]
    fn on_pool(pool: &Pool<B::Db>) -> impl Executor<'_, Database = B::Db> {
        pool
    }

    #[inline]
    fn on(conn: &mut B::Conn) -> impl Executor<'_, Database = B::Db> {
        conn
    }

    #[inline]
    fn bind_text<'q>(q: Statement<'q, B>, v: &str) -> Statement<'q, B> {
        q.bind(v)
    }

    #[inline]
    fn bind_opt_text<'q>(q: Statement<'q, B>, v: Option<&str>) -> Statement<'q, B> {
        q.bind(v)
    }

    #[inline]
    fn bind_bytes<'q>(q: Statement<'q, B>, v: &[u8]) -> Statement<'q, B> {
        q.bind(v)
    }

    #[inline]
    fn bind_opt_bytes<'q>(q: Statement<'q, B>, v: Option<&[u8]>) -> Statement<'q, B> {
        q.bind(v)
    }

    #[inline]
    fn bind_int<'q>(q: Statement<'q, B>, v: i64) -> Statement<'q, B> {
        q.bind(v)
    }

    #[inline]
    fn bind_flag<'q>(q: Statement<'q, B>, v: bool) -> Statement<'q, B> {
        q.bind(v)
    }

    fn text(row: &B::Row, column: &str) -> StoreResult<String> {
        row.try_get(column).map_err(corrupt)
    }

    fn opt_text(row: &B::Row, column: &str) -> StoreResult<Option<String>> {
        row.try_get(column).map_err(corrupt)
    }

    fn bytes(row: &B::Row, column: &str) -> StoreResult<Vec<u8>> {
        row.try_get(column).map_err(corrupt)
    }

    fn opt_bytes(row: &B::Row, column: &str) -> StoreResult<Option<Vec<u8>>> {
        row.try_get(column).map_err(corrupt)
    }

    fn int(row: &B::Row, column: &str) -> StoreResult<i64> {
        row.try_get(column).map_err(corrupt)
    }

    fn flag(row: &B::Row, column: &str) -> StoreResult<bool> {
        row.try_get(column).map_err(corrupt)
    }
}
