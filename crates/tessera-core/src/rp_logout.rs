//! [`RpLogout`]: RP-initiated logout (OpenID Connect RP-Initiated Logout
//! 1.0): checking what an `end_session_endpoint` request names — the ID
//! token it hints with, the client, the registered address to send the
//! browser back to — and ending the session the hint names, through the
//! one path sessions end by.

use std::sync::Arc;

use uuid::Uuid;

use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::id_token::IdTokenClaims;
use crate::oauth_client::OAuthClient;
use crate::oauth_clients::OAuthClients;
use crate::session::SessionId;
use crate::session_end::{Ending, SessionEnd};
use crate::signing_keys::SigningKeys;

/// Why a logout request is refused. None of these may redirect anywhere:
/// the caller shows an error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogoutRefusal {
    /// The `id_token_hint` is not an ID token this server signed.
    #[error("The sign-out link carries an ID token this server did not issue.")]
    BadHint,
    /// `client_id` names no registered client.
    #[error("The application that sent you here is unknown.")]
    UnknownClient,
    /// `client_id` and the hint's audience differ.
    #[error("The sign-out link names two different applications.")]
    ClientMismatch,
    /// `post_logout_redirect_uri` without a client to check it against.
    #[error("The sign-out link asks to go back to an address without naming its application.")]
    RedirectWithoutClient,
    /// `post_logout_redirect_uri` is not one the client registered.
    #[error("The sign-out link asks to go back to an address its application did not register.")]
    UnregisteredRedirect,
}

/// A checked logout request.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    /// The client, from `client_id` or the hint's audience.
    pub client: Option<OAuthClient>,
    /// The hint's claims, when one was sent (its signature checked; it may
    /// have expired).
    pub hint: Option<IdTokenClaims>,
    /// Where to send the browser afterwards: exactly a registered
    /// `post_logout_redirect_uri` of the client.
    pub post_logout_redirect_uri: Option<String>,
}

impl LogoutRequest {
    /// The user the hint names.
    pub fn hinted_user(&self) -> Option<Uuid> {
        self.hint
            .as_ref()
            .and_then(|h| Uuid::parse_str(&h.sub).ok())
    }
}

/// RP-initiated logout.
#[derive(Debug)]
pub struct RpLogout {
    context: Arc<Context>,
    clients: Arc<OAuthClients>,
    keys: Arc<SigningKeys>,
    session_end: Arc<SessionEnd>,
}

impl RpLogout {
    /// Logout over `context`, for `clients`, checking hints with `keys`,
    /// ending sessions through `session_end`.
    pub fn new(
        context: Arc<Context>,
        clients: Arc<OAuthClients>,
        keys: Arc<SigningKeys>,
        session_end: Arc<SessionEnd>,
    ) -> Self {
        Self {
            context,
            clients,
            keys,
            session_end,
        }
    }

    /// Checks a request's parameters (each `None` when absent or empty).
    pub async fn check(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
    ) -> Result<Result<LogoutRequest, LogoutRefusal>, CoreError> {
        let hint = match id_token_hint {
            None => None,
            Some(token) => match self.keys.id_token_hint(token).await {
                Ok(claims) => Some(claims),
                Err(_) => return Ok(Err(LogoutRefusal::BadHint)),
            },
        };
        let named = match (client_id, hint.as_ref().map(|h| h.aud.as_str())) {
            (Some(given), Some(aud)) if given != aud => {
                return Ok(Err(LogoutRefusal::ClientMismatch));
            }
            (Some(id), _) | (None, Some(id)) => Some(id),
            (None, None) => None,
        };
        let client = match named {
            None => None,
            Some(id) => {
                let found = match Uuid::parse_str(id) {
                    Ok(id) => self.clients.get(id).await?,
                    Err(_) => None,
                };
                match found {
                    Some(client) => Some(client),
                    None => return Ok(Err(LogoutRefusal::UnknownClient)),
                }
            }
        };
        let post_logout_redirect_uri = match (post_logout_redirect_uri, &client) {
            (None, _) => None,
            (Some(_), None) => return Ok(Err(LogoutRefusal::RedirectWithoutClient)),
            (Some(uri), Some(client)) => {
                // Exact string comparison, as for redirect URIs.
                if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                    return Ok(Err(LogoutRefusal::UnregisteredRedirect));
                }
                Some(uri.to_owned())
            }
        };
        Ok(Ok(LogoutRequest {
            client,
            hint,
            post_logout_redirect_uri,
        }))
    }

    /// Ends the session the request's hint names (the client's token
    /// session), if it is still there and still the hinted user's; true if
    /// it ended one.
    pub async fn end_hinted_session(
        &self,
        request: &LogoutRequest,
        by: &ClientInfo,
    ) -> Result<bool, CoreError> {
        let (Some(hint), Some(user)) = (&request.hint, request.hinted_user()) else {
            return Ok(false);
        };
        let Some(sid) = SessionId::parse(&hint.sid) else {
            return Ok(false);
        };
        match self.context.store().session_by_id(&sid).await? {
            Some(session) if session.user_id == user => Ok(self
                .session_end
                .end_session(&sid, by, Ending::SignedOut)
                .await?
                .is_some()),
            _ => Ok(false),
        }
    }
}
