//! OAuth clients (`oauth_clients`), the consents users gave them
//! (`oauth_consents`) and the sessions they hold (`oauth_client_sessions`).

use tessera_core::consent::{ClientSession, Consent};
use tessera_core::keys::Algorithm;
use tessera_core::oauth_client::OAuthClient;
use tessera_core::secret::SecretHash;
use tessera_core::session::SessionId;
use tessera_core::store::StoreResult;
use uuid::Uuid;

use crate::dialect::Dialect;
use crate::errors::{corrupt, unavailable, write_error};
use crate::sql::Sql;
use crate::store::SqlStore;

const INSERT: &str = "INSERT INTO oauth_clients (id, name, redirect_uris, \
     post_logout_redirect_uris, public, secret_hash, skip_consent, id_token_alg, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const BY_ID: &str = "SELECT id, name, redirect_uris, post_logout_redirect_uris, public, \
     secret_hash, skip_consent, id_token_alg, created_at FROM oauth_clients WHERE id = $1";
const LIST: &str = "SELECT id, name, redirect_uris, post_logout_redirect_uris, public, \
     secret_hash, skip_consent, id_token_alg, created_at FROM oauth_clients \
     ORDER BY created_at, id";
const SESSIONS_OF_CLIENT: &str =
    "SELECT session_id FROM oauth_client_sessions WHERE client_id = $1";
const DELETE: &str = "DELETE FROM oauth_clients WHERE id = $1";

const PUT_CONSENT: &str = "INSERT INTO oauth_consents (user_id, client_id, scope, granted_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, \
     granted_at = excluded.granted_at";
const CONSENT: &str = "SELECT user_id, client_id, scope, granted_at FROM oauth_consents \
     WHERE user_id = $1 AND client_id = $2";
const CONSENTS_OF_USER: &str = "SELECT user_id, client_id, scope, granted_at FROM oauth_consents \
     WHERE user_id = $1 ORDER BY granted_at DESC, client_id";
const DELETE_CONSENT: &str = "DELETE FROM oauth_consents WHERE user_id = $1 AND client_id = $2";
// Codes not yet exchanged would otherwise start a session after the withdrawal.
const DELETE_UNSPENT_CODES: &str =
    "DELETE FROM oauth_codes WHERE user_id = $1 AND client_id = $2 AND NOT used";
const SESSIONS_OF_USER_AND_CLIENT: &str = "SELECT l.session_id FROM oauth_client_sessions l \
     JOIN sessions s ON s.id = l.session_id WHERE s.user_id = $1 AND l.client_id = $2";

const LINK: &str =
    "INSERT INTO oauth_client_sessions (session_id, client_id, scope) VALUES ($1, $2, $3)";
const SESSION_CLIENT: &str =
    "SELECT client_id, scope FROM oauth_client_sessions WHERE session_id = $1";
const CLIENT_SESSIONS_OF_USER: &str = "SELECT l.session_id, l.client_id, c.name \
     FROM oauth_client_sessions l JOIN sessions s ON s.id = l.session_id \
     JOIN oauth_clients c ON c.id = l.client_id WHERE s.user_id = $1";

/// A client row.
fn read_client<D: Dialect>(row: &D::Row) -> StoreResult<OAuthClient> {
    let uris = D::text(row, "redirect_uris")?;
    let logout = D::text(row, "post_logout_redirect_uris")?;
    let hash = D::opt_bytes(row, "secret_hash")?;
    let alg = D::opt_text(row, "id_token_alg")?;
    Ok(OAuthClient {
        id: D::uuid(row, "id")?,
        name: D::text(row, "name")?,
        redirect_uris: serde_json::from_str(&uris).map_err(corrupt)?,
        post_logout_redirect_uris: serde_json::from_str(&logout).map_err(corrupt)?,
        public: D::flag(row, "public")?,
        secret_hash: hash
            .map(|h| SecretHash::from_slice(&h).ok_or_else(|| corrupt("client secret hash")))
            .transpose()?,
        skip_consent: D::flag(row, "skip_consent")?,
        id_token_alg: alg
            .map(|a| Algorithm::parse(&a).ok_or_else(|| corrupt("id token algorithm")))
            .transpose()?,
        created_at: D::time(row, "created_at")?,
    })
}

/// A consent row.
fn read_consent<D: Dialect>(row: &D::Row) -> StoreResult<Consent> {
    Ok(Consent {
        user_id: D::uuid(row, "user_id")?,
        client_id: D::uuid(row, "client_id")?,
        scope: D::text(row, "scope")?,
        granted_at: D::time(row, "granted_at")?,
    })
}

