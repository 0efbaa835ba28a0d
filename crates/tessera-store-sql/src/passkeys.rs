//! Passkeys (`passkeys`): users' WebAuthn credentials, found by credential
//! id at sign-in; and the state of ceremonies under way
//! (`webauthn_ceremonies`), each taken once by the request finishing it.

use tessera_core::passkey::{Ceremony, CeremonyKind, PasskeyRecord};
use tessera_core::store::StoreResult;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::dialect::Dialect;
use crate::errors::{corrupt, unavailable, write_error};
use crate::sql::Sql;
use crate::store::SqlStore;

const INSERT: &str = "INSERT INTO passkeys (id, user_id, credential_id, name, credential, \
     created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const OF_USER: &str = "SELECT id, user_id, credential_id, name, credential, created_at, \
     last_used_at FROM passkeys WHERE user_id = $1 ORDER BY created_at, id";
const BY_CREDENTIAL_ID: &str = "SELECT id, user_id, credential_id, name, credential, \
     created_at, last_used_at FROM passkeys WHERE credential_id = $1";
const RENAME: &str = "UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2";
const DELETE: &str = "DELETE FROM passkeys WHERE user_id = $1 AND id = $2";
const DELETE_OF_USER: &str = "DELETE FROM passkeys WHERE user_id = $1";
const RECORD_USE: &str = "UPDATE passkeys SET credential = $2, last_used_at = $3 WHERE id = $1";

const INSERT_CEREMONY: &str = "INSERT INTO webauthn_ceremonies (id, kind, user_id, state, \
     expires_at) VALUES ($1, $2, $3, $4, $5)";
/// One conditional delete: of concurrent finishes, one gets the state.
const TAKE_CEREMONY: &str = "DELETE FROM webauthn_ceremonies WHERE id = $1 \
     RETURNING id, kind, user_id, state, expires_at";
const EXPIRED_CEREMONIES: &str = "DELETE FROM webauthn_ceremonies WHERE expires_at <= $1";

/// A passkey row.
fn read_passkey<D: Dialect>(row: &D::Row) -> StoreResult<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: D::uuid(row, "id")?,
        user_id: D::uuid(row, "user_id")?,
        credential_id: D::bytes(row, "credential_id")?,
        name: D::text(row, "name")?,
        credential: D::text(row, "credential")?,
        created_at: D::time(row, "created_at")?,
        last_used_at: D::opt_time(row, "last_used_at")?,
    })
}

/// A ceremony row.
fn read_ceremony<D: Dialect>(row: &D::Row) -> StoreResult<Ceremony> {
    let kind = D::text(row, "kind")?;
    Ok(Ceremony {
        id: D::uuid(row, "id")?,
        kind: CeremonyKind::parse(&kind).ok_or_else(|| corrupt(format!("ceremony kind {kind}")))?,
        user_id: D::opt_uuid(row, "user_id")?,
        state: D::text(row, "state")?,
        expires_at: D::time(row, "expires_at")?,
    })
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::PasskeyCredentials::insert_passkey`].
    pub async fn insert_passkey(&self, p: &PasskeyRecord) -> StoreResult<()> {
        Sql::<D>::new(INSERT)
            .uuid(p.id)
            .uuid(p.user_id)
            .bytes(&p.credential_id)
            .text(&p.name)
            .text(&p.credential)
            .time(p.created_at)
            .opt_time(p.last_used_at)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// See [`tessera_core::store::PasskeyCredentials::user_passkeys`].
    pub async fn user_passkeys(&self, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        Sql::<D>::new(OF_USER)
            .uuid(user_id)
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .iter()
            .map(read_passkey::<D>)
            .collect()
    }

    /// See [`tessera_core::store::PasskeyCredentials::passkey_by_credential_id`].
    pub async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<PasskeyRecord>> {
        Sql::<D>::new(BY_CREDENTIAL_ID)
            .bytes(credential_id)
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_passkey::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::PasskeyCredentials::rename_passkey`].
    pub async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        let changed = Sql::<D>::new(RENAME)
            .uuid(user_id)
            .uuid(id)
            .text(name)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(changed > 0)
    }

    /// See [`tessera_core::store::PasskeyCredentials::delete_passkey`].
    pub async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let deleted = Sql::<D>::new(DELETE)
            .uuid(user_id)
            .uuid(id)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(deleted > 0)
    }

    /// See [`tessera_core::store::PasskeyCredentials::delete_user_passkeys`].
    pub async fn delete_user_passkeys(&self, user_id: Uuid) -> StoreResult<u64> {
        Sql::<D>::new(DELETE_OF_USER)
            .uuid(user_id)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)
    }

    /// See [`tessera_core::store::PasskeyCredentials::record_passkey_use`].
    pub async fn record_passkey_use(
        &self,
        id: Uuid,
        credential: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let changed = Sql::<D>::new(RECORD_USE)
            .uuid(id)
            .text(credential)
            .time(now)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(changed > 0)
    }

    /// See [`tessera_core::store::Ceremonies::insert_ceremony`].
    pub async fn insert_ceremony(&self, c: &Ceremony) -> StoreResult<()> {
        Sql::<D>::new(INSERT_CEREMONY)
            .uuid(c.id)
            .text(c.kind.as_str())
            .opt_uuid(c.user_id)
            .text(&c.state)
            .time(c.expires_at)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// See [`tessera_core::store::Ceremonies::take_ceremony`].
    pub async fn take_ceremony(&self, id: Uuid) -> StoreResult<Option<Ceremony>> {
        Sql::<D>::new(TAKE_CEREMONY)
            .uuid(id)
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_ceremony::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::Ceremonies::delete_expired_ceremonies`].
    pub async fn delete_expired_ceremonies(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep(EXPIRED_CEREMONIES, now).await
    }
}
