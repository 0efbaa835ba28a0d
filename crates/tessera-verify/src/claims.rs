//! The claims of a Tessera access token.

use serde::{Deserialize, Serialize};

/// The claims of a Tessera access token (RFC 9068 profile). Every field but
/// `nbf` is required; a token missing one is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the Tessera server's public URL.
    pub iss: String,
    /// Subject: the user's id.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// The token's own id: revoking it ends this token only.
    pub jti: String,
    /// The id of the session the token belongs to: revoking it ends every
    /// token of the session.
    pub sid: String,
    /// The user's roles when the token was minted.
    pub roles: Vec<String>,
    /// Not before (Unix seconds); Tessera does not set it, but it is honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The OAuth client the token was issued to (RFC 9068), for tokens
    /// from the authorization-code flow; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The granted scopes, space-separated (RFC 9068), with `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// How the user proved who they are when the session began (RFC 8176
    /// names: `pwd`, `otp`, `hwk`, and `mfa` for more than one factor);
    /// empty in tokens from servers that did not say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

impl Claims {
    /// Whether the user held `role` when the token was minted.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
