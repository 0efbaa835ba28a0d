//! Second factors as stored: a user's TOTP factor, what second factors a
//! user has, and the challenge that stands between a correct password and
//! a session when the user has one.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::auth_methods::AuthMethods;
use crate::secret::SecretHash;
use crate::session::SessionKind;

/// How long a sign-in waits for its second factor.
pub const CHALLENGE_TTL: Duration = Duration::minutes(5);

/// A user's TOTP factor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// Whose it is.
    pub user_id: Uuid,
    /// The secret, sealed under the key-encryption key (never in clear).
    pub sealed_secret: Vec<u8>,
    /// When the enrolment began.
    pub created_at: OffsetDateTime,
    /// When the user confirmed it with a first code; `None` while pending
    /// (a pending factor is not asked for at sign-in).
    pub enabled_at: Option<OffsetDateTime>,
    /// The last time step whose code was accepted (0: none yet): only
    /// later ones are.
    pub last_step: i64,
}

/// Which second factors a user has enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MfaStatus {
    /// A confirmed TOTP factor.
    pub totp: bool,
    /// Unused recovery codes left.
    pub recovery_codes: u32,
    /// Passkeys registered (each proves a second factor, and signs in alone).
    pub passkeys: u32,
}

impl MfaStatus {
    /// Whether a password alone no longer signs in: a TOTP factor or a
    /// passkey must follow it.
    pub fn required(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// What a sign-in finished by its second factor makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaNext {
    /// A cookie session (`POST /v1/session`, the sign-in page).
    Cookie {
        /// The user asked to be remembered.
        remember_me: bool,
    },
    /// A token session (the password grant).
    Token,
}

impl MfaNext {
    /// The kind of session it makes: the carrier the sign-in must be
    /// finished on.
    pub fn kind(&self) -> SessionKind {
        match self {
            MfaNext::Cookie { .. } => SessionKind::Cookie,
            MfaNext::Token => SessionKind::Token,
        }
    }

    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            MfaNext::Cookie { remember_me: false } => "cookie",
            MfaNext::Cookie { remember_me: true } => "cookie_remember",
            MfaNext::Token => "token",
        }
    }

    /// Reads the stored name back.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "cookie" => Some(MfaNext::Cookie { remember_me: false }),
            "cookie_remember" => Some(MfaNext::Cookie { remember_me: true }),
            "token" => Some(MfaNext::Token),
            _ => None,
        }
    }
}

/// A sign-in waiting for its second factor, as stored (the token itself
/// only by hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    /// SHA-256 of the `mfa_token`.
    pub token_hash: SecretHash,
    /// The user whose password was right.
    pub user_id: Uuid,
    /// The address the password came from: the code must come from it too.
    pub ip: Option<IpAddr>,
    /// What the password proved (`pwd`).
    pub amr: AuthMethods,
    /// What the finished sign-in makes.
    pub next: MfaNext,
    /// SHA-256 of the password hash checked: a password change meanwhile
    /// makes the challenge worthless.
    pub password_fingerprint: SecretHash,
    /// When the password was checked.
    pub created_at: OffsetDateTime,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}
