//! Domain errors: what went wrong, in the domain's words. The HTTP layer maps
//! each to a status and a problem type.

use crate::key_wrap::{KeyStoreError, WrapError};
use crate::oauth_client::ClientError;
use crate::password::{HashError, PasswordPolicyError};
use crate::secret::{RandomError, Secret};
use crate::store::StoreError;
use crate::username::UsernameError;

/// Everything a domain operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The username is malformed.
    #[error("invalid username: {0}")]
    InvalidUsername(#[from] UsernameError),
    /// The new password breaks the policy.
    #[error("password refused: {0}")]
    WeakPassword(#[from] PasswordPolicyError),
    /// The username is already registered.
    #[error("the username is taken")]
    UsernameTaken,
    /// Wrong username or password, or a disabled account: deliberately one case.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// No valid session or token.
    #[error("not signed in")]
    Unauthenticated,
    /// The password was right, and the user has a second factor: the
    /// sign-in goes on with the token given (shown to the client once).
    #[error("a second factor is required")]
    MfaRequired(Box<Secret>),
    /// An `mfa_token` that is unknown, expired, spent, from another address
    /// or for another way of signing in: deliberately one case.
    #[error("the mfa_token is invalid or expired")]
    InvalidMfaToken,
    /// A wrong, spent or malformed second-factor code.
    #[error("the code is wrong or was used already")]
    InvalidCode,
    /// The write conflicts with what is stored (e.g. a second factor
    /// enrolled while one is enabled).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing asked for does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// An OAuth grant (refresh token, credentials at the token endpoint) was refused.
    #[error("invalid grant: {0}")]
    InvalidGrant(String),
    /// A client registration was refused.
    #[error("client refused: {0}")]
    ClientRefused(#[from] ClientError),
    /// An OAuth client failed to authenticate (unknown id, wrong secret).
    #[error("client authentication failed")]
    InvalidClient,
    /// Too many failed sign-ins from this client or for this account.
    #[error("too many failed sign-ins; retry after {retry_after} s")]
    RateLimited {
        /// Seconds until the next attempt may be made.
        retry_after: u64,
    },
    /// Too many registrations from this client.
    #[error("too many registrations; retry after {retry_after} s")]
    TooManyRegistrations {
        /// Seconds until a registration may be attempted again.
        retry_after: u64,
    },
    /// Too much work queued: try again later.
    #[error("server busy; retry after {retry_after} s")]
    Busy {
        /// Seconds the work queued now needs.
        retry_after: u64,
    },
    /// A passkey could not be registered (or renamed): the reason is for
    /// the user.
    #[error("passkey refused: {0}")]
    PasskeyRefused(String),
    /// A passkey answer did not prove anyone: unknown, expired or spent
    /// ceremony, unknown credential, bad signature. Deliberately one case.
    #[error("the passkey was not accepted")]
    PasskeyNotAccepted,
    /// Passkeys need `public_url` to name a host by a domain name.
    #[error("passkeys are unavailable on this server")]
    PasskeysUnavailable,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing keys could not be sealed or opened (e.g. the wrong key-encryption key).
    #[error(transparent)]
    Keys(#[from] WrapError),
    /// A fault inside the server.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<HashError> for CoreError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy { retry_after } => CoreError::Busy { retry_after },
            HashError::Internal(m) => CoreError::Internal(m),
        }
    }
}

impl From<KeyStoreError> for CoreError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::Store(e) => CoreError::Store(e),
            KeyStoreError::Wrap(e) => CoreError::Keys(e),
        }
    }
}

impl From<RandomError> for CoreError {
    fn from(e: RandomError) -> Self {
        CoreError::Internal(e.to_string())
    }
}
