//! [`Tessera`]: the domain operations the HTTP layer and the CLI call.

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditKind, AuditRecord};
use crate::client::ClientInfo;
use crate::clock::Clock;
use crate::error::CoreError;
use crate::jwt::TokenPolicy;
use crate::key_wrap::KeyEncryptionKey;
use crate::keys::{Algorithm, Keyring};
use crate::password::{HashCost, PasswordHasher, Verified, check_strength};
use crate::rate_limit::AttemptKeys;
use crate::revocation::RevocationSet;
use crate::secret::{Secret, SecretKind};
use crate::session::{Session, SessionId, SessionKind, SessionPolicy};
use crate::session_end::Ending;
use crate::store::{Store, StoreError};
use crate::user::{User, UserRecord};
use crate::username::Username;

/// Label under which a session's CSRF token is derived from its secret.
const CSRF_LABEL: &[u8] = b"tessera csrf v1";

/// Domain settings, validated by the caller.
#[derive(Debug, Clone)]
pub struct TesseraConfig {
    /// Cookie session lifetimes.
    pub session: SessionPolicy,
    /// Argon2id cost.
    pub hash_cost: HashCost,
    /// Hashes run at once (normally the number of cores).
    pub hash_workers: usize,
    /// At most this many hashes wait for a worker (a bound on memory; the
    /// queue's deadline, `password::QUEUE_DEADLINE`, usually refuses first).
    pub hash_queue: usize,
    /// Access and refresh token settings.
    pub tokens: TokenPolicy,
    /// Algorithm of new signing keys.
    pub algorithm: Algorithm,
    /// When set, access tokens are refused (503) if the revocation set has
    /// not been brought up to date from the store for this long: a node cut
    /// off from the store could otherwise accept a revoked token.
    pub revocation_max_staleness: Option<std::time::Duration>,
    /// Brute-force limits on sign-in.
    pub rate_limit: crate::rate_limit::RateLimitPolicy,
}

impl Default for TesseraConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            session: SessionPolicy::default(),
            hash_cost: HashCost::default(),
            hash_workers: cores,
            hash_queue: cores * crate::password::QUEUE_PER_WORKER,
            tokens: TokenPolicy::new("http://127.0.0.1:8080"),
            algorithm: Algorithm::EdDSA,
            revocation_max_staleness: None,
            rate_limit: crate::rate_limit::RateLimitPolicy::default(),
        }
    }
}

/// A new session and the secret that proves it, returned once.
#[derive(Debug)]
pub struct SignedIn {
    /// The signed-in user.
    pub user: User,
    /// The new session.
    pub session: Session,
    /// Its secret (the cookie value); only its hash is stored.
    pub secret: Secret,
}

/// A request's proven identity.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user (shared with the cache: no copy per request).
    pub user: Arc<User>,
    /// The session the request belongs to.
    pub session: Session,
}

/// The domain service.
pub struct Tessera {
    pub(crate) store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    pub(crate) config: TesseraConfig,
    pub(crate) keyring: RwLock<Arc<Keyring>>,
    /// Seals and opens the signing keys in the store.
    pub(crate) kek: KeyEncryptionKey,
    /// Unix seconds of the last key reload, to bound reloads on unknown `kid`s.
    pub(crate) keys_loaded_at: AtomicI64,
    pub(crate) revocations: RevocationSet,
    pub(crate) cache: crate::session_cache::SessionCache,
    pub(crate) verified: crate::token_cache::VerifiedTokens,
    /// When the revocation set was last brought up to date from the store.
    pub(crate) revocations_synced: std::sync::Mutex<std::time::Instant>,
}