/// A session id column.
fn read_session_id<D: Dialect>(row: &D::Row) -> StoreResult<SessionId> {
    SessionId::parse(&D::text(row, "session_id")?).ok_or_else(|| corrupt("session id"))
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::Clients::insert_client`].
    pub async fn insert_client(&self, c: &OAuthClient) -> StoreResult<()> {
        let uris = serde_json::to_string(&c.redirect_uris).map_err(corrupt)?;
        let logout = serde_json::to_string(&c.post_logout_redirect_uris).map_err(corrupt)?;
        Sql::<D>::new(INSERT)
            .uuid(c.id)
            .text(&c.name)
            .text(&uris)
            .text(&logout)
            .flag(c.public)
            .opt_bytes(c.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()))
            .flag(c.skip_consent)
            .opt_text(c.id_token_alg.map(Algorithm::as_str))
            .time(c.created_at)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// See [`tessera_core::store::Clients::client_by_id`].
    pub async fn client_by_id(&self, id: Uuid) -> StoreResult<Option<OAuthClient>> {
        Sql::<D>::new(BY_ID)
            .uuid(id)
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_client::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::Clients::list_clients`].
    pub async fn list_clients(&self) -> StoreResult<Vec<OAuthClient>> {
        let rows = Sql::<D>::new(LIST)
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_client::<D>).collect()
    }

    /// See [`tessera_core::store::Clients::delete_client`].
    pub async fn delete_client(&self, id: Uuid) -> StoreResult<Option<Vec<SessionId>>> {
        let mut tx = self.pool().begin().await.map_err(unavailable)?;
        let rows = Sql::<D>::new(SESSIONS_OF_CLIENT)
            .uuid(id)
            .fetch_all(D::on(&mut tx))
            .await
            .map_err(unavailable)?;
        let sessions = rows
            .iter()
            .map(read_session_id::<D>)
            .collect::<StoreResult<Vec<_>>>()?;
        let deleted = Sql::<D>::new(DELETE)
            .uuid(id)
            .execute(D::on(&mut tx))
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok((deleted > 0).then_some(sessions))
    }

    /// See [`tessera_core::store::Clients::put_consent`].
    pub async fn put_consent(&self, c: &Consent) -> StoreResult<()> {
        Sql::<D>::new(PUT_CONSENT)
            .uuid(c.user_id)
            .uuid(c.client_id)
            .text(&c.scope)
            .time(c.granted_at)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// See [`tessera_core::store::Clients::consent`].
    pub async fn consent(&self, user_id: Uuid, client_id: Uuid) -> StoreResult<Option<Consent>> {
        Sql::<D>::new(CONSENT)
            .uuid(user_id)
            .uuid(client_id)
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_consent::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::Clients::list_consents`].
    pub async fn list_consents(&self, user_id: Uuid) -> StoreResult<Vec<Consent>> {
        let rows = Sql::<D>::new(CONSENTS_OF_USER)
            .uuid(user_id)
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_consent::<D>).collect()
    }

    /// See [`tessera_core::store::Clients::delete_consent`].
    pub async fn delete_consent(
        &self,
        user_id: Uuid,
        client_id: Uuid,
    ) -> StoreResult<Option<Vec<SessionId>>> {
        let mut tx = self.pool().begin().await.map_err(unavailable)?;
        let deleted = Sql::<D>::new(DELETE_CONSENT)
            .uuid(user_id)
            .uuid(client_id)
            .execute(D::on(&mut tx))
            .await
            .map_err(unavailable)?;
        Sql::<D>::new(DELETE_UNSPENT_CODES)
            .uuid(user_id)
            .uuid(client_id)
            .execute(D::on(&mut tx))
            .await
            .map_err(unavailable)?;
        let rows = Sql::<D>::new(SESSIONS_OF_USER_AND_CLIENT)
            .uuid(user_id)
            .uuid(client_id)
            .fetch_all(D::on(&mut tx))
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        let sessions = rows
            .iter()
            .map(read_session_id::<D>)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((deleted > 0).then_some(sessions))
    }

    /// See [`tessera_core::store::Clients::link_client_session`].
    pub async fn link_client_session(
        &self,
        session_id: &SessionId,
        client_id: Uuid,
        scope: &str,
    ) -> StoreResult<()> {
        Sql::<D>::new(LINK)
            .text(session_id.as_str())
            .uuid(client_id)
            .text(scope)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// See [`tessera_core::store::Clients::session_client`].
    pub async fn session_client(
        &self,
        session_id: &SessionId,
    ) -> StoreResult<Option<(Uuid, String)>> {
        let row = Sql::<D>::new(SESSION_CLIENT)
            .text(session_id.as_str())
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        row.map(|row| Ok((D::uuid(&row, "client_id")?, D::text(&row, "scope")?)))
            .transpose()
    }

    /// See [`tessera_core::store::Clients::client_sessions_of_user`].
    pub async fn client_sessions_of_user(&self, user_id: Uuid) -> StoreResult<Vec<ClientSession>> {
        let rows = Sql::<D>::new(CLIENT_SESSIONS_OF_USER)
            .uuid(user_id)
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(ClientSession {
                    session_id: read_session_id::<D>(row)?,
                    client_id: D::uuid(row, "client_id")?,
                    client_name: D::text(row, "name")?,
                })
            })
            .collect()
    }
}
