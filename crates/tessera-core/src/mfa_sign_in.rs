//! [`MfaSignIn`]: the step between a right password and a session when the
//! user has a second factor. The password step leaves a challenge (an
//! opaque `mfa_token`, stored by hash, bound to the user, the client's
//! address, the password hash checked, the carrier and five minutes); the
//! second step presents it with a proof of the second factor, which counts
//! against the sign-in limits like a password, and spends it.
//!
//! Whatever the proof (a TOTP or recovery code, or a passkey assertion),
//! completing is [`MfaSignIn::complete`].

use std::future::Future;
use std::sync::Arc;

use crate::auth_methods::{AuthMethod, AuthMethods};
use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::mfa::{CHALLENGE_TTL, MfaChallenge, MfaNext, MfaStatus};
use crate::mfa_factors::MfaFactors;
use crate::passkeys::{Passkeys, Started};
use crate::secret::{Secret, SecretHash, SecretKind, sha256};
use crate::session::SessionKind;
use crate::sign_in_guard::SignInGuard;
use crate::user::{User, UserRecord};

/// A sign-in whose second factor was right: what the session is made of.
#[derive(Debug)]
pub struct Completed {
    /// The user and the password hash in force (the session's condition).
    pub record: UserRecord,
    /// Everything proven: the password's and the second factor's methods.
    pub amr: AuthMethods,
    /// What the sign-in makes.
    pub next: MfaNext,
}

/// Sign-ins waiting for a second factor.
#[derive(Debug)]
pub struct MfaSignIn {
    context: Arc<Context>,
    guard: Arc<SignInGuard>,
    factors: Arc<MfaFactors>,
    passkeys: Arc<Passkeys>,
}

/// What a password hash is remembered as in a challenge.
fn fingerprint(password_hash: &str) -> SecretHash {
    SecretHash::from_bytes(sha256(password_hash.as_bytes()))
}

impl MfaSignIn {
    /// Challenges over `context`; proofs counted by `guard`, codes checked
    /// by `factors`, passkey assertions by `passkeys`.
    pub fn new(
        context: Arc<Context>,
        guard: Arc<SignInGuard>,
        factors: Arc<MfaFactors>,
        passkeys: Arc<Passkeys>,
    ) -> Self {
        Self {
            context,
            guard,
            factors,
            passkeys,
        }
    }

