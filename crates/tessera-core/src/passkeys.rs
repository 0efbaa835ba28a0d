//! [`Passkeys`]: WebAuthn credentials — registering them on a signed-in
//! account, listing, renaming and removing them, and proving a user with
//! one (sign-in by passkey alone, or as the second factor).
//!
//! The relying party is `public_url`: its host is the RP id and its origin
//! the only origin accepted. A host that is an IP address cannot be an RP
//! id, so passkeys are then unavailable.
//!
//! Every ceremony's state lives in the store ([`crate::store::Ceremonies`]),
//! single use and for [`CEREMONY_TTL`], so any node may finish what another
//! began; a registration is bound to the user who began it.

use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

use crate::audit::AuditKind;
use crate::auth_methods::AuthMethod;
use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::metrics::SignInOutcome;
use crate::passkey::{Ceremony, CeremonyKind, PasskeyRecord, clean_name};
use crate::rate_limit::address_key;
use crate::store::StoreError;
use crate::user::{User, UserRecord};

/// How long a ceremony may take, from its options to its answer.
pub const CEREMONY_TTL: time::Duration = time::Duration::minutes(5);

/// Most passkeys one user may register.
pub const MAX_PER_USER: usize = 20;

/// Most sign-in ceremonies one address (IPv6 by /64) may begin within
/// `rate_limit.window`: each is a stored row, and nobody is signed in yet
/// to answer for them.
pub const MAX_SIGN_IN_STARTS: u64 = 100;

/// A ceremony begun: the options for `navigator.credentials.create()` or
/// `.get()`, and the id to finish it with.
#[derive(Debug, Clone)]
pub struct Started {
    /// The ceremony's id (finishing it needs it).
    pub ceremony_id: Uuid,
    /// `{"publicKey": {...}}` as the WebAuthn JSON encoding has it
    /// (binary values in base64url).
    pub options: Value,
}

/// A user proven by a passkey: what a session may be started from. Only
/// this module makes one.
#[derive(Debug)]
pub struct PasskeyProof {
    pub(crate) record: UserRecord,
    /// The passkey that proved it.
    pub passkey_id: Uuid,
}

impl PasskeyProof {
    /// The proven user.
    pub fn user(&self) -> &User {
        &self.record.user
    }
}

/// Passkeys.
pub struct Passkeys {
    context: Arc<Context>,
    /// `None` when `public_url` cannot be a relying party.
    webauthn: Option<Webauthn>,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("available", &self.webauthn.is_some())
            .finish_non_exhaustive()
    }
}

/// The relying party of `public_url`: its host as RP id, its origin as the
/// one origin; `None` for a URL whose host is not a domain name.
fn relying_party(public_url: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let rp_id = url.domain()?.to_owned();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&rp_id, &origin)
        .ok()?
        .timeout(std::time::Duration::from_secs(
            u64::try_from(CEREMONY_TTL.whole_seconds()).unwrap_or(300),
        ))
        .build()
        .ok()
}

/// A malformed browser answer (400), with the parser's reason.
fn malformed(e: serde_json::Error) -> CoreError {
    CoreError::PasskeyRefused(format!("the credential is malformed: {e}"))
}

/// Stored state that no longer reads back.
fn corrupt(what: &str, e: serde_json::Error) -> CoreError {
    CoreError::Store(StoreError::Corrupt(format!("{what}: {e}")))
}

impl Passkeys {
    /// Passkeys over `context`, with `public_url` (the token issuer) as
    /// the relying party.
    pub fn new(context: Arc<Context>) -> Self {
        let webauthn = relying_party(&context.config().tokens.issuer);
        if webauthn.is_none() {
            tracing::info!(
                "passkeys are unavailable: public_url's host is not a domain name (WebAuthn needs one, e.g. localhost)"
            );
        }
        Self { context, webauthn }
    }

    /// Whether passkeys can be used on this server.
    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&Webauthn, CoreError> {
        self.webauthn.as_ref().ok_or(CoreError::PasskeysUnavailable)
    }

