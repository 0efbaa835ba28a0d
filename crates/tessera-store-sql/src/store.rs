//! A SQL store of one dialect: its pools and the dialect's own state. The
//! store traits' operations are its methods, one module per concept; a
//! dialect's store type forwards the traits to them
//! ([`crate::forward_store_traits`]).

use sqlx::Pool;
use tessera_core::store::StoreResult;
use time::OffsetDateTime;

use crate::dialect::Dialect;
use crate::errors::unavailable;
use crate::sql::Sql;

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

    /// Runs a delete bounded by a time (its one parameter, `$1`, is the
    /// cut-off); how many rows went.
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
