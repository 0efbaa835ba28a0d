//! Second factors: TOTP factors (`totp_factors`), recovery codes
//! (`recovery_codes`, by hash) and sign-ins waiting for a second factor
//! (`mfa_challenges`, by the token's hash). What may be used once is spent
//! by one conditional write.

use tessera_core::audit::AuditEvent;
use tessera_core::mfa::{MfaChallenge, MfaNext, MfaStatus, TotpFactor};
use tessera_core::secret::SecretHash;
use tessera_core::store::StoreResult;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::bind_audit;
use crate::dialect::Dialect;
use crate::errors::{corrupt, unavailable, write_error};
use crate::sessions::read_amr;
use crate::sql::Sql;
use crate::store::SqlStore;

/// A pending factor, replacing a pending one but never an enabled one.
const PUT_PENDING: &str = "INSERT INTO totp_factors (user_id, secret, created_at, last_step) \
     VALUES ($1, $2, $3, 0) ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
     created_at = excluded.created_at, last_step = 0 WHERE totp_factors.enabled_at IS NULL";
const FACTOR: &str = "SELECT user_id, secret, created_at, enabled_at, last_step \
     FROM totp_factors WHERE user_id = $1";
const ENABLE: &str = "UPDATE totp_factors SET enabled_at = $3, last_step = $4 \
     WHERE user_id = $1 AND secret = $2 AND enabled_at IS NULL";
/// Spends a step: only one later than the last, so a replay changes nothing.
const USE_STEP: &str = "UPDATE totp_factors SET last_step = $2 \
     WHERE user_id = $1 AND enabled_at IS NOT NULL AND last_step < $2";
const DELETE_FACTOR: &str = "DELETE FROM totp_factors WHERE user_id = $1";
const IS_ENABLED: &str =
    "SELECT COUNT(*) AS n FROM totp_factors WHERE user_id = $1 AND enabled_at IS NOT NULL";
const DELETE_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = $1";
const INSERT_CODE: &str = "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)";
const USE_CODE: &str = "DELETE FROM recovery_codes WHERE user_id = $1 AND code_hash = $2";
const STATUS: &str = "SELECT \
     (SELECT COUNT(*) FROM totp_factors WHERE user_id = $1 AND enabled_at IS NOT NULL) AS totp, \
     (SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1) AS codes, \
     (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) AS passkeys";
/// [`STATUS`] for many users at once: the `IN` list is appended.
const STATUSES: &str = "SELECT u.id AS user_id, \
     (SELECT COUNT(*) FROM totp_factors t WHERE t.user_id = u.id AND t.enabled_at IS NOT NULL) AS totp, \
     (SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = u.id) AS codes, \
     (SELECT COUNT(*) FROM passkeys p WHERE p.user_id = u.id) AS passkeys \
     FROM users u WHERE u.id IN (";
const INSERT_CHALLENGE: &str = "INSERT INTO mfa_challenges (token_hash, user_id, ip, amr, \
     next, password_fingerprint, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const CHALLENGE: &str = "SELECT token_hash, user_id, ip, amr, next, password_fingerprint, \
     created_at, expires_at FROM mfa_challenges WHERE token_hash = $1";
const DELETE_CHALLENGE: &str = "DELETE FROM mfa_challenges WHERE token_hash = $1";
const ALL_SECRETS: &str = "SELECT user_id, secret FROM totp_factors ORDER BY user_id";
const REPLACE_SECRET: &str =
    "UPDATE totp_factors SET secret = $3 WHERE user_id = $1 AND secret = $2";
/// Challenges expired at `$1`, `$2` at most.
const EXPIRED_CHALLENGES: &str =
    crate::store::batched_delete!("mfa_challenges", "token_hash", "expires_at <= $1");

fn read_factor<D: Dialect>(row: &D::Row) -> StoreResult<TotpFactor> {
    Ok(TotpFactor {
        user_id: D::uuid(row, "user_id")?,
        sealed_secret: D::bytes(row, "secret")?,
        created_at: D::time(row, "created_at")?,
        enabled_at: D::opt_time(row, "enabled_at")?,
        last_step: D::int(row, "last_step")?,
    })
}

