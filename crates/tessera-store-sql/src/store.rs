//! A SQL store of one dialect: its pools and the dialect's own state. The
//! store traits' operations are its methods, one module per concept; a
//! dialect's store type forwards the traits to them
//! ([`crate::forward_store_traits`]).

use std::time::Instant;

use sqlx::Pool;
use tessera_core::store::StoreResult;
use time::OffsetDateTime;

use crate::dialect::Dialect;
use crate::errors::unavailable;
use crate::sql::Sql;

/// Rows a batched sweep deletes per statement ([`SqlStore::sweep_in_batches`]):
/// small enough that a request waiting for the write lock meanwhile waits
/// a few milliseconds (1,000 rows held it ~120 ms on SQLite).
pub(crate) const SWEEP_BATCH: i64 = 200;
/// Between statements the sweep pauses this many times as long as the last
/// one took, leaving the lock to requests most of the time.
const SWEEP_PAUSE_FACTOR: u32 = 3;

/// `DELETE FROM $table` of the rows matching `$condition` (on `$1`, the
/// cut-off), at most `$2` of them, picked by their key `$key`: one batch of
/// [`SqlStore::sweep_in_batches`].
macro_rules! batched_delete {
    ($table:literal, $key:literal, $condition:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE ",
            $key,
            " IN (SELECT ",
            $key,
            " FROM ",
            $table,
            " WHERE ",
            $condition,
            " LIMIT $2)"
        )
    };
}
pub(crate) use batched_delete;

/// A SQL store of dialect `D`.
#[derive(Debug)]
pub struct SqlStore<D: Dialect> {
    pool: Pool<D::Db>,
    counters: Pool<D::Db>,
    dialect: D,
}

// Not derived: that would ask the sqlx database type to be `Clone` too.
impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            counters: self.counters.clone(),
            dialect: self.dialect.clone(),
        }
    }
}

impl<D: Dialect> SqlStore<D> {
    /// A store on `pool`, whose rate-limit counters are written through
    /// `counters` (the same pool, or one with cheaper commits).
    pub fn new(pool: Pool<D::Db>, counters: Pool<D::Db>, dialect: D) -> Self {
        Self {
            pool,
            counters,
            dialect,
        }
    }

    /// The pool.
    pub fn pool(&self) -> &Pool<D::Db> {
        &self.pool
    }

    /// The pool the rate-limit counters are written through.
    pub fn counters_pool(&self) -> &Pool<D::Db> {
        &self.counters
    }

    /// The dialect's own state.
    pub fn dialect(&self) -> &D {
        &self.dialect
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.counters.close().await;
        self.pool.close().await;
    }

    /// Runs a batched delete bounded by a time ([`batched_delete!`]: `$1`
    /// is the cut-off, `$2` the most rows a statement deletes) until a
    /// statement deletes less than a batch; how many rows went.
    ///
    /// Each statement is a transaction of its own, so a large backlog does
    /// not hold SQLite's one write lock (or PostgreSQL's row locks) all the
    /// way through: 317,000 expired sessions in one statement held it for
    /// 35 s, and every sign-in, refresh and touch waited or failed. Between
    /// statements the sweep pauses three times as long as the last one took,
    /// because SQLite's waiting writers poll for the lock (sleeping longer
    /// at each try) and would seldom find it free otherwise.
    pub(crate) async fn sweep_in_batches(
        &self,
        sql: &'static str,
        cutoff: OffsetDateTime,
    ) -> StoreResult<u64> {
        let mut deleted = 0;
        loop {
            let started = Instant::now();
            let batch = Sql::<D>::new(sql)
                .time(cutoff)
                .int(SWEEP_BATCH)
                .execute(D::on_pool(&self.pool))
                .await
                .map_err(unavailable)?;
            deleted += batch;
            if batch < SWEEP_BATCH.unsigned_abs() {
                return Ok(deleted);
            }
            tokio::time::sleep(started.elapsed() * SWEEP_PAUSE_FACTOR).await;
        }
    }

    /// Runs a delete bounded by a time (its one parameter, `$1`, is the
    /// cut-off), for tables that only ever hold a few expired rows; how
    /// many rows went.
    pub(crate) async fn sweep(
        &self,
        sql: &'static str,
        cutoff: OffsetDateTime,
    ) -> StoreResult<u64> {
        Sql::<D>::new(sql)
            .time(cutoff)
            .execute(D::on_pool(&self.pool))
            .await
            .map_err(unavailable)
    }
}
