//! [`SignInGuard`]: every password check goes through here — sign-in (the
//! cookie and token endpoints alike) and the current password of a password
//! change — and so does every registration. It applies the brute-force
//! policy of [`crate::rate_limit`]: an attempt is reserved before any
//! password work, and its outcome decides what the counters keep. A sign-in
//! check costs one Argon2 verification whether or not the user exists.

use std::future::Future;
use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::attempt::{Admission, doubled};
use crate::audit::AuditKind;
use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::metrics::SignInOutcome;
use crate::mfa::MfaStatus;
use crate::password::Verified;
use crate::rate_limit::{AttemptKeys, MAX_IP_BLOCK, STRIKE_MEMORY, address_key};
use crate::user::{User, UserRecord};
use crate::username::Username;

/// An admitted attempt's counts, which tell its failure what to impose.
#[derive(Debug, Clone, Copy)]
struct Admitted {
    ip: u64,
    account: u64,
}

fn seconds_until(now: OffsetDateTime, until: OffsetDateTime) -> u64 {
    u64::try_from((until - now).whole_seconds().max(1)).unwrap_or(1)
}

/// A right password, and what else the user must prove.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The user and the password hash in force.
    pub(crate) record: UserRecord,
    /// The user's second factors.
    pub(crate) mfa: MfaStatus,
}

/// The guard in front of password checks and registrations.
#[derive(Debug)]
pub struct SignInGuard {
    context: Arc<Context>,
}

impl SignInGuard {
    /// A guard over `context`'s counters and hashing pool.
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// Argon2 verifications run so far (each sign-in attempt runs exactly one,
    /// whether or not the user exists).
    pub fn password_verifications(&self) -> u64 {
        self.context.hasher().verifications()
    }

