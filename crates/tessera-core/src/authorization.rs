//! [`Authorization`]: the authorization-code flow with PKCE (OAuth 2.1,
//! OpenID Connect): which client and redirect URI a request names, the
//! consent a user gave, codes issued (stored by hash, 60 s, single use) and
//! exchanged for a token session, ID tokens, and consents withdrawn.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditKind;
use crate::auth_methods::AuthMethods;
use crate::authorization_code::{AuthorizationCode, CODE_TTL, CodeRedemption};
use crate::client::ClientInfo;
use crate::consent::Consent;
use crate::context::Context;
use crate::error::CoreError;
use crate::id_token::{self, IdTokenClaims};
use crate::keys::Algorithm;
use crate::oauth_client::OAuthClient;
use crate::oauth_clients::OAuthClients;
use crate::secret::{Secret, SecretKind, sha256};
use crate::session::SessionId;
use crate::session_end::{Ending, SessionEnd};
use crate::signing_keys::SigningKeys;
use crate::token_session::{TokenGrant, TokenSessions};

/// The scopes this server grants.
pub const SCOPES: &[&str] = &["openid", "profile"];

/// What a code is issued for, once the user has signed in and consented.
#[derive(Debug, Clone)]
pub struct CodeRequest<'a> {
    /// The client (found by [`Authorization::client_for_redirect`]).
    pub client: &'a OAuthClient,
    /// The user.
    pub user_id: Uuid,
    /// The redirect URI, exactly as registered.
    pub redirect_uri: &'a str,
    /// The PKCE S256 challenge.
    pub code_challenge: &'a str,
    /// The scope granted, space-separated.
    pub scope: &'a str,
    /// The client's nonce.
    pub nonce: Option<&'a str>,
    /// When the user signed in.
    pub auth_time: OffsetDateTime,
    /// How the user proved who they are.
    pub amr: AuthMethods,
}

/// What the exchange of a code gives.
#[derive(Debug)]
pub struct CodeGrant {
    /// The token session's access and refresh tokens.
    pub grant: TokenGrant,
    /// The ID token, when `openid` was granted.
    pub id_token: Option<String>,
    /// The scope granted.
    pub scope: String,
}

/// A consent as the account page shows it.
#[derive(Debug, Clone)]
pub struct ConsentView {
    /// The consent.
    pub consent: Consent,
    /// The client's name.
    pub client_name: String,
}

/// The authorization-code flow.
#[derive(Debug)]
pub struct Authorization {
    context: Arc<Context>,
    clients: Arc<OAuthClients>,
    tokens: Arc<TokenSessions>,
    session_end: Arc<SessionEnd>,
    keys: Arc<SigningKeys>,
}

impl Authorization {
    /// The flow over `context`, for `clients`, starting sessions through
    /// `tokens`, ending them through `session_end`, signing with `keys`.
    pub fn new(
        context: Arc<Context>,
        clients: Arc<OAuthClients>,
        tokens: Arc<TokenSessions>,
        session_end: Arc<SessionEnd>,
        keys: Arc<SigningKeys>,
    ) -> Self {
        Self {
            context,
            clients,
            tokens,
            session_end,
            keys,
        }
    }

