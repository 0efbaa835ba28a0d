//! [`OAuthClients`]: registering, listing, removing and authenticating the
//! OAuth clients. A confidential client's secret comes from the CSPRNG, is
//! shown once and stored only as its SHA-256, compared in constant time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditKind;
use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::keys::Algorithm;
use crate::oauth_client::{self, ClientError, OAuthClient};
use crate::secret::{Secret, SecretKind};
use crate::session_end::{Ending, SessionEnd};
use crate::signing_keys::SigningKeys;

/// What an administrator registers.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    /// Shown to users.
    pub name: String,
    /// Where codes may be sent.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser.
    pub post_logout_redirect_uris: Vec<String>,
    /// No secret (SPAs, native apps).
    pub public: bool,
    /// No consent page (first-party clients).
    pub skip_consent: bool,
    /// The ID token algorithm, if not RS256.
    pub id_token_signed_response_alg: Option<String>,
}

/// Clients remembered as first-party or not, per node; past this the
/// memory starts over. A client's `skip_consent` never changes once
/// registered (and its removal ends its tokens' sessions), so an entry
/// cannot go stale.
const FIRST_PARTY_MEMORY: usize = 10_000;

/// The OAuth clients.
#[derive(Debug)]
pub struct OAuthClients {
    context: Arc<Context>,
    session_end: Arc<SessionEnd>,
    keys: Arc<SigningKeys>,
    first_party: RwLock<HashMap<Uuid, bool>>,
}

impl OAuthClients {
    /// Clients over `context`; their sessions end through `session_end`.
    pub fn new(
        context: Arc<Context>,
        session_end: Arc<SessionEnd>,
        keys: Arc<SigningKeys>,
    ) -> Self {
        Self {
            context,
            session_end,
            keys,
            first_party: RwLock::new(HashMap::new()),
        }
    }

    /// Whether the client named by a token's `client_id` is first-party
    /// (registered with `skip_consent`): its tokens may manage the user's
    /// account, as a cookie session may. An unknown client is not.
    pub async fn is_first_party(&self, client_id: &str) -> Result<bool, CoreError> {
        let Ok(id) = Uuid::parse_str(client_id) else {
            return Ok(false);
        };
        if let Some(known) = self
            .first_party
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(*known);
        }
        let Some(client) = self.get(id).await? else {
            return Ok(false);
        };
        let mut memory = self.first_party.write().unwrap_or_else(|p| p.into_inner());
        if memory.len() >= FIRST_PARTY_MEMORY {
            memory.clear();
        }
        memory.insert(id, client.skip_consent);
        Ok(client.skip_consent)
    }

    /// The algorithms ID tokens can be signed with: RS256 always (as
    /// OpenID Connect requires), and the configured algorithm when it is
    /// asymmetric.
    pub fn id_token_algorithms(&self) -> Vec<Algorithm> {
        let configured = self.context.config().algorithm;
        let mut algorithms = vec![Algorithm::RS256];
        if configured.is_public() && configured != Algorithm::RS256 {
            algorithms.push(configured);
        }
        algorithms
    }

    /// Registers a client; the secret (confidential clients only) is
    /// returned here and never again.
    pub async fn register(
        &self,
        new: NewClient,
        by: &ClientInfo,
    ) -> Result<(OAuthClient, Option<Secret>), CoreError> {
        let name = oauth_client::validate_name(&new.name)?;
        oauth_client::validate_redirect_uris(&new.redirect_uris, true)?;
        oauth_client::validate_redirect_uris(&new.post_logout_redirect_uris, false)?;
        let id_token_alg = match new.id_token_signed_response_alg.as_deref() {
            None => None,
            Some(raw) => {
                let alg = oauth_client::validate_id_token_alg(raw)?;
                if !self.id_token_algorithms().contains(&alg) {
                    return Err(ClientError::Algorithm.into());
                }
                Some(alg)
            }
        };
        let secret = if new.public {
            None
        } else {
            Some(Secret::generate(SecretKind::ClientSecret)?)
        };
        let client = OAuthClient {
            id: Uuid::new_v4(),
            name,
            redirect_uris: dedup(new.redirect_uris),
            post_logout_redirect_uris: dedup(new.post_logout_redirect_uris),
            public: new.public,
            secret_hash: secret.as_ref().map(Secret::hash),
            skip_consent: new.skip_consent,
            id_token_alg,
            created_at: self.context.now(),
        };
        self.context.store().insert_client(&client).await?;
        // The key its ID tokens will be signed with exists (and is in the
        // JWKS) before the client is told its id: a relying party that
        // fetches the keys first then never meets an unknown `kid`.
        self.keys
            .id_token_signer(client.id_token_alg.unwrap_or(Algorithm::RS256))
            .await?;
        self.context
            .audit(
                AuditKind::ClientRegistered,
                None,
                by,
                json!({ "client_id": client.id, "name": client.name, "public": client.public }),
            )
            .await?;
        Ok((client, secret))
    }

    /// Every client, oldest first.
    pub async fn list(&self) -> Result<Vec<OAuthClient>, CoreError> {
        Ok(self.context.store().list_clients().await?)
    }

    /// A client by id.
    pub async fn get(&self, id: Uuid) -> Result<Option<OAuthClient>, CoreError> {
        Ok(self.context.store().client_by_id(id).await?)
    }

    /// Removes a client and ends every session it holds; how many ended.
    pub async fn remove(&self, id: Uuid, by: &ClientInfo) -> Result<usize, CoreError> {
        let sessions = self
            .context
            .store()
            .delete_client(id)
            .await?
            .ok_or(CoreError::NotFound)?;
        let mut ended = 0;
        for sid in &sessions {
            let gone = self
                .session_end
                .end_session(sid, by, Ending::Revoked("client_removed"))
                .await?;
            ended += usize::from(gone.is_some());
        }
        self.context
            .audit(
                AuditKind::ClientRemoved,
                None,
                by,
                json!({ "client_id": id, "sessions_ended": ended }),
            )
            .await?;
        Ok(ended)
    }

    /// The client `client_id` (text from a request) if it proves itself:
    /// a confidential client with its secret (compared in constant time),
    /// a public client with none. Any failure is one answer.
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<OAuthClient, CoreError> {
        let invalid = || CoreError::InvalidClient;
        let id = Uuid::parse_str(client_id).map_err(|_| invalid())?;
        let client = self
            .context
            .store()
            .client_by_id(id)
            .await?
            .ok_or_else(invalid)?;
        match (&client.secret_hash, secret) {
            (None, None) => Ok(client),
            (Some(stored), Some(presented)) => {
                let presented =
                    Secret::parse(SecretKind::ClientSecret, presented).ok_or_else(invalid)?;
                if presented.hash().ct_eq(stored) {
                    Ok(client)
                } else {
                    Err(invalid())
                }
            }
            _ => Err(invalid()),
        }
    }
}

/// The list without repeats, first occurrence kept.
fn dedup(uris: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(uris.len());
    for uri in uris {
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    out
}
