//! Authorization codes (`oauth_codes`), by hash: spent once, a second
//! presentation marked so the session the first created can be ended.

use tessera_core::authorization_code::{AuthorizationCode, CodeRedemption};
use tessera_core::secret::SecretHash;
use tessera_core::session::SessionId;
use tessera_core::store::StoreResult;
use time::OffsetDateTime;

use crate::dialect::Dialect;
use crate::errors::{corrupt, unavailable, write_error};
use crate::sql::Sql;
use crate::store::SqlStore;

const INSERT: &str = "INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, \
     code_challenge, scope, nonce, auth_time, created_at, expires_at, amr) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
/// Spends an unspent code: one conditional write, so one redemption wins.
const REDEEM: &str = "UPDATE oauth_codes SET used = TRUE WHERE code_hash = $1 AND NOT used \
     RETURNING code_hash, client_id, user_id, redirect_uri, code_challenge, scope, nonce, \
     auth_time, created_at, expires_at, amr, session_id";
/// Marks a spent code as presented again.
const MARK_REUSED: &str = "UPDATE oauth_codes SET reused = TRUE WHERE code_hash = $1 \
     RETURNING code_hash, client_id, user_id, redirect_uri, code_challenge, scope, nonce, \
     auth_time, created_at, expires_at, amr, session_id";
const SET_SESSION: &str =
    "UPDATE oauth_codes SET session_id = $2 WHERE code_hash = $1 RETURNING reused";
const EXPIRED: &str = "DELETE FROM oauth_codes WHERE expires_at <= $1";

/// A code row.
fn read_code<D: Dialect>(row: &D::Row) -> StoreResult<AuthorizationCode> {
    let hash = D::bytes(row, "code_hash")?;
    Ok(AuthorizationCode {
        code_hash: SecretHash::from_slice(&hash).ok_or_else(|| corrupt("code hash"))?,
        client_id: D::uuid(row, "client_id")?,
        user_id: D::uuid(row, "user_id")?,
        redirect_uri: D::text(row, "redirect_uri")?,
        code_challenge: D::text(row, "code_challenge")?,
        scope: D::text(row, "scope")?,
        nonce: D::opt_text(row, "nonce")?,
        auth_time: D::time(row, "auth_time")?,
        created_at: D::time(row, "created_at")?,
        expires_at: D::time(row, "expires_at")?,
        amr: crate::sessions::read_amr::<D>(row)?,
    })
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::AuthorizationCodes::insert_code`].
    pub async fn insert_code(&self, c: &AuthorizationCode) -> StoreResult<()> {
        Sql::<D>::new(INSERT)
            .bytes(c.code_hash.as_bytes())
            .uuid(c.client_id)
            .uuid(c.user_id)
            .text(&c.redirect_uri)
            .text(&c.code_challenge)
            .text(&c.scope)
            .opt_text(c.nonce.as_deref())
            .time(c.auth_time)
            .time(c.created_at)
            .time(c.expires_at)
            .int(i64::from(c.amr.bits()))
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// See [`tessera_core::store::AuthorizationCodes::redeem_code`].
    pub async fn redeem_code(
        &self,
        hash: &SecretHash,
        _now: OffsetDateTime,
    ) -> StoreResult<CodeRedemption> {
        let fresh = Sql::<D>::new(REDEEM)
            .bytes(hash.as_bytes())
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        if let Some(row) = fresh {
            return Ok(CodeRedemption::Redeemed(read_code::<D>(&row)?));
        }
        let spent = Sql::<D>::new(MARK_REUSED)
            .bytes(hash.as_bytes())
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        let Some(row) = spent else {
            return Ok(CodeRedemption::Unknown);
        };
        let session = D::opt_text(&row, "session_id")?
            .map(|s| SessionId::parse(&s).ok_or_else(|| corrupt("session id")))
            .transpose()?;
        Ok(CodeRedemption::Reused {
            code: read_code::<D>(&row)?,
            session,
        })
    }

    /// See [`tessera_core::store::AuthorizationCodes::set_code_session`].
    pub async fn set_code_session(
        &self,
        hash: &SecretHash,
        session_id: &SessionId,
    ) -> StoreResult<bool> {
        let row = Sql::<D>::new(SET_SESSION)
            .bytes(hash.as_bytes())
            .text(session_id.as_str())
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => D::flag(&row, "reused"),
            // Swept or its client deleted meanwhile: end the session too.
            None => Ok(true),
        }
    }

    /// See [`tessera_core::store::AuthorizationCodes::delete_expired_codes`].
    pub async fn delete_expired_codes(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(EXPIRED, before).await
    }
}
