//! Token sessions: the password and refresh grants, bearer authentication,
//! revocation and introspection of tokens, and the signing keys behind them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditKind};
use crate::client::ClientInfo;
use crate::error::CoreError;
use crate::jwt::{self, AccessClaims, TokenError};
use crate::key_wrap::{self, KeyEncryptionKey};
use crate::keys::{Jwk, Keyring, SigningKey, StoredKey};
use crate::revocation::{Revocation, RevocationKind, RevocationSet};
use crate::secret::{Secret, SecretKind};
use crate::service::{Authenticated, Tessera, TesseraConfig};
use crate::session::{Session, SessionId, SessionKind};
use crate::session_end::Ending;
use crate::store::{Rotation, Store, StoreError};
use crate::user::{User, UserRecord};

/// Most revocations read from the store in one go.
const REVOCATION_PAGE: u32 = 1000;

/// An access token and a refresh token for one token session.
#[derive(Debug)]
pub struct TokenGrant {
    /// The signed JWT.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The session's new current refresh token; only its hash is stored.
    pub refresh_token: Secret,
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

/// What introspection found (RFC 7662).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// Not a token this server would accept now.
    Inactive,
    /// A valid access token.
    Access(AccessClaims),
    /// A current refresh token of a live session.
    Refresh {
        /// Its session.
        session: Session,
        /// The session's user.
        user: User,
    },
}

