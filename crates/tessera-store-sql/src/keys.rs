//! Signing keys (`signing_keys`), sealed: the store never holds a private
//! key in clear.

use sqlx::Executor;
use tessera_core::keys::{Algorithm, KeyPurpose, StoredKey};
use tessera_core::store::StoreResult;
use time::OffsetDateTime;

use crate::dialect::{Dialect, Lock};
use crate::errors::{corrupt, unavailable, write_error};
use crate::sql::Sql;
use crate::store::SqlStore;

const ALL: &str = "SELECT kid, algorithm, purpose, private_key, created_at, retired_at, expires_at \
     FROM signing_keys ORDER BY created_at";
const CURRENT_COUNT: &str =
    "SELECT count(*) AS n FROM signing_keys WHERE retired_at IS NULL AND purpose = $1";
const INSERT: &str = "INSERT INTO signing_keys \
     (kid, algorithm, purpose, private_key, created_at, retired_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
const RETIRE_CURRENT: &str = "UPDATE signing_keys SET retired_at = $1, expires_at = $2 \
     WHERE retired_at IS NULL AND purpose = $3";
const REPLACE_SEALED: &str =
    "UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3";
/// Retired keys no token can still need at `$1`.
const EXPIRED: &str = "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at <= $1";

/// A signing key row.
fn read_key<D: Dialect>(row: &D::Row) -> StoreResult<StoredKey> {
    let algorithm = D::text(row, "algorithm")?;
    let purpose = D::text(row, "purpose")?;
    Ok(StoredKey {
        kid: D::text(row, "kid")?,
        algorithm: Algorithm::parse(&algorithm).ok_or_else(|| corrupt("key algorithm"))?,
        purpose: KeyPurpose::parse(&purpose).ok_or_else(|| corrupt("key purpose"))?,
        sealed: D::bytes(row, "private_key")?,
        created_at: D::time(row, "created_at")?,
        retired_at: D::opt_time(row, "retired_at")?,
        expires_at: D::opt_time(row, "expires_at")?,
    })
}

async fn insert_key<D: Dialect>(conn: &mut D::Conn, key: &StoredKey) -> StoreResult<()> {
    Sql::<D>::new(INSERT)
        .text(&key.kid)
        .text(key.algorithm.as_str())
        .text(key.purpose.as_str())
        .bytes(&key.sealed)
        .time(key.created_at)
        .opt_time(key.retired_at)
        .opt_time(key.expires_at)
        .execute(D::on(conn))
        .await
        .map_err(write_error)?;
    Ok(())
}

/// Replaces the sealed material of key `kid` with `new` if it is still
/// `old`, on `executor`; true if it did. A dialect's
/// [`Dialect::replace_sealed_key`] runs it, with whatever care for the
/// bytes replaced its storage needs.
pub async fn replace_sealed<'c, D: Dialect>(
    executor: impl Executor<'c, Database = D::Db>,
    kid: &str,
    old: &[u8],
    new: &[u8],
) -> StoreResult<bool> {
    let changed = Sql::<D>::new(REPLACE_SEALED)
        .bytes(new)
        .text(kid)
        .bytes(old)
        .execute(executor)
        .await
        .map_err(write_error)?;
    Ok(changed == 1)
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::Keys::keys`].
    pub async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = Sql::<D>::new(ALL)
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_key::<D>).collect()
    }

    /// See [`tessera_core::store::Keys::ensure_current_key`].
    pub async fn ensure_current_key(&self, candidate: &StoredKey) -> StoreResult<()> {
        let mut tx = D::begin_serialized(self.pool(), Lock::Keys).await?;
        let row = Sql::<D>::new(CURRENT_COUNT)
            .text(candidate.purpose.as_str())
            .fetch_one(D::on(&mut tx))
            .await
            .map_err(unavailable)?;
        if D::int(&row, "n")? == 0 {
            insert_key::<D>(&mut tx, candidate).await?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// See [`tessera_core::store::Keys::rotate_key`].
    pub async fn rotate_key(
        &self,
        new: &StoredKey,
        now: OffsetDateTime,
        retired_expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = D::begin_serialized(self.pool(), Lock::Keys).await?;
        Sql::<D>::new(RETIRE_CURRENT)
            .time(now)
            .time(retired_expires_at)
            .text(new.purpose.as_str())
            .execute(D::on(&mut tx))
            .await
            .map_err(unavailable)?;
        insert_key::<D>(&mut tx, new).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// See [`tessera_core::store::Keys::replace_sealed_key`].
    pub async fn replace_sealed_key(&self, kid: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        D::replace_sealed_key(self.pool(), kid, old, new).await
    }

    /// See [`tessera_core::store::Keys::delete_expired_keys`].
    pub async fn delete_expired_keys(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(EXPIRED, now).await
    }
}
