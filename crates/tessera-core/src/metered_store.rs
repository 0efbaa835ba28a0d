//! [`MeteredStore`]: the store as the domain sees it, timed. Every store
//! operation passes through here once (Redis and the database together, as
//! one latency), so `tessera_store_operation_duration_seconds{operation}` and
//! `tessera_store_errors_total{operation, kind}` cover them all without any
//! backend knowing of metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::attempt::{Admission, Attempt};
use crate::audit::{AuditEvent, AuditRecord};
use crate::authorization_code::{AuthorizationCode, CodeRedemption};
use crate::consent::{ClientSession, Consent};
use crate::keys::StoredKey;
use crate::metrics::Metrics;
use crate::mfa::{MfaChallenge, MfaStatus, TotpFactor};
use crate::oauth_client::OAuthClient;
use crate::passkey::{Ceremony, PasskeyRecord};
use crate::revocation::{Revocation, RevocationKind};
use crate::secret::SecretHash;
use crate::session::{Session, SessionId};
use crate::store::{
    Audit, AuthorizationCodes, Ceremonies, Clients, Counters, Health, Keys, PasskeyCredentials,
    RefreshTokens, Revocations, Rotation, SecondFactors, Sessions, Store, StoreError, StoreResult,
    Users,
};
use crate::user::{User, UserRecord};

/// A store whose every operation is timed and whose failures are counted.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// `inner`, recorded into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    /// Runs `operation`, recording how long it took and whether it failed.
    /// A duplicate key is an answer (a taken username), not a failure.
    async fn timed<T>(
        &self,
        op: &'static str,
        operation: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let outcome = operation.await;
        self.metrics.store_operation(op).record(started.elapsed());
        match &outcome {
            Err(StoreError::Unavailable(_)) => self.metrics.store_error(op, "unavailable"),
            Err(StoreError::Corrupt(_)) => self.metrics.store_error(op, "corrupt"),
            Ok(_) | Err(StoreError::Duplicate) => {}
        }
        outcome
    }
}

#[async_trait]
impl Users for MeteredStore {
    async fn insert_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        self.timed("insert_user", self.inner.insert_user(user, password_hash))
            .await
    }
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        self.timed("user_by_id", self.inner.user_by_id(id)).await
    }
    async fn user_by_username(&self, normalized: &str) -> StoreResult<Option<UserRecord>> {
        self.timed("user_by_username", self.inner.user_by_username(normalized))
            .await
    }
    async fn list_users(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<User>> {
        self.timed("list_users", self.inner.list_users(after, limit))
            .await
    }
    async fn set_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.timed(
            "set_password_hash",
            self.inner.set_password_hash(id, hash, now),
        )
        .await
    }
    async fn set_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.timed("set_disabled", self.inner.set_disabled(id, disabled, now))
            .await
    }
    async fn set_roles(
        &self,
        id: Uuid,
        roles: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.timed("set_roles", self.inner.set_roles(id, roles, now))
            .await
    }
}

#[async_trait]
impl Sessions for MeteredStore {
    async fn insert_session(
        &self,
        session: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        self.timed(
            "insert_session",
            self.inner.insert_session(session, event, password_hash),
        )
        .await
    }
    async fn session_by_secret(&self, hash: &SecretHash) -> StoreResult<Option<Session>> {
        self.timed("session_by_secret", self.inner.session_by_secret(hash))
            .await
    }
    async fn session_by_id(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        self.timed("session_by_id", self.inner.session_by_id(id))
            .await
    }
    async fn stored_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        self.timed("stored_session", self.inner.stored_session(id))
            .await
    }
    async fn touch_session(&self, session: &Session) -> StoreResult<()> {
        self.timed("touch_session", self.inner.touch_session(session))
            .await
    }
    async fn delete_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        self.timed("delete_session", self.inner.delete_session(id))
            .await
    }
    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<&SessionId>,
    ) -> StoreResult<Vec<Session>> {
        self.timed(
            "delete_user_sessions",
            self.inner.delete_user_sessions(user_id, except),
        )
        .await
    }
    async fn list_user_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        self.timed(
            "list_user_sessions",
            self.inner.list_user_sessions(user_id, now),
        )
        .await
    }
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.timed(
            "delete_expired_sessions",
            self.inner.delete_expired_sessions(now),
        )
        .await
    }
}