impl Tessera {
    /// `grant_type=password`: checks the password and starts a token session.
    pub async fn sign_in_token(
        &self,
        username: &str,
        password: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<TokenGrant, CoreError> {
        let UserRecord {
            user,
            password_hash,
        } = self.check_credentials(username, password, client).await?;
        let policy = &self.config.tokens;
        let refresh = Secret::generate(SecretKind::Refresh)?;
        let now = self.now();
        let absolute = now + policy.refresh_absolute_ttl;
        let session = Session {
            id: SessionId::generate()?,
            kind: SessionKind::Token,
            user_id: user.id,
            secret_hash: refresh.hash(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: (now + policy.refresh_idle_ttl).min(absolute),
            absolute_expires_at: absolute,
            remember_me: false,
            ip: client.ip,
            user_agent: client.user_agent.clone(),
        };
        let event = AuditEvent::new(
            AuditKind::SignInSucceeded,
            Some(user.id),
            client,
            now,
            json!({ "session_id": session.id.as_str(), "kind": "token" }),
        );
        if !self
            .store
            .insert_token_session(&session, &event, &password_hash)
            .await?
        {
            // Password changed or user disabled while this was checked.
            return Err(CoreError::InvalidCredentials);
        }
        self.grant(user, session, refresh)
    }

    /// `grant_type=refresh_token`: exchanges a refresh token for a new pair.
    /// A token replaced longer ago than the grace window is taken as stolen:
    /// its whole session is revoked.
    pub async fn refresh(
        &self,
        presented: &str,
        client: &ClientInfo,
    ) -> Result<TokenGrant, CoreError> {
        let invalid =
            || CoreError::InvalidGrant("the refresh token is invalid, expired or revoked".into());
        let presented = Secret::parse(SecretKind::Refresh, presented).ok_or_else(invalid)?;
        let fresh = Secret::generate(SecretKind::Refresh)?;
        let policy = &self.config.tokens;
        let outcome = self
            .store
            .rotate_refresh(
                &presented.hash(),
                &fresh.hash(),
                self.now(),
                policy.refresh_reuse_grace,
                policy.refresh_idle_ttl,
            )
            .await?;
        match outcome {
            Rotation::Rotated(session) => match self.live_user(session.user_id).await {
                Ok(user) => self.grant(user.as_ref().clone(), session, fresh),
                Err(CoreError::Unauthenticated) => {
                    // The user was disabled or deleted meanwhile.
                    self.end_session(&session.id, client, Ending::Revoked("user_unavailable"))
                        .await?;
                    Err(invalid())
                }
                Err(e) => Err(e),
            },
            Rotation::Reused(session) => {
                // The store deleted it in the same transaction that saw the reuse.
                self.ended(
                    std::slice::from_ref(&session),
                    client,
                    Ending::RefreshReused,
                )
                .await?;
                Err(invalid())
            }
            Rotation::Expired | Rotation::Unknown => Err(invalid()),
        }
    }

    fn grant(
        &self,
        user: User,
        session: Session,
        refresh: Secret,
    ) -> Result<TokenGrant, CoreError> {
        let claims = AccessClaims::new(
            &self.config.tokens,
            user.id,
            session.id.as_str(),
            user.roles.clone(),
            self.now(),
        )
        .map_err(|e| CoreError::Internal(e.to_string()))?;
        let access_token =
            jwt::mint(&self.keyring(), &claims).map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(TokenGrant {
            access_token,
            expires_in: claims.exp - claims.iat,
            refresh_token: refresh,
            session,
            user,
        })
    }

    /// Verifies an access token (signature, claims, revocation) and finds
    /// its live session and user.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Authenticated, CoreError> {
        let claims = self.verify_access_token(token).await.map_err(|e| match e {
            TokenError::RevocationsStale => CoreError::Store(StoreError::Unavailable(
                "the revocation set cannot be brought up to date".into(),
            )),
            other => {
                tracing::debug!(reason = %other, "bearer token refused");
                CoreError::Unauthenticated
            }
        })?;
        let session_id = SessionId::parse(&claims.sid).ok_or(CoreError::Unauthenticated)?;
        // The token passed the revocation check, so a cached copy of its
        // session is still current.
        let session = match self.cache.token(&session_id) {
            Some(session) => session,
            None => match self.store.session_by_id(&session_id).await? {
                Some(s) if s.kind == SessionKind::Token && s.is_live(self.now()) => {
                    self.cache.put(&s);
                    s
                }
                _ => return Err(CoreError::Unauthenticated),
            },
        };
        if Uuid::parse_str(&claims.sub).ok() != Some(session.user_id) {
            return Err(CoreError::Unauthenticated);
        }
        let user = self.live_user(session.user_id).await?;
        Ok(Authenticated { user, session })
    }

    /// Signature and claims, then the revocation set. An unknown `kid` makes
    /// the node reload its keys (at most once a second) in case another
    /// node has rotated them.
    pub async fn verify_access_token(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        let now = self.now();
        let leeway = self.config.tokens.leeway.whole_seconds();
        let claims = match self.verified.get(token, now.unix_timestamp() - leeway) {
            Some(claims) => claims,
            None => {
                let mut outcome = jwt::verify(&self.keyring(), &self.config.tokens, token, now);
                if outcome == Err(TokenError::UnknownKey) && self.reload_keys_if_stale(1).await {
                    outcome = jwt::verify(&self.keyring(), &self.config.tokens, token, now);
                }
                let claims = Arc::new(outcome?);
                self.verified
                    .put(token, claims.clone(), now.unix_timestamp() - leeway);
                claims
            }
        };
        // Never cached: checked on every request.
        if self.revocations_fresh().is_err() {
            return Err(TokenError::RevocationsStale);
        }
        if self.revocations.is_revoked(&claims.sid, &claims.jti) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// RFC 7009: revokes the session of a refresh or access token. Anything
    /// else is silently ignored, and so is a token that can do no harm any
    /// more (expired, or its session already revoked): anyone may call
    /// this, so a call writes only when it ends something.
    pub async fn revoke_token(&self, token: &str, client: &ClientInfo) -> Result<(), CoreError> {
        let why = Ending::Revoked("token_revocation");
        if let Some(refresh) = Secret::parse(SecretKind::Refresh, token) {
            if let Some((session, _)) = self.store.session_by_refresh(&refresh.hash()).await? {
                self.end_session(&session.id, client, why).await?;
            }
            return Ok(());
        }
        let Ok(claims) = jwt::verify_ignoring_expiry(&self.keyring(), &self.config.tokens, token)
        else {
            return Ok(());
        };
        let leeway = self.config.tokens.leeway.whole_seconds();
        if claims.exp.saturating_add(leeway) < self.now().unix_timestamp()
            || self.revocations.is_revoked(&claims.sid, &claims.jti)
        {
            return Ok(());
        }
        let ended = match SessionId::parse(&claims.sid) {
            Some(id) => self.end_session(&id, client, why).await?,
            None => None,
        };
        if ended.is_none() {
            // The session is gone (it expired) while its token still lives:
            // its sid goes into the set, once.
            let until = self.now() + self.config.tokens.revocation_ttl();
            self.revoke(vec![(RevocationKind::Sid, claims.sid.clone(), until)])
                .await?;
        }
        Ok(())
    }

    /// RFC 7662 introspection of an access or refresh token.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, CoreError> {
        if let Some(refresh) = Secret::parse(SecretKind::Refresh, token) {
            return Ok(
                match self.store.session_by_refresh(&refresh.hash()).await? {
                    Some((session, true)) if session.is_live(self.now()) => {
                        match self.live_user(session.user_id).await {
                            Ok(user) => Introspection::Refresh {
                                session,
                                user: user.as_ref().clone(),
                            },
                            Err(_) => Introspection::Inactive,
                        }
                    }
                    _ => Introspection::Inactive,
                },
            );
        }
        Ok(match self.verify_access_token(token).await {
            Ok(claims) => Introspection::Access(claims.as_ref().clone()),
            Err(TokenError::RevocationsStale) => {
                return Err(CoreError::Store(StoreError::Unavailable(
                    "the revocation set cannot be brought up to date".into(),
                )));
            }
            Err(_) => Introspection::Inactive,
        })
    }

    /// The key set in force.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The public keys to publish.
    pub fn jwks(&self) -> Vec<Jwk> {
        self.keyring().jwks(self.now())
    }

    /// Makes a new signing key current; the old one verifies until every
    /// token it signed has expired.
    pub async fn rotate_signing_key(&self, client: &ClientInfo) -> Result<StoredKey, CoreError> {
        let now = self.now();
        let key = SigningKey::generate(self.config.algorithm, now)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let key = key_wrap::seal(&self.kek, &key)?;
        self.store
            .rotate_key(&key, now, now + self.config.tokens.revocation_ttl())
            .await?;
        self.reload_keys().await?;
        self.audit(
            AuditKind::KeyRotated,
            None,
            client,
            json!({ "kid": key.kid, "algorithm": key.algorithm.as_str() }),
        )
        .await?;
        Ok(key)
    }

    /// Every stored key, current first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, CoreError> {
        let mut keys = self.store.keys().await?;
        keys.sort_by(|a, b| {
            a.retired_at
                .is_some()
                .cmp(&b.retired_at.is_some())
                .then(b.created_at.cmp(&a.created_at))
        });
        Ok(keys)
    }

