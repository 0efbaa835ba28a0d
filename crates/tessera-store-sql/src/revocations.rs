//! The revocation log (`revocations`): positions (`seq`) in append order,
//! read after a cursor.

use tessera_core::revocation::{Revocation, RevocationKind};
use tessera_core::store::StoreResult;
use time::OffsetDateTime;

use crate::dialect::{Dialect, Lock};
use crate::errors::{corrupt, unavailable};
use crate::sql::Sql;
use crate::store::SqlStore;

const INSERT: &str = "INSERT INTO revocations (kind, value, expires_at) VALUES ($1, $2, $3) \
     RETURNING seq, kind, value, expires_at";
const SINCE: &str = "SELECT seq, kind, value, expires_at FROM revocations \
     WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3";
/// Revocations that can no longer match a valid token at `$1`, `$2` at most.
const EXPIRED: &str = crate::store::batched_delete!("revocations", "seq", "expires_at <= $1");

/// A revocation row.
fn read_revocation<D: Dialect>(row: &D::Row) -> StoreResult<Revocation> {
    let kind = D::text(row, "kind")?;
    Ok(Revocation {
        seq: D::int(row, "seq")?,
        kind: RevocationKind::parse(&kind).ok_or_else(|| corrupt("revocation kind"))?,
        value: D::text(row, "value")?,
        expires_at: D::time(row, "expires_at")?,
    })
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::Revocations::insert_revocations`].
    pub async fn insert_revocations(
        &self,
        entries: &[(RevocationKind, String, OffsetDateTime)],
    ) -> StoreResult<Vec<Revocation>> {
        // Appends are serialised so positions become visible in order: a
        // reader that has seen position N has seen everything below it.
        let mut tx = D::begin_serialized(self.pool(), Lock::Revocations).await?;
        let mut stored = Vec::with_capacity(entries.len());
        for (kind, value, expires_at) in entries {
            let row = Sql::<D>::new(INSERT)
                .text(kind.as_str())
                .text(value)
                .time(*expires_at)
                .fetch_one(D::on(&mut tx))
                .await
                .map_err(unavailable)?;
            stored.push(read_revocation::<D>(&row)?);
        }
        D::announce_revocations(&mut tx).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(stored)
    }

    /// See [`tessera_core::store::Revocations::revocations_since`].
    pub async fn revocations_since(
        &self,
        after: i64,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<Revocation>> {
        let rows = Sql::<D>::new(SINCE)
            .int(after)
            .time(now)
            .int(i64::from(limit))
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_revocation::<D>).collect()
    }

    /// See [`tessera_core::store::Revocations::delete_expired_revocations`].
    pub async fn delete_expired_revocations(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep_in_batches(EXPIRED, now).await
    }
}