    /// Begins a passkey ceremony for the user of `token` (live, from this
    /// address; not spent): the request options for their passkeys.
    /// [`CoreError::InvalidMfaToken`] for a token that could not complete,
    /// and for a user without passkeys (nothing to ask for).
    pub async fn start_passkey(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<Started, CoreError> {
        let challenge = self.pending(token, client).await?;
        self.passkeys
            .start_second_factor(challenge.user_id)
            .await?
            .ok_or(CoreError::InvalidMfaToken)
    }

    /// The second factors the user of `token` (live, from this address;
    /// not spent) may finish with: what the sign-in's second step offers.
    pub async fn factors(&self, token: &str, client: &ClientInfo) -> Result<MfaStatus, CoreError> {
        let challenge = self.pending(token, client).await?;
        Ok(self.context.store().mfa_status(challenge.user_id).await?)
    }

    /// The challenge of `token` if it is live and from this address.
    async fn pending(&self, token: &str, client: &ClientInfo) -> Result<MfaChallenge, CoreError> {
        let token = Secret::parse(SecretKind::MfaToken, token).ok_or(CoreError::InvalidMfaToken)?;
        self.context
            .store()
            .mfa_challenge(&token.hash())
            .await?
            .filter(|c| self.context.now() < c.expires_at && c.ip == client.ip)
            .ok_or(CoreError::InvalidMfaToken)
    }

    /// Completes the sign-in of `token` on carrier `kind` with the answer
    /// to the passkey ceremony `ceremony_id` (begun by
    /// [`Self::start_passkey`]); a refused answer counts as a wrong code.
    pub async fn complete_with_passkey(
        &self,
        token: &str,
        kind: SessionKind,
        ceremony_id: uuid::Uuid,
        credential: serde_json::Value,
        client: &ClientInfo,
    ) -> Result<Completed, CoreError> {
        let passkeys = &self.passkeys;
        self.complete(token, kind, client, |user| async move {
            passkeys
                .verify_second_factor(&user, ceremony_id, credential, client)
                .await
        })
        .await
    }

    /// After a right password (`amr`) of `user`, whose hash in force is
    /// `password_hash`: a challenge for `next`; its token, to hand to the
    /// client once.
    pub(crate) async fn challenge(
        &self,
        user: &User,
        password_hash: &str,
        amr: AuthMethods,
        next: MfaNext,
        client: &ClientInfo,
    ) -> Result<Secret, CoreError> {
        let token = Secret::generate(SecretKind::MfaToken)?;
        let now = self.context.now();
        self.context
            .store()
            .insert_mfa_challenge(&MfaChallenge {
                token_hash: token.hash(),
                user_id: user.id,
                ip: client.ip,
                amr,
                next,
                password_fingerprint: fingerprint(password_hash),
                created_at: now,
                expires_at: now + CHALLENGE_TTL,
            })
            .await?;
        Ok(token)
    }

    /// Completes the sign-in of `token` on carrier `kind` with a code (TOTP
    /// or recovery) typed in one field.
    pub(crate) async fn complete_with_code(
        &self,
        token: &str,
        kind: SessionKind,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Completed, CoreError> {
        let factors = &self.factors;
        self.complete(token, kind, client, |user| async move {
            factors.verify(&user, code, client).await
        })
        .await
    }

    /// Completes the sign-in of `token` on carrier `kind`: the challenge
    /// must be live, from this client's address, for this carrier, and its
    /// user enabled with the same password (else
    /// [`CoreError::InvalidMfaToken`], one answer for all); then `proof`
    /// checks the second factor (`Some(method)`: right, and spent), counted
    /// against the sign-in limits ([`CoreError::RateLimited`] before it
    /// runs once they are reached, [`CoreError::InvalidCode`] when wrong;
    /// the token stays usable until it expires). A right proof spends the
    /// token: of two completions, one goes on.
    pub async fn complete<F, Fut>(
        &self,
        token: &str,
        kind: SessionKind,
        client: &ClientInfo,
        proof: F,
    ) -> Result<Completed, CoreError>
    where
        F: FnOnce(User) -> Fut,
        Fut: Future<Output = Result<Option<AuthMethod>, CoreError>>,
    {
        let store = self.context.store();
        let token = Secret::parse(SecretKind::MfaToken, token).ok_or(CoreError::InvalidMfaToken)?;
        let hash = token.hash();
        let challenge = store
            .mfa_challenge(&hash)
            .await?
            .ok_or(CoreError::InvalidMfaToken)?;
        if self.context.now() >= challenge.expires_at
            || challenge.ip != client.ip
            || challenge.next.kind() != kind
        {
            return Err(CoreError::InvalidMfaToken);
        }
        let record = store
            .user_by_id(challenge.user_id)
            .await?
            .filter(|r| {
                !r.user.disabled
                    && fingerprint(&r.password_hash).ct_eq(&challenge.password_fingerprint)
            })
            .ok_or(CoreError::InvalidMfaToken)?;
        let mut method = None;
        self.guard
            .check_code(&record.user, client, "sign_in", async {
                method = proof(record.user.clone()).await?;
                Ok::<bool, CoreError>(method.is_some())
            })
            .await?;
        let method = method.ok_or(CoreError::InvalidCode)?;
        if !store.delete_mfa_challenge(&hash).await? {
            // Completed by a parallel request meanwhile.
            return Err(CoreError::InvalidMfaToken);
        }
        self.context
            .metrics()
            .sign_in(crate::metrics::SignInOutcome::Ok);
        Ok(Completed {
            amr: challenge.amr.with(method),
            next: challenge.next,
            record,
        })
    }
}