    /// Rereads the key set from the store.
    pub async fn reload_keys(&self) -> Result<(), CoreError> {
        let now = self.now();
        let (keys, sealed) = key_wrap::load_keys(&*self.store, &self.kek).await?;
        self.audit_sealed_keys(sealed).await?;
        let ring = Keyring::new(&keys, now).map_err(|e| CoreError::Internal(e.to_string()))?;
        let changed = self.keyring().kids() != ring.kids();
        *self.keyring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        if changed {
            // A key may have gone: tokens it verified must be checked again.
            self.verified.clear();
        }
        self.keys_loaded_at
            .store(now.unix_timestamp(), Ordering::Relaxed);
        Ok(())
    }

    /// Audits keys found in clear (stored before keys were sealed) and sealed.
    pub(crate) async fn audit_sealed_keys(&self, kids: Vec<String>) -> Result<(), CoreError> {
        if kids.is_empty() {
            return Ok(());
        }
        tracing::info!(?kids, kek = %self.kek.id(), "signing keys stored in clear are now sealed");
        self.audit(
            AuditKind::KeysSealed,
            None,
            &ClientInfo::new(None, Some("tessera")),
            json!({ "kids": kids, "kek": self.kek.id().to_string() }),
        )
        .await
    }

    /// Reloads the keys if the last load is older than `seconds`; true if it did.
    async fn reload_keys_if_stale(&self, seconds: i64) -> bool {
        let now = self.now().unix_timestamp();
        let last = self.keys_loaded_at.load(Ordering::Relaxed);
        if now - last < seconds
            || self
                .keys_loaded_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        self.reload_keys().await.is_ok()
    }

