//! Authorization codes: what a code is bound to, as stored (by hash only),
//! and what redeeming one found.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth_methods::AuthMethods;
use crate::secret::SecretHash;
use crate::session::SessionId;

/// How long a code can be exchanged.
pub const CODE_TTL: time::Duration = time::Duration::seconds(60);

/// A code as stored: everything the exchange must match or carry over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// SHA-256 of the code: the code itself is never stored.
    pub code_hash: SecretHash,
    /// The client it was issued to.
    pub client_id: Uuid,
    /// The user who authorised it.
    pub user_id: Uuid,
    /// The redirect URI it was sent to (the exchange must name it again).
    pub redirect_uri: String,
    /// The PKCE S256 challenge (base64url of SHA-256 of the verifier).
    pub code_challenge: String,
    /// The granted scope, space-separated.
    pub scope: String,
    /// The client's `nonce`, echoed in the ID token.
    pub nonce: Option<String>,
    /// When the user last proved their password (`auth_time`).
    pub auth_time: OffsetDateTime,
    /// How they proved who they are (the session that authorised it).
    pub amr: AuthMethods,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops being exchangeable.
    pub expires_at: OffsetDateTime,
}

/// What presenting a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code is now spent.
    Redeemed(AuthorizationCode),
    /// Already spent: the code is now marked reused, and `session` is the
    /// session its first exchange created (if it got that far), to revoke.
    Reused {
        /// The code as stored.
        code: AuthorizationCode,
        /// What its first use created.
        session: Option<SessionId>,
    },
    /// No such code.
    Unknown,
}