#[async_trait]
impl RefreshTokens for MeteredStore {
    async fn insert_token_session(
        &self,
        session: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        self.timed(
            "insert_token_session",
            self.inner
                .insert_token_session(session, event, password_hash),
        )
        .await
    }
    async fn rotate_refresh(
        &self,
        presented: &SecretHash,
        new: &SecretHash,
        by: Option<Uuid>,
        now: OffsetDateTime,
        grace: time::Duration,
        idle_ttl: time::Duration,
    ) -> StoreResult<Rotation> {
        self.timed(
            "rotate_refresh",
            self.inner
                .rotate_refresh(presented, new, by, now, grace, idle_ttl),
        )
        .await
    }
    async fn session_by_refresh(&self, hash: &SecretHash) -> StoreResult<Option<(Session, bool)>> {
        self.timed("session_by_refresh", self.inner.session_by_refresh(hash))
            .await
    }
    async fn prune_refresh_tokens(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.timed(
            "prune_refresh_tokens",
            self.inner.prune_refresh_tokens(before),
        )
        .await
    }
}

#[async_trait]
impl Keys for MeteredStore {
    async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.timed("keys", self.inner.keys()).await
    }
    async fn ensure_current_key(&self, candidate: &StoredKey) -> StoreResult<()> {
        self.timed(
            "ensure_current_key",
            self.inner.ensure_current_key(candidate),
        )
        .await
    }
    async fn rotate_key(
        &self,
        new: &StoredKey,
        now: OffsetDateTime,
        retired_expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.timed(
            "rotate_key",
            self.inner.rotate_key(new, now, retired_expires_at),
        )
        .await
    }
    async fn replace_sealed_key(&self, kid: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        self.timed(
            "replace_sealed_key",
            self.inner.replace_sealed_key(kid, old, new),
        )
        .await
    }
    async fn delete_expired_keys(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.timed("delete_expired_keys", self.inner.delete_expired_keys(now))
            .await
    }
}

#[async_trait]
impl Revocations for MeteredStore {
    async fn insert_revocations(
        &self,
        entries: &[(RevocationKind, String, OffsetDateTime)],
    ) -> StoreResult<Vec<Revocation>> {
        self.timed("insert_revocations", self.inner.insert_revocations(entries))
            .await
    }
    async fn revocations_since(
        &self,
        after: i64,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<Revocation>> {
        self.timed(
            "revocations_since",
            self.inner.revocations_since(after, now, limit),
        )
        .await
    }
    async fn delete_expired_revocations(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.timed(
            "delete_expired_revocations",
            self.inner.delete_expired_revocations(now),
        )
        .await
    }
}

#[async_trait]
impl Counters for MeteredStore {
    async fn hit(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<(u64, OffsetDateTime)> {
        self.timed("hit", self.inner.hit(key, window, now)).await
    }
    async fn reserve(&self, attempt: &Attempt<'_>, now: OffsetDateTime) -> StoreResult<Admission> {
        self.timed("reserve", self.inner.reserve(attempt, now))
            .await
    }
    async fn release(
        &self,
        attempt: &Attempt<'_>,
        succeeded: bool,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        self.timed("release", self.inner.release(attempt, succeeded, now))
            .await
    }
    async fn block(
        &self,
        key: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        self.timed("block", self.inner.block(key, until, now)).await
    }
    async fn delete_expired_counters(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.timed(
            "delete_expired_counters",
            self.inner.delete_expired_counters(now),
        )
        .await
    }
}

#[async_trait]
impl Audit for MeteredStore {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.timed("append_audit", self.inner.append_audit(event))
            .await
    }
    async fn list_audit(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.timed("list_audit", self.inner.list_audit(before, limit))
            .await
    }
}

#[async_trait]
impl Health for MeteredStore {
    async fn ping(&self) -> StoreResult<()> {
        self.timed("ping", self.inner.ping()).await
    }
    async fn degraded(&self) -> Vec<&'static str> {
        self.inner.degraded().await
    }
    async fn session_storage_bytes(&self) -> StoreResult<Option<u64>> {
        self.timed("session_storage_bytes", self.inner.session_storage_bytes())
            .await
    }
}

