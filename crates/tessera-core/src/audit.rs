//! The append-only audit log: who did what, from where, and when.
//! Never a secret: details hold identifiers and reasons only.

use std::net::IpAddr;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::client::ClientInfo;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// A new account was created.
    UserRegistered,
    /// A sign-in (cookie or token) succeeded.
    SignInSucceeded,
    /// A sign-in failed: unknown user, wrong password, disabled account.
    SignInFailed,
    /// A session was ended by its own user.
    SignedOut,
    /// A session was revoked (by id, by scope, by an administrator).
    SessionRevoked,
    /// A user changed their password.
    PasswordChanged,
    /// An administrator disabled a user.
    UserDisabled,
    /// An administrator enabled a user.
    UserEnabled,
    /// A replaced refresh token was presented after the grace window: the
    /// session was revoked as stolen.
    RefreshReused,
    /// A new signing key became current.
    KeyRotated,
    /// Signing keys stored in clear (before keys were sealed) were sealed.
    KeysSealed,
    /// Signing keys were re-wrapped under a new key-encryption key.
    KeysRewrapped,
    /// Sign-in was blocked or slowed after too many failures.
    SignInRateLimited,
    /// An OAuth client was registered.
    ClientRegistered,
    /// An OAuth client was removed (and its sessions ended).
    ClientRemoved,
    /// A user consented to a client.
    ConsentGranted,
    /// A user withdrew a consent (and the client's sessions ended).
    ConsentRevoked,
    /// An authorization code was presented again: what it issued was revoked.
    CodeReused,
    /// A user registered a passkey.
    PasskeyAdded,
    /// A passkey was removed (by its user, or all of a user's by an
    /// administrator).
    PasskeyRemoved,
    /// A user enabled TOTP (confirmed with a first code).
    TotpEnabled,
    /// A user disabled TOTP (with their password).
    TotpDisabled,
    /// An administrator removed a user's second factors.
    MfaReset,
    /// A recovery code was spent to sign in.
    RecoveryCodeUsed,
    /// A user made a new set of recovery codes (the old ones are void).
    RecoveryCodesRegenerated,
}

impl AuditKind {
    /// The stable name stored and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::UserRegistered => "user.registered",
            AuditKind::SignInSucceeded => "sign_in.succeeded",
            AuditKind::SignInFailed => "sign_in.failed",
            AuditKind::SignedOut => "session.signed_out",
            AuditKind::SessionRevoked => "session.revoked",
            AuditKind::PasswordChanged => "user.password_changed",
            AuditKind::UserDisabled => "user.disabled",
            AuditKind::UserEnabled => "user.enabled",
            AuditKind::RefreshReused => "token.refresh_reused",
            AuditKind::KeyRotated => "keys.rotated",
            AuditKind::KeysSealed => "keys.sealed",
            AuditKind::KeysRewrapped => "keys.rewrapped",
            AuditKind::SignInRateLimited => "sign_in.rate_limited",
            AuditKind::ClientRegistered => "client.registered",
            AuditKind::ClientRemoved => "client.removed",
            AuditKind::ConsentGranted => "consent.granted",
            AuditKind::ConsentRevoked => "consent.revoked",
            AuditKind::CodeReused => "oauth.code_reused",
            AuditKind::PasskeyAdded => "passkey.added",
            AuditKind::PasskeyRemoved => "passkey.removed",
            AuditKind::TotpEnabled => "mfa.totp_enabled",
            AuditKind::TotpDisabled => "mfa.totp_disabled",
            AuditKind::MfaReset => "mfa.reset",
            AuditKind::RecoveryCodeUsed => "mfa.recovery_code_used",
            AuditKind::RecoveryCodesRegenerated => "mfa.recovery_codes_regenerated",
        }
    }
}

/// One event, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// What happened (see [`AuditKind::as_str`]).
    pub kind: String,
    /// The user it concerns, if known.
    pub user_id: Option<Uuid>,
    /// Client address.
    pub ip: Option<IpAddr>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// When it happened.
    pub at: OffsetDateTime,
    /// Free-form detail: identifiers and reasons, never secrets.
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event of `kind` about `user_id`, from `client`, at `at`.
    pub fn new(
        kind: AuditKind,
        user_id: Option<Uuid>,
        client: &ClientInfo,
        at: OffsetDateTime,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            kind: kind.as_str().to_owned(),
            user_id,
            ip: client.ip,
            user_agent: client.user_agent.clone(),
            at,
            detail,
        }
    }

    /// Writes the event to the log stream too (target `tessera::audit`),
    /// once it is stored: operators see it where they see everything else.
    pub fn log(&self) {
        tracing::info!(
            target: "tessera::audit",
            event = %self.kind,
            user_id = self.user_id.map(tracing::field::display),
            ip = self.ip.map(tracing::field::display),
            user_agent = self.user_agent.as_deref(),
            detail = %self.detail,
            "audit"
        );
    }
}

/// A stored event with its position in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Increasing position; pages are cut by it.
    pub id: i64,
    /// The event.
    pub event: AuditEvent,
}
