//! [`MfaFactors`]: a user's second factors — TOTP enrolment (pending until
//! a first code confirms it), recovery codes, disabling with the password,
//! an administrator's reset — and the check of a code at sign-in.
//!
//! The TOTP secret is sealed under the key-encryption key that seals the
//! signing keys ([`SigningKeys::seal_value`]), bound to its user: a copy of
//! the database alone yields no codes.

use std::sync::Arc;

use serde_json::json;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditKind};
use crate::auth_methods::AuthMethod;
use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::key_wrap;
use crate::mfa::{MfaStatus, TotpFactor};
use crate::recovery_code;
use crate::sign_in_guard::SignInGuard;
use crate::signing_keys::SigningKeys;
use crate::totp::{self, TotpSecret};
use crate::user::User;

/// What an authenticator app needs to add a TOTP factor: shown to the user
/// at enrolment (and while it is pending), never stored in clear.
#[derive(Debug)]
pub struct TotpEnrolment {
    /// The secret in base32, to type in.
    pub secret: Zeroizing<String>,
    /// The `otpauth://` URI, for a QR code.
    pub otpauth_uri: Zeroizing<String>,
}

/// A user's second factors.
#[derive(Debug)]
pub struct MfaFactors {
    context: Arc<Context>,
    guard: Arc<SignInGuard>,
    keys: Arc<SigningKeys>,
}

/// What a TOTP secret is sealed as ([`key_wrap::totp_label`]).
fn seal_label(user: &User) -> String {
    key_wrap::totp_label(user.id)
}

impl MfaFactors {
    /// Second factors over `context`; codes counted by `guard`, secrets
    /// sealed with `keys`' key-encryption key.
    pub fn new(context: Arc<Context>, guard: Arc<SignInGuard>, keys: Arc<SigningKeys>) -> Self {
        Self {
            context,
            guard,
            keys,
        }
    }

    /// The second factors `user_id` has enabled.
    pub async fn status(&self, user_id: uuid::Uuid) -> Result<MfaStatus, CoreError> {
        Ok(self.context.store().mfa_status(user_id).await?)
    }

    /// The second factors of each of `user_ids` (a page of users), in one
    /// store read, in the order given; unknown users have none.
    pub async fn statuses(&self, user_ids: &[uuid::Uuid]) -> Result<Vec<MfaStatus>, CoreError> {
        let found = self.context.store().mfa_statuses(user_ids).await?;
        Ok(user_ids
            .iter()
            .map(|id| {
                found
                    .iter()
                    .find(|(user, _)| user == id)
                    .map(|(_, status)| *status)
                    .unwrap_or_default()
            })
            .collect())
    }

    /// Starts (or starts again) a TOTP enrolment: a new secret, pending
    /// until [`Self::confirm_totp`]. [`CoreError::Conflict`] while TOTP is
    /// enabled (disable it first). `issuer` names this server in the app.
    pub async fn enrol_totp(&self, user: &User, issuer: &str) -> Result<TotpEnrolment, CoreError> {
        let secret = TotpSecret::generate()?;
        let sealed = self.keys.seal_value(&seal_label(user), secret.as_bytes())?;
        let stored = self
            .context
            .store()
            .put_pending_totp(user.id, &sealed, self.context.now())
            .await?;
        if !stored {
            return Err(CoreError::Conflict(
                "two-step verification is already enabled".into(),
            ));
        }
        Ok(enrolment(&secret, user, issuer))
    }

    /// The pending enrolment, if there is one, to show again.
    pub async fn pending_totp(
        &self,
        user: &User,
        issuer: &str,
    ) -> Result<Option<TotpEnrolment>, CoreError> {
        let Some(factor) = self.context.store().totp_factor(user.id).await? else {
            return Ok(None);
        };
        if factor.enabled_at.is_some() {
            return Ok(None);
        }
        let secret = self.open(user, &factor)?;
        Ok(Some(enrolment(&secret, user, issuer)))
    }

