//! Liveness and the size of what grows with sessions.

use tessera_core::store::StoreResult;

use crate::dialect::Dialect;
use crate::errors::unavailable;
use crate::sql::Sql;
use crate::store::SqlStore;

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::Health::ping`].
    pub async fn ping(&self) -> StoreResult<()> {
        Sql::<D>::new("SELECT 1")
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// See [`tessera_core::store::Health::session_storage_bytes`].
    pub async fn session_storage_bytes(&self) -> StoreResult<Option<u64>> {
        let row = Sql::<D>::new(D::SESSION_STORAGE_BYTES)
            .fetch_one(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(D::int(&row, "bytes")?).ok())
    }
}