    /// The client named by `client_id` if `redirect_uri` is exactly one of
    /// its redirect URIs; [`CoreError::NotFound`] otherwise (the browser
    /// must then not be sent anywhere).
    pub async fn client_for_redirect(
        &self,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<OAuthClient, CoreError> {
        let id = Uuid::parse_str(client_id).map_err(|_| CoreError::NotFound)?;
        match self.clients.get(id).await? {
            Some(client) if client.has_redirect_uri(redirect_uri) => Ok(client),
            _ => Err(CoreError::NotFound),
        }
    }

    /// Whether `user_id` must still consent to `scope` for `client`.
    pub async fn needs_consent(
        &self,
        client: &OAuthClient,
        user_id: Uuid,
        scope: &str,
    ) -> Result<bool, CoreError> {
        if client.skip_consent {
            return Ok(false);
        }
        let consent = self.context.store().consent(user_id, client.id).await?;
        Ok(!consent.is_some_and(|c| c.covers(scope)))
    }

    /// Remembers that `user_id` consented to `scope` for `client`.
    pub async fn grant_consent(
        &self,
        client: &OAuthClient,
        user_id: Uuid,
        scope: &str,
        by: &ClientInfo,
    ) -> Result<(), CoreError> {
        let consent = Consent {
            user_id,
            client_id: client.id,
            scope: scope.to_owned(),
            granted_at: self.context.now(),
        };
        self.context.store().put_consent(&consent).await?;
        self.context
            .audit(
                AuditKind::ConsentGranted,
                Some(user_id),
                by,
                json!({ "client_id": client.id, "scope": scope }),
            )
            .await
    }

    /// The user's consents, with their clients' names.
    pub async fn consents(&self, user_id: Uuid) -> Result<Vec<ConsentView>, CoreError> {
        let consents = self.context.store().list_consents(user_id).await?;
        let mut views = Vec::with_capacity(consents.len());
        for consent in consents {
            let name = self
                .clients
                .get(consent.client_id)
                .await?
                .map(|c| c.name)
                .unwrap_or_default();
            views.push(ConsentView {
                consent,
                client_name: name,
            });
        }
        Ok(views)
    }

    /// Withdraws the user's consent to a client (`client_id` as a request
    /// gave it), so the next authorization asks again: the codes not yet
    /// exchanged go with it and every session that client holds for the
    /// user ends through [`SessionEnd`] (revoked everywhere, audited).
    /// Returns how many sessions ended; [`CoreError::NotFound`] if the user
    /// had no consent for it, or `client_id` is no client id at all. The
    /// account page and `DELETE /v1/me/consents/{id}` both come here.
    pub async fn revoke_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        by: &ClientInfo,
    ) -> Result<usize, CoreError> {
        let client_id = Uuid::parse_str(client_id).map_err(|_| CoreError::NotFound)?;
        let sessions = self
            .context
            .store()
            .delete_consent(user_id, client_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        let mut ended = 0;
        for sid in &sessions {
            let gone = self
                .session_end
                .end_session(sid, by, Ending::Revoked("consent_revoked"))
                .await?;
            ended += usize::from(gone.is_some());
        }
        self.context
            .audit(
                AuditKind::ConsentRevoked,
                Some(user_id),
                by,
                json!({ "client_id": client_id, "sessions_ended": ended }),
            )
            .await?;
        Ok(ended)
    }

    /// Issues a code; only its hash is stored.
    pub async fn issue_code(&self, request: &CodeRequest<'_>) -> Result<Secret, CoreError> {
        let secret = Secret::generate(SecretKind::AuthorizationCode)?;
        let now = self.context.now();
        let code = AuthorizationCode {
            code_hash: secret.hash(),
            client_id: request.client.id,
            user_id: request.user_id,
            redirect_uri: request.redirect_uri.to_owned(),
            code_challenge: request.code_challenge.to_owned(),
            scope: request.scope.to_owned(),
            nonce: request.nonce.map(str::to_owned),
            auth_time: request.auth_time,
            amr: request.amr,
            created_at: now,
            expires_at: now + CODE_TTL,
        };
        self.context.store().insert_code(&code).await?;
        Ok(secret)
    }

    /// `grant_type=authorization_code`: exchanges `code` for a token
    /// session of `client` (already authenticated). The code must be
    /// unspent, unexpired, issued to this client for this redirect URI, and
    /// `code_verifier` must hash to its challenge. A code presented again
    /// ends the session its first exchange created.
    pub async fn exchange(
        &self,
        client: &OAuthClient,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
        by: &ClientInfo,
    ) -> Result<CodeGrant, CoreError> {
        let invalid = |why: &str| CoreError::InvalidGrant(why.to_owned());
        let secret = Secret::parse(SecretKind::AuthorizationCode, code)
            .ok_or_else(|| invalid("the code is invalid, expired or used"))?;
        let hash = secret.hash();
        let now = self.context.now();
        let code = match self.context.store().redeem_code(&hash, now).await? {
            CodeRedemption::Redeemed(code) => code,
            CodeRedemption::Reused { code, session } => {
                if let Some(sid) = &session {
                    self.session_end
                        .end_session(sid, by, Ending::Revoked("code_reuse"))
                        .await?;
                }
                self.context
                    .audit(
                        AuditKind::CodeReused,
                        Some(code.user_id),
                        by,
                        json!({ "client_id": code.client_id, "session_id": session.as_ref().map(SessionId::as_str) }),
                    )
                    .await?;
                return Err(invalid("the code is invalid, expired or used"));
            }
            CodeRedemption::Unknown => return Err(invalid("the code is invalid, expired or used")),
        };
        if code.client_id != client.id {
            return Err(invalid("the code was issued to another client"));
        }
        if now >= code.expires_at {
            return Err(invalid("the code is invalid, expired or used"));
        }
        if code.redirect_uri != redirect_uri {
            return Err(invalid(
                "redirect_uri differs from the authorization request's",
            ));
        }
        if !pkce_matches(code_verifier, &code.code_challenge) {
            return Err(invalid("code_verifier does not match the code_challenge"));
        }
        let record = self
            .context
            .store()
            .user_by_id(code.user_id)
            .await?
            .filter(|r| !r.user.disabled)
            .ok_or_else(|| invalid("the user can no longer sign in"))?;
        let grant = self
            .tokens
            .start(
                record.user,
                &record.password_hash,
                code.amr,
                by,
                Some((client.id, &code.scope)),
            )
            .await?
            .ok_or_else(|| invalid("the user can no longer sign in"))?;
        if self
            .context
            .store()
            .set_code_session(&hash, &grant.session.id)
            .await?
        {
            // Presented again while this exchange ran: nothing it made lives.
            self.session_end
                .end_session(&grant.session.id, by, Ending::Revoked("code_reuse"))
                .await?;
            return Err(invalid("the code is invalid, expired or used"));
        }
        // Consent withdrawn while this exchange ran: the withdrawal ended
        // the client's sessions it found, which may not have included this
        // one yet. The store orders the two: whichever comes second sees
        // the other.
        if !client.skip_consent {
            let consent = self
                .context
                .store()
                .consent(code.user_id, client.id)
                .await?;
            if !consent.is_some_and(|c| c.covers(&code.scope)) {
                self.session_end
                    .end_session(&grant.session.id, by, Ending::Revoked("consent_revoked"))
                    .await?;
                return Err(invalid("the user withdrew consent"));
            }
        }
        let id_token = if has_scope(&code.scope, "openid") {
            Some(self.id_token(client, &code, &grant).await?)
        } else {
            None
        };
        Ok(CodeGrant {
            grant,
            id_token,
            scope: code.scope,
        })
    }

    /// The ID token going with `grant`.
    async fn id_token(
        &self,
        client: &OAuthClient,
        code: &AuthorizationCode,
        grant: &TokenGrant,
    ) -> Result<String, CoreError> {
        // RS256 unless the client registered another (OIDC Registration §2).
        let alg = client.id_token_alg.unwrap_or(Algorithm::RS256);
        let key = self.keys.id_token_signer(alg).await?;
        let config = self.context.config();
        let iat = self.context.now().unix_timestamp();
        let claims = IdTokenClaims {
            iss: config.tokens.issuer.clone(),
            sub: grant.user.id.to_string(),
            aud: client.id.to_string(),
            exp: iat + config.tokens.access_ttl.whole_seconds(),
            iat,
            auth_time: code.auth_time.unix_timestamp(),
            nonce: code.nonce.clone(),
            sid: grant.session.id.as_str().to_owned(),
            at_hash: id_token::at_hash(alg, &grant.access_token),
            preferred_username: has_scope(&code.scope, "profile")
                .then(|| grant.user.username.display().to_owned()),
            amr: code.amr.amr(),
            acr: code.amr.acr().to_owned(),
        };
        id_token::mint(&key, &claims)
    }
}

/// Whether space-separated `scope` holds `wanted`.
pub fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

/// Whether a PKCE challenge is well formed: base64url of a SHA-256 (43
/// characters).
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 S256: the verifier is 43–128 unreserved characters and
/// base64url(SHA-256(verifier)) equals the challenge (compared in constant
/// time).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
    crate::secret::constant_time_str_eq(&computed, challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_as_in_rfc_7636() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        // `plain` would send the verifier as the challenge: it never matches.
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches("short", challenge));
    }
}