    /// The user's passkeys, oldest first.
    pub async fn list(&self, user_id: Uuid) -> Result<Vec<PasskeyRecord>, CoreError> {
        Ok(self.context.store().user_passkeys(user_id).await?)
    }

    /// Begins adding a passkey to `user`'s account. The authenticator is
    /// asked for a discoverable credential with user verification (so it
    /// can sign in alone), and none the user has already.
    pub async fn start_registration(&self, user: &User) -> Result<Started, CoreError> {
        let webauthn = self.webauthn()?;
        let existing = self.list(user.id).await?;
        if existing.len() >= MAX_PER_USER {
            return Err(CoreError::PasskeyRefused(format!(
                "an account holds at most {MAX_PER_USER} passkeys: remove one first"
            )));
        }
        let exclude = existing.into_iter().map(|p| p.credential_id).collect();
        let name = user.username.display();
        let (options, state) = webauthn
            .start_passkey_registration(user.id, name, name, Some(exclude))
            .map_err(|e| CoreError::Internal(format!("passkey registration options: {e}")))?;
        let mut options = serde_json::to_value(options)
            .map_err(|e| CoreError::Internal(format!("passkey options: {e}")))?;
        // A passkey that cannot name its user cannot sign in alone.
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = json!("required");
            selection["requireResidentKey"] = json!(true);
        }
        let state = serde_json::to_string(&state)
            .map_err(|e| CoreError::Internal(format!("passkey state: {e}")))?;
        let ceremony_id = self
            .begin(CeremonyKind::Registration, Some(user.id), state)
            .await?;
        Ok(Started {
            ceremony_id,
            options,
        })
    }

    /// Finishes adding a passkey named `name` to `user`'s account with the
    /// browser's answer (`navigator.credentials.create()`'s, as JSON).
    pub async fn finish_registration(
        &self,
        user: &User,
        ceremony_id: Uuid,
        name: &str,
        credential: Value,
        client: &ClientInfo,
    ) -> Result<PasskeyRecord, CoreError> {
        let webauthn = self.webauthn()?;
        let name = clean_name(name).ok_or_else(|| {
            CoreError::PasskeyRefused(format!(
                "a passkey's name has 1 to {} characters, none of them control characters",
                crate::passkey::MAX_NAME_CHARS
            ))
        })?;
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(credential).map_err(malformed)?;
        let ceremony = self
            .take(ceremony_id, CeremonyKind::Registration, Some(user.id))
            .await
            .map_err(|e| match e {
                CoreError::PasskeyNotAccepted => CoreError::PasskeyRefused(
                    "the registration expired or was finished: start again".into(),
                ),
                other => other,
            })?;
        let state: PasskeyRegistration = serde_json::from_str(&ceremony.state)
            .map_err(|e| corrupt("passkey registration", e))?;
        let passkey = webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| CoreError::PasskeyRefused(format!("the passkey was not accepted: {e}")))?;
        let now = self.context.now();
        let record = PasskeyRecord {
            id: Uuid::new_v4(),
            user_id: user.id,
            credential_id: passkey.cred_id().to_vec(),
            name,
            credential: serde_json::to_string(&passkey)
                .map_err(|e| CoreError::Internal(format!("passkey: {e}")))?,
            created_at: now,
            last_used_at: None,
        };
        match self.context.store().insert_passkey(&record).await {
            Err(StoreError::Duplicate) => {
                return Err(CoreError::PasskeyRefused(
                    "this passkey is registered already".into(),
                ));
            }
            other => other?,
        }
        self.context
            .audit(
                AuditKind::PasskeyAdded,
                Some(user.id),
                client,
                json!({ "passkey_id": record.id, "name": record.name }),
            )
            .await?;
        Ok(record)
    }

    /// Renames passkey `id` of `user_id`; [`CoreError::NotFound`] if the
    /// user has none such.
    pub async fn rename(&self, user_id: Uuid, id: Uuid, name: &str) -> Result<(), CoreError> {
        let name = clean_name(name).ok_or_else(|| {
            CoreError::PasskeyRefused(format!(
                "a passkey's name has 1 to {} characters, none of them control characters",
                crate::passkey::MAX_NAME_CHARS
            ))
        })?;
        if !self
            .context
            .store()
            .rename_passkey(user_id, id, &name)
            .await?
        {
            return Err(CoreError::NotFound);
        }
        Ok(())
    }

    /// Removes passkey `id` of `user_id` (audited); [`CoreError::NotFound`]
    /// if the user has none such. Sessions it signed in stay: a session is
    /// ended from the session list.
    pub async fn remove(
        &self,
        user_id: Uuid,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        if !self.context.store().delete_passkey(user_id, id).await? {
            return Err(CoreError::NotFound);
        }
        self.context
            .audit(
                AuditKind::PasskeyRemoved,
                Some(user_id),
                client,
                json!({ "passkey_id": id }),
            )
            .await
    }

    /// Removes every passkey of `user_id` (an administrator's second-factor
    /// reset), audited with `by`; how many went.
    pub async fn remove_all(
        &self,
        user_id: Uuid,
        client: &ClientInfo,
        by: &str,
    ) -> Result<u64, CoreError> {
        let removed = self.context.store().delete_user_passkeys(user_id).await?;
        if removed > 0 {
            self.context
                .audit(
                    AuditKind::PasskeyRemoved,
                    Some(user_id),
                    client,
                    json!({ "all": true, "removed": removed, "by": by }),
                )
                .await?;
        }
        Ok(removed)
    }

    /// Begins a sign-in by passkey alone: the authenticator offers the
    /// discoverable credentials it holds for this site, and its answer names
    /// the user. Nothing about any user is in the options.
    pub async fn start_sign_in(&self, client: &ClientInfo) -> Result<Started, CoreError> {
        let webauthn = self.webauthn()?;
        if let Some(ip) = client.ip {
            let now = self.context.now();
            let window = self.context.config().rate_limit.window;
            let (count, window_end) = self
                .context
                .store()
                .hit(&format!("pk:{}", address_key(ip)), window, now)
                .await?;
            if count > MAX_SIGN_IN_STARTS {
                return Err(CoreError::RateLimited {
                    retry_after: u64::try_from((window_end - now).whole_seconds().max(1))
                        .unwrap_or(1),
                });
            }
        }
        let (mut options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| CoreError::Internal(format!("passkey sign-in options: {e}")))?;
        // A button the user presses, not the autofill (conditional) prompt.
        options.mediation = None;
        let options = serde_json::to_value(options)
            .map_err(|e| CoreError::Internal(format!("passkey options: {e}")))?;
        let state = serde_json::to_string(&state)
            .map_err(|e| CoreError::Internal(format!("passkey state: {e}")))?;
        let ceremony_id = self.begin(CeremonyKind::SignIn, None, state).await?;
        Ok(Started {
            ceremony_id,
            options,
        })
    }

    /// Finishes a sign-in by passkey alone with the browser's answer
    /// (`navigator.credentials.get()`'s, as JSON). Every refusal after the
    /// answer is read is the same [`CoreError::PasskeyNotAccepted`]. Counted
    /// in `tessera_sign_ins_total` as a password sign-in is (`ok`, or
    /// `wrong_credentials` for a refusal).
    pub async fn finish_sign_in(
        &self,
        ceremony_id: Uuid,
        credential: Value,
        client: &ClientInfo,
    ) -> Result<PasskeyProof, CoreError> {
        let outcome = self.check_sign_in(ceremony_id, credential, client).await;
        match &outcome {
            Ok(_) => self.context.metrics().sign_in(SignInOutcome::Ok),
            Err(CoreError::PasskeyNotAccepted) => self
                .context
                .metrics()
                .sign_in(SignInOutcome::WrongCredentials),
            Err(_) => {}
        }
        outcome
    }

    async fn check_sign_in(
        &self,
        ceremony_id: Uuid,
        credential: Value,
        client: &ClientInfo,
    ) -> Result<PasskeyProof, CoreError> {
        let webauthn = self.webauthn()?;
        let credential: PublicKeyCredential =
            serde_json::from_value(credential).map_err(malformed)?;
        let ceremony = self.take(ceremony_id, CeremonyKind::SignIn, None).await?;
        let state: DiscoverableAuthentication =
            serde_json::from_str(&ceremony.state).map_err(|e| corrupt("passkey sign-in", e))?;
        let refused = |user_id: Option<Uuid>, reason: &'static str| async move {
            self.refused(user_id, client, reason).await
        };
        let Ok((user_handle, credential_id)) =
            webauthn.identify_discoverable_authentication(&credential)
        else {
            return Err(refused(None, "no_user_handle").await);
        };
        let Some(record) = self
            .context
            .store()
            .passkey_by_credential_id(credential_id)
            .await?
        else {
            return Err(refused(None, "unknown_passkey").await);
        };
        // The authenticator's user handle must name the passkey's owner: a
        // credential answered under another user's handle is refused.
        if record.user_id != user_handle {
            return Err(refused(Some(record.user_id), "user_handle_mismatch").await);
        }
        let mut passkey: Passkey =
            serde_json::from_str(&record.credential).map_err(|e| corrupt("passkey", e))?;
        let result =
            match webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey) {
                Ok(result) if result.user_verified() => result,
                Ok(_) => return Err(refused(Some(record.user_id), "not_user_verified").await),
                Err(e) => {
                    tracing::debug!(error = %e, "passkey assertion refused");
                    return Err(refused(Some(record.user_id), "assertion_refused").await);
                }
            };
        self.proven(record, &mut passkey, &result, client).await
    }

    /// Begins proving `user_id`'s second factor with one of their passkeys
    /// (the password was checked already). `None` when they have none.
    pub(crate) async fn start_second_factor(
        &self,
        user_id: Uuid,
    ) -> Result<Option<Started>, CoreError> {
        let webauthn = self.webauthn()?;
        let passkeys = self
            .list(user_id)
            .await?
            .iter()
            .map(|r| serde_json::from_str::<Passkey>(&r.credential))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt("passkey", e))?;
        if passkeys.is_empty() {
            return Ok(None);
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| CoreError::Internal(format!("passkey options: {e}")))?;
        let options = serde_json::to_value(options)
            .map_err(|e| CoreError::Internal(format!("passkey options: {e}")))?;
        let state = serde_json::to_string(&state)
            .map_err(|e| CoreError::Internal(format!("passkey state: {e}")))?;
        let ceremony_id = self
            .begin(CeremonyKind::SecondFactor, Some(user_id), state)
            .await?;
        Ok(Some(Started {
            ceremony_id,
            options,
        }))
    }

    /// Finishes proving `user_id`'s second factor: the answer must come
    /// from one of that user's passkeys, for the ceremony begun for them.
    async fn finish_second_factor(
        &self,
        user_id: Uuid,
        ceremony_id: Uuid,
        credential: Value,
        client: &ClientInfo,
    ) -> Result<PasskeyProof, CoreError> {
        let webauthn = self.webauthn()?;
        let credential: PublicKeyCredential =
            serde_json::from_value(credential).map_err(malformed)?;
        let ceremony = self
            .take(ceremony_id, CeremonyKind::SecondFactor, Some(user_id))
            .await?;
        let state: PasskeyAuthentication =
            serde_json::from_str(&ceremony.state).map_err(|e| corrupt("passkey assertion", e))?;
        let record = self
            .context
            .store()
            .passkey_by_credential_id(credential.get_credential_id())
            .await?
            .filter(|r| r.user_id == user_id);
        let Some(record) = record else {
            tracing::debug!("second factor: not one of the user's passkeys");
            return Err(CoreError::PasskeyNotAccepted);
        };
        let mut passkey: Passkey =
            serde_json::from_str(&record.credential).map_err(|e| corrupt("passkey", e))?;
        let result = match webauthn.finish_passkey_authentication(&credential, &state) {
            Ok(result) if result.user_verified() => result,
            Ok(_) => {
                return Err(self
                    .refused(Some(user_id), client, "not_user_verified")
                    .await);
            }
            Err(e) => {
                tracing::debug!(error = %e, "passkey assertion refused");
                return Err(self
                    .refused(Some(user_id), client, "assertion_refused")
                    .await);
            }
        };
        if result.cred_id().as_slice() != record.credential_id.as_slice() {
            tracing::debug!("second factor: not one of the user's passkeys");
            return Err(CoreError::PasskeyNotAccepted);
        }
        self.proven(record, &mut passkey, &result, client).await
    }

    /// A passkey answer as the second factor of `user`'s sign-in: the
    /// method it proves when right, `None` when refused (the caller counts
    /// and audits it as a wrong code); a malformed answer is an error.
    pub(crate) async fn verify_second_factor(
        &self,
        user: &User,
        ceremony_id: Uuid,
        credential: Value,
        client: &ClientInfo,
    ) -> Result<Option<AuthMethod>, CoreError> {
        match self
            .finish_second_factor(user.id, ceremony_id, credential, client)
            .await
        {
            Ok(_) => Ok(Some(AuthMethod::HardwareKey)),
            Err(CoreError::PasskeyNotAccepted) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records a passkey's use (counter, backup flags, when) and answers
    /// its user, if they may still sign in.
    async fn proven(
        &self,
        record: PasskeyRecord,
        passkey: &mut Passkey,
        result: &webauthn_rs::prelude::AuthenticationResult,
        client: &ClientInfo,
    ) -> Result<PasskeyProof, CoreError> {
        let store = self.context.store();
        passkey.update_credential(result);
        let updated = serde_json::to_string(&*passkey)
            .map_err(|e| CoreError::Internal(format!("passkey: {e}")))?;
        if !store
            .record_passkey_use(record.id, &updated, self.context.now())
            .await?
        {
            // Removed while the ceremony ran.
            return Err(self
                .refused(Some(record.user_id), client, "passkey_removed")
                .await);
        }
        match store.user_by_id(record.user_id).await? {
            Some(user) if !user.user.disabled => Ok(PasskeyProof {
                record: user,
                passkey_id: record.id,
            }),
            _ => Err(self.refused(Some(record.user_id), client, "disabled").await),
        }
    }

    /// Audits a refused passkey answer; the error to give, the same for
    /// every reason.
    async fn refused(
        &self,
        user_id: Option<Uuid>,
        client: &ClientInfo,
        reason: &'static str,
    ) -> CoreError {
        if let Err(e) = self
            .context
            .audit(
                AuditKind::SignInFailed,
                user_id,
                client,
                json!({ "method": "passkey", "reason": reason }),
            )
            .await
        {
            return e;
        }
        CoreError::PasskeyNotAccepted
    }

    /// Stores a new ceremony; its id.
    async fn begin(
        &self,
        kind: CeremonyKind,
        user_id: Option<Uuid>,
        state: String,
    ) -> Result<Uuid, CoreError> {
        let ceremony = Ceremony {
            id: Uuid::new_v4(),
            kind,
            user_id,
            state,
            expires_at: self.context.now() + CEREMONY_TTL,
        };
        self.context.store().insert_ceremony(&ceremony).await?;
        Ok(ceremony.id)
    }

    /// Takes ceremony `id` (it is gone afterwards, whatever follows) if it
    /// is of `kind`, for `user_id`, and not expired;
    /// [`CoreError::PasskeyNotAccepted`] otherwise.
    async fn take(
        &self,
        id: Uuid,
        kind: CeremonyKind,
        user_id: Option<Uuid>,
    ) -> Result<Ceremony, CoreError> {
        let now: OffsetDateTime = self.context.now();
        match self.context.store().take_ceremony(id).await? {
            Some(c) if c.kind == kind && c.user_id == user_id && c.expires_at > now => Ok(c),
            _ => Err(CoreError::PasskeyNotAccepted),
        }
    }
}