    /// Confirms the pending enrolment with a first code: TOTP is enabled
    /// and ten recovery codes are made, returned here once (only their
    /// hashes are kept). The code counts against the sign-in limits and is
    /// spent ([`CoreError::InvalidCode`] if wrong); [`CoreError::NotFound`]
    /// without a pending enrolment.
    pub async fn confirm_totp(
        &self,
        user: &User,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Vec<Zeroizing<String>>, CoreError> {
        let store = self.context.store();
        let factor = store
            .totp_factor(user.id)
            .await?
            .filter(|f| f.enabled_at.is_none())
            .ok_or(CoreError::NotFound)?;
        let secret = self.open(user, &factor)?;
        let now = self.context.now();
        let step = secret.matching_step(code, now);
        self.guard
            .check_code(user, client, "totp_confirm", async { Ok(step.is_some()) })
            .await?;
        let step = step.ok_or(CoreError::InvalidCode)?;
        let (codes, hashes) = recovery_code::generate(user.id)?;
        let event = AuditEvent::new(
            AuditKind::TotpEnabled,
            Some(user.id),
            client,
            now,
            json!({ "recovery_codes": hashes.len() }),
        );
        let enabled = store
            .enable_totp(user.id, &factor.sealed_secret, step, &hashes, &event, now)
            .await?;
        if !enabled {
            // Enrolled again (a new secret) or confirmed by another request
            // meanwhile: this code was for a secret no longer pending.
            return Err(CoreError::Conflict(
                "the enrolment changed meanwhile; start again".into(),
            ));
        }
        event.log();
        Ok(codes)
    }

    /// Disables TOTP (and voids the recovery codes) once `password` is
    /// right (checked against the sign-in limits, as a password change's
    /// current password is). [`CoreError::NotFound`] without a factor.
    pub async fn disable_totp(
        &self,
        user: &User,
        password: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let record = self
            .context
            .store()
            .user_by_id(user.id)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        self.guard
            .check_current_password(user, record.password_hash, password, client)
            .await?;
        if !self.context.store().delete_totp(user.id).await? {
            return Err(CoreError::NotFound);
        }
        self.context
            .audit(AuditKind::TotpDisabled, Some(user.id), client, json!({}))
            .await
    }

    /// A new set of recovery codes, replacing every unused one; returned
    /// once. [`CoreError::NotFound`] unless TOTP is enabled.
    pub async fn regenerate_recovery_codes(
        &self,
        user: &User,
        client: &ClientInfo,
    ) -> Result<Vec<Zeroizing<String>>, CoreError> {
        let (codes, hashes) = recovery_code::generate(user.id)?;
        if !self
            .context
            .store()
            .replace_recovery_codes(user.id, &hashes)
            .await?
        {
            return Err(CoreError::NotFound);
        }
        self.context
            .audit(
                AuditKind::RecoveryCodesRegenerated,
                Some(user.id),
                client,
                json!({ "recovery_codes": hashes.len() }),
            )
            .await?;
        Ok(codes)
    }

    /// An administrator's reset: every second factor of `user_id` removed
    /// (the user signs in with the password alone and may enrol again).
    /// False if the user had none.
    pub async fn reset(&self, user_id: uuid::Uuid, by: &ClientInfo) -> Result<bool, CoreError> {
        let store = self.context.store();
        let totp = store.delete_totp(user_id).await?;
        let passkeys = store.delete_user_passkeys(user_id).await?;
        let mut removed = Vec::new();
        if totp {
            removed.push("totp");
        }
        if passkeys > 0 {
            removed.push("passkeys");
        }
        if !removed.is_empty() {
            self.context
                .audit(
                    AuditKind::MfaReset,
                    Some(user_id),
                    by,
                    json!({ "removed": removed, "passkeys": passkeys }),
                )
                .await?;
        }
        Ok(!removed.is_empty())
    }

    /// Checks a sign-in's second factor: a TOTP code (six digits) or a
    /// recovery code, told apart by shape. Right → spent, and the method it
    /// proves; wrong, spent or malformed → `None`. Counting against the
    /// limits is the caller's ([`SignInGuard::check_code`]).
    pub(crate) async fn verify(
        &self,
        user: &User,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Option<AuthMethod>, CoreError> {
        let store = self.context.store();
        if totp::looks_like_code(code) {
            let Some(factor) = store
                .totp_factor(user.id)
                .await?
                .filter(|f| f.enabled_at.is_some())
            else {
                return Ok(None);
            };
            let secret = self.open(user, &factor)?;
            let Some(step) = secret.matching_step(code, self.context.now()) else {
                return Ok(None);
            };
            // Single use: only a step after the last one spent, decided by
            // the store's conditional write (two requests with one code:
            // one wins).
            let spent = step > factor.last_step && store.use_totp_step(user.id, step).await?;
            return Ok(spent.then_some(AuthMethod::OneTimeCode));
        }
        let Some(normal) = recovery_code::normalize(code) else {
            return Ok(None);
        };
        if !store
            .use_recovery_code(user.id, &recovery_code::hash(user.id, &normal))
            .await?
        {
            return Ok(None);
        }
        let left = store.mfa_status(user.id).await?.recovery_codes;
        self.context
            .audit(
                AuditKind::RecoveryCodeUsed,
                Some(user.id),
                client,
                json!({ "left": left }),
            )
            .await?;
        Ok(Some(AuthMethod::OneTimeCode))
    }

    /// The clear secret of a stored factor.
    fn open(&self, user: &User, factor: &TotpFactor) -> Result<TotpSecret, CoreError> {
        let clear = self
            .keys
            .open_value(&seal_label(user), &factor.sealed_secret)?;
        TotpSecret::from_slice(&clear)
            .ok_or_else(|| CoreError::Internal("a stored TOTP secret has the wrong length".into()))
    }
}

fn enrolment(secret: &TotpSecret, user: &User, issuer: &str) -> TotpEnrolment {
    TotpEnrolment {
        secret: secret.base32(),
        otpauth_uri: secret.otpauth_uri(issuer, user.username.display()),
    }
}