    /// Checks a username and password. Every failure is the same
    /// [`CoreError::InvalidCredentials`] and costs one Argon2 verification,
    /// so neither the answer nor its timing tells whether the user exists.
    /// Answers the user with the password hash in force, which the session
    /// made next must still find (see [`crate::store::Sessions::insert_session`]),
    /// and the second factors the user has: with one, the attempt is not
    /// over (see [`Self::check_code`]).
    pub(crate) async fn check_credentials(
        &self,
        username: &str,
        password: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<Checked, CoreError> {
        let name = Username::parse(username);
        let keys = AttemptKeys::new(name.as_ref().map_or(username, |n| n.normalized()), client);
        // Before any password work, and counted while in flight: a blocked
        // client costs no Argon2 run, and parallel guesses cannot overrun
        // the limit.
        let metrics = self.context.metrics();
        let admitted = match self.reserve_attempt(&keys).await {
            Ok(admitted) => admitted,
            Err(e) => {
                if matches!(e, CoreError::RateLimited { .. }) {
                    metrics.sign_in(SignInOutcome::Throttled);
                }
                return Err(e);
            }
        };
        let checked = match self.verify_credentials(name.ok(), password, client).await {
            Ok(record) => match self.context.store().mfa_status(record.user.id).await {
                Ok(mfa) => Ok(Checked { record, mfa }),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        };
        match &checked {
            Ok(checked) if checked.mfa.required() => {
                // Half way: the slot goes back, but the account's count
                // stays until the second factor is right too, so a known
                // password does not reset the limit on guessing codes.
                self.attempt_abandoned(&keys).await;
                metrics.sign_in(SignInOutcome::MfaRequired);
            }
            Ok(_) => {
                self.attempt_succeeded(&keys).await?;
                metrics.sign_in(SignInOutcome::Ok);
            }
            Err(CoreError::InvalidCredentials) => {
                self.attempt_failed(&keys, admitted, client).await?;
            }
            Err(e) => {
                if matches!(e, CoreError::Busy { .. }) {
                    metrics.sign_in(SignInOutcome::Busy);
                }
                self.attempt_abandoned(&keys).await;
            }
        }
        checked
    }

    /// The password check of [`Self::check_credentials`], after admission.
    async fn verify_credentials(
        &self,
        name: Option<Username>,
        password: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<UserRecord, CoreError> {
        let store = self.context.store();
        let hasher = self.context.hasher();
        let record = match &name {
            Some(name) => store.user_by_username(name.normalized()).await?,
            None => None,
        };
        let stored_hash = record.as_ref().map(|r| r.password_hash.clone());
        let outcome = hasher.verify(password.clone(), stored_hash).await?;
        let failure = match (&record, outcome) {
            (None, _) => Some("unknown_user"),
            (Some(_), Verified::Mismatch) => Some("wrong_password"),
            (Some(r), _) if r.user.disabled => Some("disabled"),
            _ => None,
        };
        match (record, failure) {
            (Some(mut record), None) => {
                if outcome == Verified::MatchNeedsRehash {
                    let fresh = hasher.hash(password).await?;
                    store
                        .set_password_hash(record.user.id, &fresh, self.context.now())
                        .await?;
                    record.password_hash = fresh;
                }
                Ok(record)
            }
            (record, reason) => {
                self.context.metrics().sign_in(match reason {
                    Some("disabled") => SignInOutcome::Disabled,
                    _ => SignInOutcome::WrongCredentials,
                });
                let user_id = record.map(|r| r.user.id);
                self.context
                    .audit(
                        AuditKind::SignInFailed,
                        user_id,
                        client,
                        json!({ "reason": reason.unwrap_or("unknown") }),
                    )
                    .await?;
                Err(CoreError::InvalidCredentials)
            }
        }
    }

    /// Checks the current password of `user` (whose hash in force is
    /// `password_hash`) before a password change. It counts against the
    /// sign-in limits: a session must not be an unlimited password oracle.
    pub(crate) async fn check_current_password(
        &self,
        user: &User,
        password_hash: String,
        current: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let keys = AttemptKeys::new(user.username.normalized(), client);
        let admitted = self.reserve_attempt(&keys).await?;
        let outcome = match self
            .context
            .hasher()
            .verify(current, Some(password_hash))
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                self.attempt_abandoned(&keys).await;
                return Err(e.into());
            }
        };
        if !outcome.is_match() {
            self.context
                .audit(
                    AuditKind::SignInFailed,
                    Some(user.id),
                    client,
                    json!({ "reason": "wrong_password", "during": "password_change" }),
                )
                .await?;
            self.attempt_failed(&keys, admitted, client).await?;
            return Err(CoreError::InvalidCredentials);
        }
        self.attempt_succeeded(&keys).await
    }

    /// Checks a second-factor code of `user` with `check` (true: right and
    /// now spent). It counts against the same limits as passwords, on the
    /// same keys: once they are reached even a right code is refused
    /// ([`CoreError::RateLimited`]) before `check` runs, so it is not
    /// spent. A wrong one is [`CoreError::InvalidCode`].
    pub(crate) async fn check_code<F>(
        &self,
        user: &User,
        client: &ClientInfo,
        during: &'static str,
        check: F,
    ) -> Result<(), CoreError>
    where
        F: Future<Output = Result<bool, CoreError>>,
    {
        let metrics = self.context.metrics();
        let keys = AttemptKeys::new(user.username.normalized(), client);
        let admitted = match self.reserve_attempt(&keys).await {
            Ok(admitted) => admitted,
            Err(e) => {
                if matches!(e, CoreError::RateLimited { .. }) {
                    metrics.sign_in(SignInOutcome::Throttled);
                }
                return Err(e);
            }
        };
        match check.await {
            Ok(true) => self.attempt_succeeded(&keys).await,
            Ok(false) => {
                metrics.sign_in(SignInOutcome::WrongCode);
                self.context
                    .audit(
                        AuditKind::SignInFailed,
                        Some(user.id),
                        client,
                        json!({ "reason": "wrong_code", "during": during }),
                    )
                    .await?;
                self.attempt_failed(&keys, admitted, client).await?;
                Err(CoreError::InvalidCode)
            }
            Err(e) => {
                self.attempt_abandoned(&keys).await;
                Err(e)
            }
        }
    }

    /// Reserves a password attempt before any password work: refuses with
    /// [`CoreError::RateLimited`] while the address is blocked or full or
    /// the account's next attempt is not due, and otherwise counts the
    /// attempt at once, so that parallel attempts cannot all pass. One store
    /// operation.
    async fn reserve_attempt(&self, keys: &AttemptKeys) -> Result<Admitted, CoreError> {
        let now = self.context.now();
        match self
            .context
            .store()
            .reserve(&keys.attempt(self.context.config().rate_limit), now)
            .await?
        {
            Admission::Granted { ip, account } => Ok(Admitted { ip, account }),
            Admission::Refused { retry_at } => Err(CoreError::RateLimited {
                retry_after: seconds_until(now, retry_at),
            }),
        }
    }

    /// A right password: gives the slots back and clears the account's
    /// count (not the address's: one good password does not excuse a
    /// thousand guesses from the same address).
    async fn attempt_succeeded(&self, keys: &AttemptKeys) -> Result<(), CoreError> {
        let attempt = keys.attempt(self.context.config().rate_limit);
        Ok(self
            .context
            .store()
            .release(&attempt, true, self.context.now())
            .await?)
    }

    /// The password was never checked (the hashing pool was busy, the store
    /// failed): gives the slots back, keeping the original error. A failure
    /// to do so only leaves the slot counted, the cautious side.
    async fn attempt_abandoned(&self, keys: &AttemptKeys) {
        let attempt = keys.attempt(self.context.config().rate_limit);
        if let Err(e) = self
            .context
            .store()
            .release(&attempt, false, self.context.now())
            .await
        {
            tracing::warn!(error = %e, "cannot give back an unchecked password attempt");
        }
    }

    /// A wrong password, already counted when it was admitted: the attempt
    /// that took the address's last slot blocks it (growing with each
    /// strike); an account past the limit was slowed on admission. Both are
    /// audited.
    async fn attempt_failed(
        &self,
        keys: &AttemptKeys,
        admitted: Admitted,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let store = self.context.store();
        let policy = self.context.config().rate_limit;
        let now = self.context.now();
        if let Some(ip) = keys.ip()
            && admitted.ip >= u64::from(policy.login_attempts)
        {
            let (strikes, _) = store
                .hit(&format!("strikes:{ip}"), STRIKE_MEMORY, now)
                .await?;
            let block = doubled(policy.window, strikes.saturating_sub(1), MAX_IP_BLOCK);
            store.block(ip, now + block, now).await?;
            self.context
                .audit(
                    AuditKind::SignInRateLimited,
                    None,
                    client,
                    json!({ "scope": "ip", "retry_after": block.whole_seconds(), "strike": strikes }),
                )
                .await?;
        }
        if let Some(wait) = keys.attempt(policy).account_wait(admitted.account) {
            self.context
                .audit(
                    AuditKind::SignInRateLimited,
                    None,
                    client,
                    json!({ "scope": "account", "retry_after": wait.whole_seconds(), "attempts": admitted.account }),
                )
                .await?;
        }
        Ok(())
    }

    /// Counts a registration attempt from `client`'s address (whatever its
    /// outcome: probing for taken names is what is limited) and refuses it
    /// past `rate_limit.registrations` in the window. One atomic store
    /// operation.
    pub(crate) async fn count_registration(&self, client: &ClientInfo) -> Result<(), CoreError> {
        let Some(ip) = client.ip else {
            return Ok(());
        };
        let policy = self.context.config().rate_limit;
        let now = self.context.now();
        let (count, window_end) = self
            .context
            .store()
            .hit(&format!("reg:{}", address_key(ip)), policy.window, now)
            .await?;
        if count > u64::from(policy.registrations) {
            return Err(CoreError::TooManyRegistrations {
                retry_after: seconds_until(now, window_end),
            });
        }
        Ok(())
    }
}
