//! Where SQLite and PostgreSQL differ: the statements they write
//! differently, how they keep times, ids and addresses, and the few
//! operations each settles its own way (serialising writers, the refresh
//! exchange, password-attempt reservations).

use std::future::Future;
use std::net::IpAddr;

use sqlx::{Database, Pool, Transaction};
use tessera_core::attempt::{Admission, Attempt};
use tessera_core::secret::SecretHash;
use tessera_core::store::{Rotation, StoreResult};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{Codec, Statement};

/// What a serialised transaction guards: writers of one kind run one at a
/// time, across every node sharing the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Creating, retiring and re-sealing signing keys.
    Keys,
    /// Appending to the revocation log, so positions become visible in order.
    Revocations,
}

/// One refresh exchange: `presented` for `new`.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    /// The hash of the token presented.
    pub presented: SecretHash,
    /// The hash of the token that replaces it.
    pub new: SecretHash,
    /// The client presenting it, if any.
    pub by: Option<Uuid>,
    /// When.
    pub now: OffsetDateTime,
    /// How long a replaced token still exchanges (a client's retry).
    pub grace: time::Duration,
    /// The session's idle lifetime from now.
    pub idle_ttl: time::Duration,
}

/// One SQL dialect. Placeholders are `$N`: PostgreSQL's, and SQLite reads
/// `$N` as the N-th bound value too, in every statement of a text.
pub trait Dialect: Codec + Clone + std::fmt::Debug {
    /// Stores a session (`$1`..`$12` in `sessions` column order) only while
    /// user `$13` is enabled and has password hash `$14`, with its audit
    /// event (`$15`..`$20`) when it was stored. Changes no row otherwise.
    const INSERT_SESSION: &'static str;
    /// [`Self::INSERT_SESSION`] and the session's first refresh token
    /// (its secret hash `$4`, created at `$5`).
    const INSERT_TOKEN_SESSION: &'static str;
    /// Whether the texts that write several tables are one statement
    /// (atomic alone) rather than several (run in a transaction).
    const WRITES_ARE_ONE_STATEMENT: bool;
    /// The refresh token `$1`, its session and the client holding it
    /// (`refresh_for_exchange!`'s columns), locked for an exchange where
    /// the dialect locks rows.
    const REFRESH_FOR_EXCHANGE: &'static str;
    /// An exchange's writes for session `$2` at `$1`: its current token
    /// (`$5`, the session's secret hash as read) replaced, token `$3`
    /// stored as the one current, the session's secret hash set to it and
    /// its idle expiry to `$4`. The current token is found by its hash, not
    /// among the session's tokens: those replaced are kept (for reuse
    /// detection) as long as the session may idle, hundreds for a session
    /// that refreshes often, and would all be read by every exchange.
    const EXCHANGE_REFRESH: &'static str;
    /// Appends an audit event (`$1`..`$6`: kind, user_id, ip, user_agent, at, detail).
    const INSERT_AUDIT: &'static str;
    /// Audit events with ids below `$1`, newest first, at most `$2`; `detail` as text.
    const LIST_AUDIT: &'static str;
    /// Gives back an attempt's slot on keys `$1` (may be NULL) and `$2`;
    /// after a success (`$3`) the account's count and wait are forgotten.
    const RELEASE_ATTEMPT: &'static str;
    /// Bytes of the sessions table and its indexes (one integer, no parameters).
    const SESSION_STORAGE_BYTES: &'static str;
    /// Run on a connection before a bulk load in it ([`crate::bulk`]), and
    /// [`Self::BULK_LOAD_TEARDOWN`] after; empty for nothing.
    const BULK_LOAD_SETUP: &'static str;
    /// Undoes [`Self::BULK_LOAD_SETUP`] before the connection goes back to the pool.
    const BULK_LOAD_TEARDOWN: &'static str;

    /// Binds a time (kept to the millisecond).
    fn bind_time<'q>(q: Statement<'q, Self>, v: OffsetDateTime) -> Statement<'q, Self>;
    /// Binds a time or NULL.
    fn bind_opt_time<'q>(q: Statement<'q, Self>, v: Option<OffsetDateTime>) -> Statement<'q, Self>;
    /// Binds an id.
    fn bind_uuid<'q>(q: Statement<'q, Self>, v: Uuid) -> Statement<'q, Self>;
    /// Binds an id or NULL.
    fn bind_opt_uuid<'q>(q: Statement<'q, Self>, v: Option<Uuid>) -> Statement<'q, Self>;
    /// Binds an address or NULL.
    fn bind_ip<'q>(q: Statement<'q, Self>, v: Option<IpAddr>) -> Statement<'q, Self>;

    /// A time column.
    fn time(row: &Self::Row, column: &str) -> StoreResult<OffsetDateTime>;
    /// A time column that may be NULL.
    fn opt_time(row: &Self::Row, column: &str) -> StoreResult<Option<OffsetDateTime>>;
    /// An id column.
    fn uuid(row: &Self::Row, column: &str) -> StoreResult<Uuid>;
    /// An id column that may be NULL.
    fn opt_uuid(row: &Self::Row, column: &str) -> StoreResult<Option<Uuid>>;
    /// An address column that may be NULL; text that does not read as an
    /// address is none (an address is only ever informative).
    fn ip(row: &Self::Row, column: &str) -> StoreResult<Option<IpAddr>>;

    /// How many rows a statement changed.
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;

    /// A transaction that runs alone among those taking the same `lock`.
    fn begin_serialized(
        pool: &Pool<Self::Db>,
        lock: Lock,
    ) -> impl Future<Output = StoreResult<Transaction<'static, Self::Db>>> + Send;

    /// Called before revocations just appended in `conn`'s transaction are
    /// committed: the dialect may announce them to other nodes.
    fn announce_revocations(conn: &mut Self::Conn) -> impl Future<Output = StoreResult<()>> + Send;

    /// Performs a refresh exchange atomically, in a transaction on `pool`
    /// (see [`crate::refresh::exchange`], which does the work inside it).
    fn rotate_refresh(
        &self,
        pool: &Pool<Self::Db>,
        exchange: Exchange,
    ) -> impl Future<Output = StoreResult<Rotation>> + Send;

    /// Replaces sealed key material (see [`crate::keys::replace_sealed`]).
    fn replace_sealed_key(
        pool: &Pool<Self::Db>,
        kid: &str,
        old: &[u8],
        new: &[u8],
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Admits an attempt and counts it under both its keys, or refuses it
    /// and counts nothing, in one atomic operation on the `counters` pool.
    fn reserve(
        counters: &Pool<Self::Db>,
        attempt: &Attempt<'_>,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Admission>> + Send;
}