fn read_challenge<D: Dialect>(row: &D::Row) -> StoreResult<MfaChallenge> {
    let hash = D::bytes(row, "token_hash")?;
    let fingerprint = D::bytes(row, "password_fingerprint")?;
    Ok(MfaChallenge {
        token_hash: SecretHash::from_slice(&hash).ok_or_else(|| corrupt("challenge hash"))?,
        user_id: D::uuid(row, "user_id")?,
        ip: D::ip(row, "ip")?,
        amr: read_amr::<D>(row)?,
        next: MfaNext::parse(&D::text(row, "next")?).ok_or_else(|| corrupt("challenge next"))?,
        password_fingerprint: SecretHash::from_slice(&fingerprint)
            .ok_or_else(|| corrupt("password fingerprint"))?,
        created_at: D::time(row, "created_at")?,
        expires_at: D::time(row, "expires_at")?,
    })
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::SecondFactors::put_pending_totp`].
    pub async fn put_pending_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let changed = Sql::<D>::new(PUT_PENDING)
            .uuid(user_id)
            .bytes(sealed_secret)
            .time(now)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(changed > 0)
    }

    /// See [`tessera_core::store::SecondFactors::totp_factor`].
    pub async fn totp_factor(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>> {
        Sql::<D>::new(FACTOR)
            .uuid(user_id)
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_factor::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::SecondFactors::enable_totp`].
    pub async fn enable_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        step: i64,
        codes: &[SecretHash],
        event: &AuditEvent,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(unavailable)?;
        // A write first: SQLite takes the write lock here, not midway.
        let enabled = Sql::<D>::new(ENABLE)
            .uuid(user_id)
            .bytes(sealed_secret)
            .time(now)
            .int(step)
            .execute(D::on(&mut tx))
            .await
            .map_err(write_error)?;
        if enabled == 0 {
            tx.rollback().await.map_err(unavailable)?;
            return Ok(false);
        }
        Sql::<D>::new(DELETE_CODES)
            .uuid(user_id)
            .execute(D::on(&mut tx))
            .await
            .map_err(write_error)?;
        for code in codes {
            Sql::<D>::new(INSERT_CODE)
                .uuid(user_id)
                .bytes(code.as_bytes())
                .execute(D::on(&mut tx))
                .await
                .map_err(write_error)?;
        }
        bind_audit(Sql::<D>::new(D::INSERT_AUDIT), event)
            .execute(D::on(&mut tx))
            .await
            .map_err(write_error)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    /// See [`tessera_core::store::SecondFactors::use_totp_step`].
    pub async fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool> {
        let changed = Sql::<D>::new(USE_STEP)
            .uuid(user_id)
            .int(step)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(changed > 0)
    }

    /// See [`tessera_core::store::SecondFactors::delete_totp`].
    pub async fn delete_totp(&self, user_id: Uuid) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(unavailable)?;
        Sql::<D>::new(DELETE_CODES)
            .uuid(user_id)
            .execute(D::on(&mut tx))
            .await
            .map_err(write_error)?;
        let deleted = Sql::<D>::new(DELETE_FACTOR)
            .uuid(user_id)
            .execute(D::on(&mut tx))
            .await
            .map_err(write_error)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(deleted > 0)
    }

    /// See [`tessera_core::store::SecondFactors::replace_recovery_codes`].
    pub async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[SecretHash],
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(unavailable)?;
        // The delete first: it takes SQLite's write lock before the read.
        Sql::<D>::new(DELETE_CODES)
            .uuid(user_id)
            .execute(D::on(&mut tx))
            .await
            .map_err(write_error)?;
        let row = Sql::<D>::new(IS_ENABLED)
            .uuid(user_id)
            .fetch_one(D::on(&mut tx))
            .await
            .map_err(unavailable)?;
        if D::int(&row, "n")? == 0 {
            tx.rollback().await.map_err(unavailable)?;
            return Ok(false);
        }
        for code in codes {
            Sql::<D>::new(INSERT_CODE)
                .uuid(user_id)
                .bytes(code.as_bytes())
                .execute(D::on(&mut tx))
                .await
                .map_err(write_error)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    /// See [`tessera_core::store::SecondFactors::use_recovery_code`].
    pub async fn use_recovery_code(&self, user_id: Uuid, hash: &SecretHash) -> StoreResult<bool> {
        let deleted = Sql::<D>::new(USE_CODE)
            .uuid(user_id)
            .bytes(hash.as_bytes())
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(deleted > 0)
    }

    /// See [`tessera_core::store::SecondFactors::mfa_status`].
    pub async fn mfa_status(&self, user_id: Uuid) -> StoreResult<MfaStatus> {
        let row = Sql::<D>::new(STATUS)
            .uuid(user_id)
            .fetch_one(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(MfaStatus {
            totp: D::int(&row, "totp")? > 0,
            recovery_codes: count(D::int(&row, "codes")?),
            passkeys: count(D::int(&row, "passkeys")?),
        })
    }

    /// See [`tessera_core::store::SecondFactors::mfa_statuses`].
    pub async fn mfa_statuses(&self, user_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, MfaStatus)>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=user_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("{STATUSES}{})", placeholders.join(", "));
        let query = user_ids
            .iter()
            .fold(Sql::<D>::assembled(sql), |q, id| q.uuid(*id));
        let rows = query
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok((
                    D::uuid(row, "user_id")?,
                    MfaStatus {
                        totp: D::int(row, "totp")? > 0,
                        recovery_codes: count(D::int(row, "codes")?),
                        passkeys: count(D::int(row, "passkeys")?),
                    },
                ))
            })
            .collect()
    }

    /// See [`tessera_core::store::SecondFactors::insert_mfa_challenge`].
    pub async fn insert_mfa_challenge(&self, c: &MfaChallenge) -> StoreResult<()> {
        Sql::<D>::new(INSERT_CHALLENGE)
            .bytes(c.token_hash.as_bytes())
            .uuid(c.user_id)
            .ip(c.ip)
            .int(i64::from(c.amr.bits()))
            .text(c.next.as_str())
            .bytes(c.password_fingerprint.as_bytes())
            .time(c.created_at)
            .time(c.expires_at)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// See [`tessera_core::store::SecondFactors::mfa_challenge`].
    pub async fn mfa_challenge(&self, hash: &SecretHash) -> StoreResult<Option<MfaChallenge>> {
        Sql::<D>::new(CHALLENGE)
            .bytes(hash.as_bytes())
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_challenge::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::SecondFactors::delete_mfa_challenge`].
    pub async fn delete_mfa_challenge(&self, hash: &SecretHash) -> StoreResult<bool> {
        let deleted = Sql::<D>::new(DELETE_CHALLENGE)
            .bytes(hash.as_bytes())
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(deleted > 0)
    }

    /// See [`tessera_core::store::SecondFactors::sealed_totp_secrets`].
    pub async fn sealed_totp_secrets(&self) -> StoreResult<Vec<(Uuid, Vec<u8>)>> {
        let rows = Sql::<D>::new(ALL_SECRETS)
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| Ok((D::uuid(row, "user_id")?, D::bytes(row, "secret")?)))
            .collect()
    }

    /// See [`tessera_core::store::SecondFactors::replace_totp_secret`].
    pub async fn replace_totp_secret(
        &self,
        user_id: Uuid,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        let changed = Sql::<D>::new(REPLACE_SECRET)
            .uuid(user_id)
            .bytes(old)
            .bytes(new)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(changed > 0)
    }

    /// See [`tessera_core::store::SecondFactors::delete_expired_mfa_challenges`].
    pub async fn delete_expired_mfa_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep_in_batches(EXPIRED_CHALLENGES, now).await
    }
}