    /// Pulls revocations other nodes (or processes) stored since this node
    /// last looked; returns how many were new.
    pub async fn sync_revocations(&self) -> Result<usize, CoreError> {
        // Taken before reading: what was stored before this instant is seen.
        let synced_at = std::time::Instant::now();
        let mut added = 0;
        loop {
            let page = self
                .store
                .revocations_since(self.revocations.cursor(), self.now(), REVOCATION_PAGE)
                .await?;
            added += self.revocations.apply(&page);
            if let Some(last) = page.last() {
                self.revocations.advance_cursor(last.seq);
            }
            if page.len() < REVOCATION_PAGE as usize {
                *self
                    .revocations_synced
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = synced_at;
                return Ok(added);
            }
        }
    }

    /// Unexpired revocations after `cursor`, for outside verifiers.
    pub async fn revocations_since(
        &self,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<Revocation>, CoreError> {
        Ok(self
            .store
            .revocations_since(cursor, self.now(), limit)
            .await?)
    }

    /// Err when staleness is bounded and the last successful sync is older.
    pub fn revocations_fresh(&self) -> Result<(), CoreError> {
        let Some(limit) = self.config.revocation_max_staleness else {
            return Ok(());
        };
        let synced = *self
            .revocations_synced
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if synced.elapsed() > limit {
            return Err(CoreError::Store(StoreError::Unavailable(
                "the revocation set cannot be brought up to date".into(),
            )));
        }
        Ok(())
    }

    /// This node's in-memory revocation set.
    pub fn revocation_set(&self) -> &RevocationSet {
        &self.revocations
    }
}

/// The key set at start: makes sure a current key of the configured
/// algorithm exists (sealed under `kek`), opens every stored key, sealing
/// those still in clear (their ids are returned, to be audited).
pub(crate) async fn open_keys(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    config: &TesseraConfig,
    now: time::OffsetDateTime,
) -> Result<(Keyring, Vec<String>), CoreError> {
    let generate = || {
        SigningKey::generate(config.algorithm, now).map_err(|e| CoreError::Internal(e.to_string()))
    };
    // Every stored key opens with `kek` before a key is added under it.
    let (mut keys, sealed) = key_wrap::load_keys(store, kek).await?;
    if keys.iter().all(|k| k.retired_at.is_some()) {
        store
            .ensure_current_key(&key_wrap::seal(kek, &generate()?)?)
            .await?;
        keys = key_wrap::load_keys(store, kek).await?.0;
    }
    let current_algorithm = keys
        .iter()
        .find(|k| k.retired_at.is_none())
        .map(|k| k.algorithm);
    if current_algorithm != Some(config.algorithm) {
        store
            .rotate_key(
                &key_wrap::seal(kek, &generate()?)?,
                now,
                now + config.tokens.revocation_ttl(),
            )
            .await?;
        keys = key_wrap::load_keys(store, kek).await?.0;
    }
    let keyring = Keyring::new(&keys, now).map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok((keyring, sealed))
}