#[async_trait]
impl Clients for MeteredStore {
    async fn insert_client(&self, client: &OAuthClient) -> StoreResult<()> {
        self.timed("insert_client", self.inner.insert_client(client))
            .await
    }
    async fn client_by_id(&self, id: Uuid) -> StoreResult<Option<OAuthClient>> {
        self.timed("client_by_id", self.inner.client_by_id(id))
            .await
    }
    async fn list_clients(&self) -> StoreResult<Vec<OAuthClient>> {
        self.timed("list_clients", self.inner.list_clients()).await
    }
    async fn delete_client(&self, id: Uuid) -> StoreResult<Option<Vec<SessionId>>> {
        self.timed("delete_client", self.inner.delete_client(id))
            .await
    }
    async fn put_consent(&self, consent: &Consent) -> StoreResult<()> {
        self.timed("put_consent", self.inner.put_consent(consent))
            .await
    }
    async fn consent(&self, user_id: Uuid, client_id: Uuid) -> StoreResult<Option<Consent>> {
        self.timed("consent", self.inner.consent(user_id, client_id))
            .await
    }
    async fn list_consents(&self, user_id: Uuid) -> StoreResult<Vec<Consent>> {
        self.timed("list_consents", self.inner.list_consents(user_id))
            .await
    }
    async fn delete_consent(
        &self,
        user_id: Uuid,
        client_id: Uuid,
    ) -> StoreResult<Option<Vec<SessionId>>> {
        self.timed(
            "delete_consent",
            self.inner.delete_consent(user_id, client_id),
        )
        .await
    }
    async fn link_client_session(
        &self,
        session_id: &SessionId,
        client_id: Uuid,
        scope: &str,
    ) -> StoreResult<()> {
        self.timed(
            "link_client_session",
            self.inner.link_client_session(session_id, client_id, scope),
        )
        .await
    }
    async fn session_client(&self, session_id: &SessionId) -> StoreResult<Option<(Uuid, String)>> {
        self.timed("session_client", self.inner.session_client(session_id))
            .await
    }
    async fn client_sessions_of_user(&self, user_id: Uuid) -> StoreResult<Vec<ClientSession>> {
        self.timed(
            "client_sessions_of_user",
            self.inner.client_sessions_of_user(user_id),
        )
        .await
    }
}

#[async_trait]
impl AuthorizationCodes for MeteredStore {
    async fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
        self.timed("insert_code", self.inner.insert_code(code))
            .await
    }
    async fn redeem_code(
        &self,
        hash: &SecretHash,
        now: OffsetDateTime,
    ) -> StoreResult<CodeRedemption> {
        self.timed("redeem_code", self.inner.redeem_code(hash, now))
            .await
    }
    async fn set_code_session(
        &self,
        hash: &SecretHash,
        session_id: &SessionId,
    ) -> StoreResult<bool> {
        self.timed(
            "set_code_session",
            self.inner.set_code_session(hash, session_id),
        )
        .await
    }
    async fn delete_expired_codes(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.timed(
            "delete_expired_codes",
            self.inner.delete_expired_codes(before),
        )
        .await
    }
}

#[async_trait]
impl PasskeyCredentials for MeteredStore {
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
        self.timed("insert_passkey", self.inner.insert_passkey(passkey))
            .await
    }
    async fn user_passkeys(&self, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        self.timed("user_passkeys", self.inner.user_passkeys(user_id))
            .await
    }
    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<PasskeyRecord>> {
        self.timed(
            "passkey_by_credential_id",
            self.inner.passkey_by_credential_id(credential_id),
        )
        .await
    }
    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        self.timed(
            "rename_passkey",
            self.inner.rename_passkey(user_id, id, name),
        )
        .await
    }
    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool> {
        self.timed("delete_passkey", self.inner.delete_passkey(user_id, id))
            .await
    }
    async fn delete_user_passkeys(&self, user_id: Uuid) -> StoreResult<u64> {
        self.timed(
            "delete_user_passkeys",
            self.inner.delete_user_passkeys(user_id),
        )
        .await
    }
    async fn record_passkey_use(
        &self,
        id: Uuid,
        credential: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.timed(
            "record_passkey_use",
            self.inner.record_passkey_use(id, credential, now),
        )
        .await
    }
}