impl std::fmt::Debug for Tessera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tessera")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Tessera {
    /// Builds the service over `store`: makes sure a signing key of the
    /// configured algorithm exists (rotating to one if the algorithm
    /// changed), loads the key set (opened with `kek`, sealing keys still in
    /// clear) and the revocation set.
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: TesseraConfig,
        kek: KeyEncryptionKey,
    ) -> Result<Self, CoreError> {
        let hasher = PasswordHasher::new(config.hash_cost, config.hash_workers, config.hash_queue)?;
        let now = clock.now();
        let (keyring, sealed) =
            crate::token_session::open_keys(&*store, &kek, &config, now).await?;
        let tessera = Self {
            store,
            clock,
            hasher,
            config,
            keyring: RwLock::new(Arc::new(keyring)),
            kek,
            keys_loaded_at: AtomicI64::new(now.unix_timestamp()),
            revocations: RevocationSet::new(),
            cache: crate::session_cache::SessionCache::new(),
            verified: crate::token_cache::VerifiedTokens::new(),
            revocations_synced: std::sync::Mutex::new(std::time::Instant::now()),
        };
        tessera.audit_sealed_keys(sealed).await?;
        tessera.sync_revocations().await?;
        Ok(tessera)
    }

    /// The current time by the injected clock, to the millisecond: the
    /// precision every store keeps, so what is answered is what is stored.
    pub fn now(&self) -> OffsetDateTime {
        let now = self.clock.now();
        now.replace_millisecond(now.millisecond()).unwrap_or(now)
    }

    /// Argon2 verifications run so far (each sign-in attempt runs exactly one,
    /// whether or not the user exists).
    pub fn password_verifications(&self) -> u64 {
        self.hasher.verifications()
    }

    /// The settings in force.
    pub fn config(&self) -> &TesseraConfig {
        &self.config
    }

    /// Succeeds when the store answers and the revocation set is current,
    /// naming the optional parts that are lost meanwhile.
    pub async fn ready(&self) -> Result<Vec<&'static str>, CoreError> {
        self.store.ping().await?;
        self.revocations_fresh()?;
        Ok(self.store.degraded().await)
    }

    /// Self-service registration, limited per client address.
    pub async fn register(
        &self,
        username: &str,
        password: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<User, CoreError> {
        self.count_registration(client).await?;
        self.create_user(username, password, Vec::new(), client)
            .await
    }

    /// Creates a user with `roles` (registration, CLI, administration).
    pub async fn create_user(
        &self,
        username: &str,
        password: Zeroizing<String>,
        roles: Vec<String>,
        client: &ClientInfo,
    ) -> Result<User, CoreError> {
        let username = Username::parse(username)?;
        check_strength(&password, username.display())?;
        // Registration reveals whether a name is taken by design; checking
        // first spares an Argon2 run. The unique index still decides races.
        if self
            .store
            .user_by_username(username.normalized())
            .await?
            .is_some()
        {
            return Err(CoreError::UsernameTaken);
        }
        let hash = self.hasher.hash(password).await?;
        let now = self.now();
        let user = User {
            id: Uuid::new_v4(),
            username,
            roles,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_user(&user, &hash).await {
            Ok(()) => {}
            Err(StoreError::Duplicate) => return Err(CoreError::UsernameTaken),
            Err(e) => return Err(e.into()),
        }
        self.audit(AuditKind::UserRegistered, Some(user.id), client, json!({}))
            .await?;
        Ok(user)
    }

    /// Checks a username and password. Every failure is the same
    /// [`CoreError::InvalidCredentials`] and costs one Argon2 verification,
    /// so neither the answer nor its timing tells whether the user exists.
    /// Answers the user with the password hash in force, which the session
    /// made next must still find (see [`crate::store::Sessions::insert_session`]).
    pub async fn check_credentials(
        &self,
        username: &str,
        password: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<UserRecord, CoreError> {
        let name = Username::parse(username);
        let keys = AttemptKeys::new(name.as_ref().map_or(username, |n| n.normalized()), client);
        // Before any password work, and counted while in flight: a blocked
        // client costs no Argon2 run, and parallel guesses cannot overrun
        // the limit.
        let admitted = self.reserve_attempt(&keys).await?;
        let checked = self.verify_credentials(name.ok(), password, client).await;
        match &checked {
            Ok(_) => self.attempt_succeeded(&keys).await?,
            Err(CoreError::InvalidCredentials) => {
                self.attempt_failed(&keys, admitted, client).await?;
            }
            Err(_) => self.attempt_abandoned(&keys).await,
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
        let record = match &name {
            Some(name) => self.store.user_by_username(name.normalized()).await?,
            None => None,
        };
        let stored_hash = record.as_ref().map(|r| r.password_hash.clone());
        let outcome = self.hasher.verify(password.clone(), stored_hash).await?;
        let failure = match (&record, outcome) {
            (None, _) => Some("unknown_user"),
            (Some(_), Verified::Mismatch) => Some("wrong_password"),
            (Some(r), _) if r.user.disabled => Some("disabled"),
            _ => None,
        };
        match (record, failure) {
            (Some(mut record), None) => {
                if outcome == Verified::MatchNeedsRehash {
                    let fresh = self.hasher.hash(password).await?;
                    self.store
                        .set_password_hash(record.user.id, &fresh, self.now())
                        .await?;
                    record.password_hash = fresh;
                }
                Ok(record)
            }
            (record, reason) => {
                let user_id = record.map(|r| r.user.id);
                self.audit(
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

    /// Cookie sign-in. Any session the request's cookie pointed at is
    /// deleted and a new one with a new secret is made, so a planted cookie
    /// can never become a signed-in session (no fixation).
    pub async fn sign_in_cookie(
        &self,
        username: &str,
        password: Zeroizing<String>,
        remember_me: bool,
        replacing: &[Secret],
        client: &ClientInfo,
    ) -> Result<SignedIn, CoreError> {
        let UserRecord {
            user,
            password_hash,
        } = self.check_credentials(username, password, client).await?;
        for old in replacing {
            if let Some(previous) = self.store.session_by_secret(&old.hash()).await? {
                self.end_session(&previous.id, client, Ending::Revoked("sign_in"))
                    .await?;
            }
        }
        let secret = Secret::generate(SecretKind::Session)?;
        let now = self.now();
        let (idle, absolute) = self.config.session.lifetimes(remember_me);
        let session = Session {
            id: SessionId::generate()?,
            kind: SessionKind::Cookie,
            user_id: user.id,
            secret_hash: secret.hash(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now + idle,
            absolute_expires_at: now + absolute,
            remember_me,
            ip: client.ip,
            user_agent: client.user_agent.clone(),
        };
        let event = AuditEvent::new(
            AuditKind::SignInSucceeded,
            Some(user.id),
            client,
            now,
            json!({ "session_id": session.id.as_str(), "kind": "cookie" }),
        );
        if !self
            .store
            .insert_session(&session, &event, &password_hash)
            .await?
        {
            // The password changed or the user was disabled while this
            // attempt was being checked: what it proved no longer holds.
            return Err(CoreError::InvalidCredentials);
        }
        Ok(SignedIn {
            user,
            session,
            secret,
        })
    }

    /// The user and session behind a cookie secret, if it is live. Records
    /// use at most once per touch interval.
    pub async fn authenticate_cookie(&self, secret: &Secret) -> Result<Authenticated, CoreError> {
        let hash = secret.hash();
        let now = self.now();
        // Positive answers only, checked against the revocation set (so a
        // session ended on another node is refused here too).
        let cached = self
            .revocations_fresh()
            .ok()
            .and_then(|()| self.cache.cookie(&hash));
        let mut session = match cached {
            Some(session) if self.revocations.is_session_revoked(session.id.as_str()) => {
                self.cache.remove(&session);
                return Err(CoreError::Unauthenticated);
            }
            Some(session) if session.is_live(now) => session,
            _ => {
                let Some(session) = self.store.session_by_secret(&hash).await? else {
                    return Err(CoreError::Unauthenticated);
                };
                // A store answer may come from a shared cache (Redis) whose
                // tombstone write failed: the revocation set has the last word.
                if session.kind != SessionKind::Cookie
                    || !session.secret_hash.ct_eq(&hash)
                    || !session.is_live(now)
                    || self.revocations.is_session_revoked(session.id.as_str())
                {
                    return Err(CoreError::Unauthenticated);
                }
                self.cache.put(&session);
                session
            }
        };
        let user = self.live_user(session.user_id).await?;
        let (idle, _) = self.config.session.lifetimes(session.remember_me);
        if now - session.last_seen_at >= self.config.session.touch_interval(idle) {
            session.last_seen_at = now;
            session.idle_expires_at = now + idle;
            self.store
                .touch_session(&session.id, now, session.idle_expires_at)
                .await?;
            self.cache.put(&session);
        }
        Ok(Authenticated { user, session })
    }

    /// The CSRF token of the cookie session whose secret is `secret`.
    pub fn csrf_token(&self, secret: &Secret) -> String {
        secret.derive(CSRF_LABEL)
    }

    /// Ends the caller's own session.
    pub async fn sign_out(
        &self,
        auth: &Authenticated,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        self.end_session(&auth.session.id, client, Ending::SignedOut)
            .await?;
        Ok(())
    }

    /// The user's live sessions, newest first.
    pub async fn sessions_of(&self, user_id: Uuid) -> Result<Vec<Session>, CoreError> {
        Ok(self.store.list_user_sessions(user_id, self.now()).await?)
    }

    /// Revokes one of the user's sessions; [`CoreError::NotFound`] when it is
    /// not theirs, exactly as when it does not exist.
    pub async fn revoke_session(
        &self,
        user_id: Uuid,
        id: &str,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let id = SessionId::parse(id).ok_or(CoreError::NotFound)?;
        match self.store.session_by_id(&id).await? {
            Some(session) if session.user_id == user_id => {}
            _ => return Err(CoreError::NotFound),
        }
        self.end_session(&id, client, Ending::Revoked("user"))
            .await?;
        Ok(())
    }

    /// Revokes every session of the user except `keep`; returns how many ended.
    pub async fn revoke_sessions(
        &self,
        user_id: Uuid,
        keep: Option<&SessionId>,
        client: &ClientInfo,
        by: &'static str,
    ) -> Result<usize, CoreError> {
        self.end_user_sessions(user_id, keep, client, Ending::Revoked(by))
            .await
    }

    /// Changes the caller's password: checks the current one, revokes every
    /// other session, and rotates the current session's secret. Returns the
    /// new secret of a cookie session.
    pub async fn change_password(
        &self,
        auth: &Authenticated,
        current: Zeroizing<String>,
        new: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<Option<Secret>, CoreError> {
        let record = self
            .store
            .user_by_id(auth.user.id)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        // The current password counts against the sign-in limits: a
        // session must not be an unlimited password oracle.
        let keys = AttemptKeys::new(auth.user.username.normalized(), client);
        let admitted = self.reserve_attempt(&keys).await?;
        let outcome = match self
            .hasher
            .verify(current, Some(record.password_hash))
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                self.attempt_abandoned(&keys).await;
                return Err(e.into());
            }
        };
        if !outcome.is_match() {
            self.audit(
                AuditKind::SignInFailed,
                Some(auth.user.id),
                client,
                json!({ "reason": "wrong_password", "during": "password_change" }),
            )
            .await?;
            self.attempt_failed(&keys, admitted, client).await?;
            return Err(CoreError::InvalidCredentials);
        }
        self.attempt_succeeded(&keys).await?;
        check_strength(&new, auth.user.username.display())?;
        let hash = self.hasher.hash(new).await?;
        let now = self.now();
        if !self
            .store
            .set_password_hash(auth.user.id, &hash, now)
            .await?
        {
            return Err(CoreError::Unauthenticated);
        }
        self.revoke_sessions(
            auth.user.id,
            Some(&auth.session.id),
            client,
            "password_change",
        )
        .await?;
        let rotated = match auth.session.kind {
            SessionKind::Cookie => {
                // A new session (new id, new secret, same lifetime) replaces
                // this one, whose end every node learns through the
                // revocation set, cached copies included.
                let secret = Secret::generate(SecretKind::Session)?;
                let (idle, _) = self.config.session.lifetimes(auth.session.remember_me);
                let replacement = Session {
                    id: SessionId::generate()?,
                    secret_hash: secret.hash(),
                    last_seen_at: now,
                    idle_expires_at: (now + idle).min(auth.session.absolute_expires_at),
                    ip: client.ip,
                    user_agent: client.user_agent.clone(),
                    ..auth.session.clone()
                };
                // The replacement carries the password-change record; the
                // event of a token session's change is written below.
                let event = AuditEvent::new(
                    AuditKind::PasswordChanged,
                    Some(auth.user.id),
                    client,
                    now,
                    json!({ "session_id": replacement.id.as_str() }),
                );
                let current = &auth.session.id;
                let why = Ending::Revoked("password_change");
                if !self
                    .store
                    .insert_session(&replacement, &event, &hash)
                    .await?
                {
                    // Changed again, or disabled, meanwhile: this session
                    // goes the way of its peers.
                    self.end_session(current, client, why).await?;
                    return Err(CoreError::Unauthenticated);
                }
                if self.end_session(current, client, why).await?.is_none() {
                    // Ended meanwhile (signed out elsewhere): no replacement either.
                    self.end_session(&replacement.id, client, why).await?;
                    return Err(CoreError::Unauthenticated);
                }
                Some(secret)
            }
            SessionKind::Token => {
                self.audit(
                    AuditKind::PasswordChanged,
                    Some(auth.user.id),
                    client,
                    json!({}),
                )
                .await?;
                None
            }
        };
        Ok(rotated)
    }

    /// Disables (revoking every session) or re-enables a user.
    pub async fn set_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        if !self
            .store
            .set_disabled(user_id, disabled, self.now())
            .await?
        {
            return Err(CoreError::NotFound);
        }
        // This node's cached copy would let the user's bearer and cookie
        // lookups pass for up to a cache lifetime; other nodes refuse them
        // by the revocation set, and no sign-in racing this can store a
        // session (it must find the user enabled).
        self.cache.remove_user(user_id);
        if disabled {
            self.revoke_sessions(user_id, None, client, "admin_disable")
                .await?;
        }
        let kind = if disabled {
            AuditKind::UserDisabled
        } else {
            AuditKind::UserEnabled
        };
        self.audit(kind, Some(user_id), client, json!({})).await
    }

    /// A user by (not yet normalised) username.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, CoreError> {
        let name = Username::parse(username)?;
        Ok(self
            .store
            .user_by_username(name.normalized())
            .await?
            .map(|r| r.user))
    }

    /// A session as stored (with the address and user agent the in-process
    /// cache does not keep).
    pub async fn session(&self, id: &SessionId) -> Result<Option<Session>, CoreError> {
        Ok(self.store.session_by_id(id).await?)
    }

    /// A user by id.
    pub async fn user(&self, id: Uuid) -> Result<Option<User>, CoreError> {
        Ok(self.store.user_by_id(id).await?.map(|r| r.user))
    }

    /// Users ordered by normalised name, after `after`, at most `limit`.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<User>, CoreError> {
        Ok(self.store.list_users(after, limit).await?)
    }

    /// Removes expired sessions, refresh tokens replaced longer ago than a
    /// refresh token can live, expired revocations and keys; returns how
    /// many sessions went.
    pub async fn sweep_expired(&self) -> Result<u64, CoreError> {
        let now = self.now();
        let sessions = self.store.delete_expired_sessions(now).await?;
        self.store.delete_expired_counters(now).await?;
        self.store
            .prune_refresh_tokens(now - self.config.tokens.refresh_idle_ttl)
            .await?;
        self.store.delete_expired_revocations(now).await?;
        self.store.delete_expired_keys(now).await?;
        self.revocations.prune(now);
        Ok(sessions)
    }

    /// A page of the audit log, newest first.
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, CoreError> {
        Ok(self.store.list_audit(before, limit).await?)
    }

    pub(crate) async fn live_user(&self, user_id: Uuid) -> Result<Arc<User>, CoreError> {
        if let Some(user) = self.cache.user(user_id)
            && !user.disabled
        {
            return Ok(user);
        }
        match self.store.user_by_id(user_id).await? {
            Some(record) if !record.user.disabled => {
                let user = Arc::new(record.user);
                self.cache.put_user(user.clone());
                Ok(user)
            }
            _ => Err(CoreError::Unauthenticated),
        }
    }

    pub(crate) async fn audit(
        &self,
        kind: AuditKind,
        user_id: Option<Uuid>,
        client: &ClientInfo,
        detail: serde_json::Value,
    ) -> Result<(), CoreError> {
        let event = AuditEvent::new(kind, user_id, client, self.now(), detail);
        Ok(self.store.append_audit(&event).await?)
    }
}
