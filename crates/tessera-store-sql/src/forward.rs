//! The store traits for a dialect's store type, forwarded to its
//! [`crate::SqlStore`]. The traits belong to `tessera-core` and the store
//! type to its dialect crate, so a blanket impl here is not possible: the
//! forwarding is written once, as a macro.

/// Implements every store trait of `tessera_core::store` for `$store`, and
/// [`crate::BulkLoad`], forwarding to its [`crate::SqlStore`] field `$field`.
#[macro_export]
macro_rules! forward_store_traits {
    ($store:ty => $field:ident) => {
        const _: () = {
            use $crate::__private::*;

            #[async_trait]
            impl Users for $store {
                async fn insert_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
                    self.$field.insert_user(user, password_hash).await
                }
                async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
                    self.$field.user_by_id(id).await
                }
                async fn user_by_username(
                    &self,
                    normalized: &str,
                ) -> StoreResult<Option<UserRecord>> {
                    self.$field.user_by_username(normalized).await
                }
                async fn list_users(
                    &self,
                    after: Option<&str>,
                    limit: u32,
                ) -> StoreResult<Vec<User>> {
                    self.$field.list_users(after, limit).await
                }
                async fn set_password_hash(
                    &self,
                    id: Uuid,
                    hash: &str,
                    now: OffsetDateTime,
                ) -> StoreResult<bool> {
                    self.$field.set_password_hash(id, hash, now).await
                }
                async fn set_disabled(
                    &self,
                    id: Uuid,
                    disabled: bool,
                    now: OffsetDateTime,
                ) -> StoreResult<bool> {
                    self.$field.set_disabled(id, disabled, now).await
                }
                async fn set_roles(
                    &self,
                    id: Uuid,
                    roles: &[String],
                    now: OffsetDateTime,
                ) -> StoreResult<bool> {
                    self.$field.set_roles(id, roles, now).await
                }
            }

            #[async_trait]
            impl Sessions for $store {
                async fn insert_session(
                    &self,
                    session: &Session,
                    event: &AuditEvent,
                    password_hash: &str,
                ) -> StoreResult<bool> {
                    self.$field
                        .insert_session(session, event, password_hash)
                        .await
                }
                async fn session_by_secret(
                    &self,
                    hash: &SecretHash,
                ) -> StoreResult<Option<Session>> {
                    self.$field.session_by_secret(hash).await
                }
                async fn session_by_id(&self, id: &SessionId) -> StoreResult<Option<Session>> {
                    self.$field.session_by_id(id).await
                }
                async fn stored_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
                    // No cache here: the store's answer is the stored session.
                    self.$field.session_by_id(id).await
                }
                async fn touch_session(&self, session: &Session) -> StoreResult<()> {
                    self.$field.touch_session(session).await
                }
                async fn delete_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
                    self.$field.delete_session(id).await
                }
                async fn delete_user_sessions(
                    &self,
                    user_id: Uuid,
                    except: Option<&SessionId>,
                ) -> StoreResult<Vec<Session>> {
                    self.$field.delete_user_sessions(user_id, except).await
                }
                async fn list_user_sessions(
                    &self,
                    user_id: Uuid,
                    now: OffsetDateTime,
                ) -> StoreResult<Vec<Session>> {
                    self.$field.list_user_sessions(user_id, now).await
                }
                async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
                    self.$field.delete_expired_sessions(now).await
                }
            }

            #[async_trait]
            impl RefreshTokens for $store {
                async fn insert_token_session(
                    &self,
                    session: &Session,
                    event: &AuditEvent,
                    password_hash: &str,
                ) -> StoreResult<bool> {
                    self.$field
                        .insert_token_session(session, event, password_hash)
                        .await
                }
                async fn rotate_refresh(
                    &self,
                    presented: &SecretHash,
                    new: &SecretHash,
                    by: Option<Uuid>,
                    now: OffsetDateTime,
                    grace: Duration,
                    idle_ttl: Duration,
                ) -> StoreResult<Rotation> {
                    self.$field
                        .rotate_refresh(presented, new, by, now, grace, idle_ttl)
                        .await
                }
                async fn session_by_refresh(
                    &self,
                    hash: &SecretHash,
                ) -> StoreResult<Option<(Session, bool)>> {
                    self.$field.session_by_refresh(hash).await
                }
                async fn prune_refresh_tokens(&self, before: OffsetDateTime) -> StoreResult<u64> {
                    self.$field.prune_refresh_tokens(before).await
                }
            }

            #[async_trait]
            impl Keys for $store {
                async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
                    self.$field.keys().await
                }
                async fn ensure_current_key(&self, candidate: &StoredKey) -> StoreResult<()> {
                    self.$field.ensure_current_key(candidate).await
                }
                async fn rotate_key(
                    &self,
                    new: &StoredKey,
                    now: OffsetDateTime,
                    retired_expires_at: OffsetDateTime,
                ) -> StoreResult<()> {
                    self.$field.rotate_key(new, now, retired_expires_at).await
                }
                async fn replace_sealed_key(
                    &self,
                    kid: &str,
                    old: &[u8],
                    new: &[u8],
                ) -> StoreResult<bool> {
                    self.$field.replace_sealed_key(kid, old, new).await
                }
                async fn delete_expired_keys(&self, now: OffsetDateTime) -> StoreResult<u64> {
                    self.$field.delete_expired_keys(now).await
                }
            }

            #[async_trait]
            impl Revocations for $store {
                async fn insert_revocations(
                    &self,
                    entries: &[(RevocationKind, String, OffsetDateTime)],
                ) -> StoreResult<Vec<Revocation>> {
                    self.$field.insert_revocations(entries).await
                }
                async fn revocations_since(
                    &self,
                    after: i64,
                    now: OffsetDateTime,
                    limit: u32,
                ) -> StoreResult<Vec<Revocation>> {
                    self.$field.revocations_since(after, now, limit).await
                }
                async fn delete_expired_revocations(
                    &self,
                    now: OffsetDateTime,
                ) -> StoreResult<u64> {
                    self.$field.delete_expired_revocations(now).await
                }
            }

            #[async_trait]
            impl Counters for $store {
                async fn hit(
                    &self,
                    key: &str,
                    window: Duration,
                    now: OffsetDateTime,
                ) -> StoreResult<(u64, OffsetDateTime)> {
                    self.$field.hit(key, window, now).await
                }
                async fn reserve(
                    &self,
                    attempt: &Attempt<'_>,
                    now: OffsetDateTime,
                ) -> StoreResult<Admission> {
                    self.$field.reserve(attempt, now).await
                }
                async fn release(
                    &self,
                    attempt: &Attempt<'_>,
                    succeeded: bool,
                    _now: OffsetDateTime,
                ) -> StoreResult<()> {
                    self.$field.release(attempt, succeeded).await
                }
                async fn block(
                    &self,
                    key: &str,
                    until: OffsetDateTime,
                    _now: OffsetDateTime,
                ) -> StoreResult<()> {
                    self.$field.block(key, until).await
                }
                async fn delete_expired_counters(&self, now: OffsetDateTime) -> StoreResult<u64> {
                    self.$field.delete_expired_counters(now).await
                }
            }

            #[async_trait]
            impl Audit for $store {
                async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
                    self.$field.append_audit(event).await
                }
                async fn list_audit(
                    &self,
                    before: Option<i64>,
                    limit: u32,
                ) -> StoreResult<Vec<AuditRecord>> {
                    self.$field.list_audit(before, limit).await
                }
            }

            #[async_trait]
            impl Health for $store {
                async fn ping(&self) -> StoreResult<()> {
                    self.$field.ping().await
                }
                async fn session_storage_bytes(&self) -> StoreResult<Option<u64>> {
                    self.$field.session_storage_bytes().await
                }
            }
            #[async_trait]
            impl Clients for $store {
                async fn insert_client(&self, client: &OAuthClient) -> StoreResult<()> {
                    self.$field.insert_client(client).await
                }
                async fn client_by_id(&self, id: Uuid) -> StoreResult<Option<OAuthClient>> {
                    self.$field.client_by_id(id).await
                }
                async fn list_clients(&self) -> StoreResult<Vec<OAuthClient>> {
                    self.$field.list_clients().await
                }
                async fn delete_client(&self, id: Uuid) -> StoreResult<Option<Vec<SessionId>>> {
                    self.$field.delete_client(id).await
                }
                async fn put_consent(&self, consent: &Consent) -> StoreResult<()> {
                    self.$field.put_consent(consent).await
                }
                async fn consent(
                    &self,
                    user_id: Uuid,
                    client_id: Uuid,
                ) -> StoreResult<Option<Consent>> {
                    self.$field.consent(user_id, client_id).await
                }
                async fn list_consents(&self, user_id: Uuid) -> StoreResult<Vec<Consent>> {
                    self.$field.list_consents(user_id).await
                }
                async fn delete_consent(
                    &self,
                    user_id: Uuid,
                    client_id: Uuid,
                ) -> StoreResult<Option<Vec<SessionId>>> {
                    self.$field.delete_consent(user_id, client_id).await
                }
                async fn link_client_session(
                    &self,
                    session_id: &SessionId,
                    client_id: Uuid,
                    scope: &str,
                ) -> StoreResult<()> {
                    self.$field
                        .link_client_session(session_id, client_id, scope)
                        .await
                }
                async fn session_client(
                    &self,
                    session_id: &SessionId,
                ) -> StoreResult<Option<(Uuid, String)>> {
                    self.$field.session_client(session_id).await
                }
                async fn client_sessions_of_user(
                    &self,
                    user_id: Uuid,
                ) -> StoreResult<Vec<ClientSession>> {
                    self.$field.client_sessions_of_user(user_id).await
                }
            }

            #[async_trait]
            impl AuthorizationCodes for $store {
                async fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
                    self.$field.insert_code(code).await
                }
                async fn redeem_code(
                    &self,
                    hash: &SecretHash,
                    now: OffsetDateTime,
                ) -> StoreResult<CodeRedemption> {
                    self.$field.redeem_code(hash, now).await
                }
                async fn set_code_session(
                    &self,
                    hash: &SecretHash,
                    session_id: &SessionId,
                ) -> StoreResult<bool> {
                    self.$field.set_code_session(hash, session_id).await
                }
                async fn delete_expired_codes(&self, before: OffsetDateTime) -> StoreResult<u64> {
                    self.$field.delete_expired_codes(before).await
                }
            }

            #[async_trait]
            impl PasskeyCredentials for $store {
                async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
                    self.$field.insert_passkey(passkey).await
                }
                async fn user_passkeys(&self, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
                    self.$field.user_passkeys(user_id).await
                }
                async fn passkey_by_credential_id(
                    &self,
                    credential_id: &[u8],
                ) -> StoreResult<Option<PasskeyRecord>> {
                    self.$field.passkey_by_credential_id(credential_id).await
                }
                async fn rename_passkey(
                    &self,
                    user_id: Uuid,
                    id: Uuid,
                    name: &str,
                ) -> StoreResult<bool> {
                    self.$field.rename_passkey(user_id, id, name).await
                }
                async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool> {
                    self.$field.delete_passkey(user_id, id).await
                }
                async fn delete_user_passkeys(&self, user_id: Uuid) -> StoreResult<u64> {
                    self.$field.delete_user_passkeys(user_id).await
                }
                async fn record_passkey_use(
                    &self,
                    id: Uuid,
                    credential: &str,
                    now: OffsetDateTime,
                ) -> StoreResult<bool> {
                    self.$field.record_passkey_use(id, credential, now).await
                }
            }

            #[async_trait]
            impl Ceremonies for $store {
                async fn insert_ceremony(&self, ceremony: &Ceremony) -> StoreResult<()> {
                    self.$field.insert_ceremony(ceremony).await
                }
                async fn take_ceremony(&self, id: Uuid) -> StoreResult<Option<Ceremony>> {
                    self.$field.take_ceremony(id).await
                }
                async fn delete_expired_ceremonies(&self, now: OffsetDateTime) -> StoreResult<u64> {
                    self.$field.delete_expired_ceremonies(now).await
                }
            }

            #[async_trait]
            impl SecondFactors for $store {
                async fn put_pending_totp(
                    &self,
                    user_id: Uuid,
                    sealed_secret: &[u8],
                    now: OffsetDateTime,
                ) -> StoreResult<bool> {
                    self.$field
                        .put_pending_totp(user_id, sealed_secret, now)
                        .await
                }
                async fn totp_factor(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>> {
                    self.$field.totp_factor(user_id).await
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
                    self.$field
                        .enable_totp(user_id, sealed_secret, step, codes, event, now)
                        .await
                }
                async fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool> {
                    self.$field.use_totp_step(user_id, step).await
                }
                async fn delete_totp(&self, user_id: Uuid) -> StoreResult<bool> {
                    self.$field.delete_totp(user_id).await
                }
                async fn replace_recovery_codes(
                    &self,
                    user_id: Uuid,
                    codes: &[SecretHash],
                ) -> StoreResult<bool> {
                    self.$field.replace_recovery_codes(user_id, codes).await
                }
                async fn use_recovery_code(
                    &self,
                    user_id: Uuid,
                    hash: &SecretHash,
                ) -> StoreResult<bool> {
                    self.$field.use_recovery_code(user_id, hash).await
                }
                async fn mfa_status(&self, user_id: Uuid) -> StoreResult<MfaStatus> {
                    self.$field.mfa_status(user_id).await
                }
                async fn mfa_statuses(
                    &self,
                    user_ids: &[Uuid],
                ) -> StoreResult<Vec<(Uuid, MfaStatus)>> {
                    self.$field.mfa_statuses(user_ids).await
                }
                async fn insert_mfa_challenge(&self, challenge: &MfaChallenge) -> StoreResult<()> {
                    self.$field.insert_mfa_challenge(challenge).await
                }
                async fn mfa_challenge(
                    &self,
                    hash: &SecretHash,
                ) -> StoreResult<Option<MfaChallenge>> {
                    self.$field.mfa_challenge(hash).await
                }
                async fn delete_mfa_challenge(&self, hash: &SecretHash) -> StoreResult<bool> {
                    self.$field.delete_mfa_challenge(hash).await
                }
                async fn delete_expired_mfa_challenges(
                    &self,
                    now: OffsetDateTime,
                ) -> StoreResult<u64> {
                    self.$field.delete_expired_mfa_challenges(now).await
                }
                async fn sealed_totp_secrets(&self) -> StoreResult<Vec<(Uuid, Vec<u8>)>> {
                    self.$field.sealed_totp_secrets().await
                }
                async fn replace_totp_secret(
                    &self,
                    user_id: Uuid,
                    old: &[u8],
                    new: &[u8],
                ) -> StoreResult<bool> {
                    self.$field.replace_totp_secret(user_id, old, new).await
                }
            }

            #[async_trait]
            impl BulkLoad for $store {
                async fn load_users(&self, users: &[UserRecord]) -> StoreResult<()> {
                    self.$field.load_users(users).await
                }
                async fn load_sessions(&self, sessions: &[Session]) -> StoreResult<()> {
                    self.$field.load_sessions(sessions).await
                }
                async fn load_revocations(
                    &self,
                    entries: &[(RevocationKind, String, OffsetDateTime)],
                ) -> StoreResult<()> {
                    self.$field.load_revocations(entries).await
                }
            }
        };
    };
}