#[async_trait]
impl Ceremonies for MeteredStore {
    async fn insert_ceremony(&self, ceremony: &Ceremony) -> StoreResult<()> {
        self.timed("insert_ceremony", self.inner.insert_ceremony(ceremony))
            .await
    }
    async fn take_ceremony(&self, id: Uuid) -> StoreResult<Option<Ceremony>> {
        self.timed("take_ceremony", self.inner.take_ceremony(id))
            .await
    }
    async fn delete_expired_ceremonies(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.timed(
            "delete_expired_ceremonies",
            self.inner.delete_expired_ceremonies(now),
        )
        .await
    }
}

#[async_trait]
impl SecondFactors for MeteredStore {
    async fn put_pending_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.timed(
            "put_pending_totp",
            self.inner.put_pending_totp(user_id, sealed_secret, now),
        )
        .await
    }
    async fn totp_factor(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>> {
        self.timed("totp_factor", self.inner.totp_factor(user_id))
            .await
    }
    async fn enable_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        step: i64,
        codes: &[SecretHash],
        event: &AuditEvent,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.timed(
            "enable_totp",
            self.inner
                .enable_totp(user_id, sealed_secret, step, codes, event, now),
        )
        .await
    }
    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool> {
        self.timed("use_totp_step", self.inner.use_totp_step(user_id, step))
            .await
    }
    async fn delete_totp(&self, user_id: Uuid) -> StoreResult<bool> {
        self.timed("delete_totp", self.inner.delete_totp(user_id))
            .await
    }
    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[SecretHash],
    ) -> StoreResult<bool> {
        self.timed(
            "replace_recovery_codes",
            self.inner.replace_recovery_codes(user_id, codes),
        )
        .await
    }
    async fn use_recovery_code(&self, user_id: Uuid, hash: &SecretHash) -> StoreResult<bool> {
        self.timed(
            "use_recovery_code",
            self.inner.use_recovery_code(user_id, hash),
        )
        .await
    }
    async fn mfa_status(&self, user_id: Uuid) -> StoreResult<MfaStatus> {
        self.timed("mfa_status", self.inner.mfa_status(user_id))
            .await
    }
    async fn insert_mfa_challenge(&self, challenge: &MfaChallenge) -> StoreResult<()> {
        self.timed(
            "insert_mfa_challenge",
            self.inner.insert_mfa_challenge(challenge),
        )
        .await
    }
    async fn mfa_challenge(&self, hash: &SecretHash) -> StoreResult<Option<MfaChallenge>> {
        self.timed("mfa_challenge", self.inner.mfa_challenge(hash))
            .await
    }
    async fn delete_mfa_challenge(&self, hash: &SecretHash) -> StoreResult<bool> {
        self.timed(
            "delete_mfa_challenge",
            self.inner.delete_mfa_challenge(hash),
        )
        .await
    }
    async fn delete_expired_mfa_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.timed(
            "delete_expired_mfa_challenges",
            self.inner.delete_expired_mfa_challenges(now),
        )
        .await
    }
    async fn mfa_statuses(&self, user_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, MfaStatus)>> {
        self.timed("mfa_statuses", self.inner.mfa_statuses(user_ids))
            .await
    }
    async fn sealed_totp_secrets(&self) -> StoreResult<Vec<(Uuid, Vec<u8>)>> {
        self.timed("sealed_totp_secrets", self.inner.sealed_totp_secrets())
            .await
    }
    async fn replace_totp_secret(
        &self,
        user_id: Uuid,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        self.timed(
            "replace_totp_secret",
            self.inner.replace_totp_secret(user_id, old, new),
        )
        .await
    }
}
