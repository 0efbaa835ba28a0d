//! [`SigningKeys`]: the access-token signing keys in force on this node —
//! the keyring opened from the store with the key-encryption key, rotation,
//! reloading (also when a token names a key this node has not seen), and
//! signature-and-claims checks with their cache (`tessera-verify`'s),
//! which is valid only as long as the key set it was checked against.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::json;
use time::OffsetDateTime;

use crate::audit::AuditKind;
use crate::client::ClientInfo;
use crate::config::TesseraConfig;
use crate::context::Context;
use crate::error::CoreError;
use crate::id_token::{self, IdTokenClaims};
use crate::jwt::{self, AccessClaims, TokenError};
use crate::key_wrap::{self, KeyEncryptionKey};
use crate::keys::{Algorithm, Jwk, KeyPurpose, Keyring, PreparedKey, SigningKey, StoredKey};
use crate::metrics::CacheKind;
use crate::store::Store;
use tessera_verify::{Expectations, TokenKey, VerifiedCache};

/// The signing keys in force.
pub struct SigningKeys {
    context: Arc<Context>,
    keyring: RwLock<Arc<Keyring>>,
    /// Seals and opens the signing keys in the store.
    kek: KeyEncryptionKey,
    /// Unix seconds of the last key reload, to bound reloads on unknown `kid`s.
    loaded_at: AtomicI64,
    /// Tokens whose signature and claims this key set has verified.
    verified: VerifiedCache,
    /// What an access token must say, from the token policy (made once).
    expectations: Expectations,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kek", &self.kek)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Makes sure a signing key of the configured algorithm exists
    /// (rotating to one if the algorithm changed) and loads the key set,
    /// opened with `kek`; keys still in clear are sealed, and audited.
    pub async fn open(context: Arc<Context>, kek: KeyEncryptionKey) -> Result<Self, CoreError> {
        let now = context.clock().now();
        let (keyring, sealed) = open_keys(context.store(), &kek, context.config(), now).await?;
        let keys = Self {
            keyring: RwLock::new(Arc::new(keyring)),
            kek,
            loaded_at: AtomicI64::new(now.unix_timestamp()),
            verified: VerifiedCache::default(),
            expectations: context.config().tokens.expectations(),
            context,
        };
        keys.audit_sealed_keys(sealed).await?;
        Ok(keys)
    }

    /// The key set in force.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Seals a secret value (a TOTP secret) under the key-encryption key
    /// that seals the signing keys, bound to `label`.
    pub(crate) fn seal_value(&self, label: &str, clear: &[u8]) -> Result<Vec<u8>, CoreError> {
        Ok(key_wrap::seal_value(&self.kek, label, clear)?)
    }

    /// Opens a value sealed by [`Self::seal_value`] with the same `label`.
    pub(crate) fn open_value(
        &self,
        label: &str,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CoreError> {
        Ok(key_wrap::open_value(&self.kek, label, sealed)?)
    }

    /// The public keys to publish.
    pub fn jwks(&self) -> Vec<Jwk> {
        self.keyring().jwks(self.context.now())
    }

    /// Signature and claims of an access token (not its revocation), from
    /// the cache when this key set verified it before. An unknown `kid`
    /// makes the node reload its keys (at most once a second) in case
    /// another node has rotated them.
    pub(crate) async fn verify(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        let leeway = self.expectations.leeway;
        let key = TokenKey::of(token);
        let cached = self.verified.get(&key, now.unix_timestamp() - leeway);
        self.context
            .metrics()
            .cache_lookup(CacheKind::VerifiedToken, cached.is_some());
        if let Some(claims) = cached {
            return Ok(claims);
        }
        let expect = &self.expectations;
        let mut outcome = jwt::verify_expecting(&self.keyring(), expect, token, now);
        if outcome == Err(TokenError::UnknownKey) && self.reload_if_stale(1).await {
            outcome = jwt::verify_expecting(&self.keyring(), expect, token, now);
        }
        let claims = Arc::new(outcome?);
        self.verified.put(key, claims.clone());
        Ok(claims)
    }

    /// Tokens held in the verified-token cache now, and the most it holds.
    pub fn verified_cache_size(&self) -> (usize, usize) {
        (self.verified.len(), self.verified.capacity())
    }

    /// Makes a new signing key current, and a new ID-token key when one
    /// is kept; the old ones verify until every token they signed has
    /// expired.
    pub async fn rotate(&self, client: &ClientInfo) -> Result<StoredKey, CoreError> {
        let now = self.context.now();
        let config = self.context.config();
        let key = generate(config.algorithm, KeyPurpose::Access, now).await?;
        let key = key_wrap::seal(&self.kek, &key)?;
        let expires_at = now + config.tokens.revocation_ttl();
        self.context
            .store()
            .rotate_key(&key, now, expires_at)
            .await?;
        let mut id_token_kid = None;
        if let Some(old) = self.keyring().id_token_key() {
            let id_key = generate(old.algorithm, KeyPurpose::IdToken, now).await?;
            let id_key = key_wrap::seal(&self.kek, &id_key)?;
            self.context
                .store()
                .rotate_key(&id_key, now, expires_at)
                .await?;
            id_token_kid = Some(id_key.kid);
        }
        self.reload().await?;
        self.context
            .audit(
                AuditKind::KeyRotated,
                None,
                client,
                json!({
                    "kid": key.kid,
                    "algorithm": key.algorithm.as_str(),
                    "id_token_kid": id_token_kid,
                }),
            )
            .await?;
        Ok(key)
    }

    /// The key that signs ID tokens in `algorithm`: the access key when it
    /// is of that algorithm, else the RS256 ID-token key, made (once, for
    /// every node) the first time one is needed.
    pub async fn id_token_signer(
        &self,
        algorithm: Algorithm,
    ) -> Result<Arc<PreparedKey>, CoreError> {
        if let Some(key) = self.keyring().id_token_signer(algorithm) {
            return Ok(key.clone());
        }
        if algorithm != Algorithm::RS256 {
            return Err(CoreError::Internal(format!(
                "no key signs ID tokens in {}: the client registered an algorithm that is no \
                 longer configured",
                algorithm.as_str()
            )));
        }
        // Another node may have made it already: reread before making one.
        self.reload().await?;
        if self.keyring().id_token_signer(algorithm).is_none() {
            let now = self.context.now();
            let key = generate(algorithm, KeyPurpose::IdToken, now).await?;
            self.context
                .store()
                .ensure_current_key(&key_wrap::seal(&self.kek, &key)?)
                .await?;
            self.reload().await?;
        }
        self.keyring()
            .id_token_signer(algorithm)
            .cloned()
            .ok_or_else(|| CoreError::Internal("the ID-token key did not load".into()))
    }

    /// The claims of an ID token this server signed (with either kind of
    /// key, retired or not, expired or not): an `id_token_hint`.
    pub async fn id_token_hint(&self, token: &str) -> Result<IdTokenClaims, TokenError> {
        let issuer = &self.context.config().tokens.issuer;
        let mut outcome = id_token::verify_hint(&self.keyring(), issuer, token);
        if outcome == Err(TokenError::UnknownKey) && self.reload_if_stale(1).await {
            outcome = id_token::verify_hint(&self.keyring(), issuer, token);
        }
        outcome
    }

    /// Every stored key, current first.
    pub async fn list(&self) -> Result<Vec<StoredKey>, CoreError> {
        let mut keys = self.context.store().keys().await?;
        keys.sort_by(|a, b| {
            a.retired_at
                .is_some()
                .cmp(&b.retired_at.is_some())
                .then(b.created_at.cmp(&a.created_at))
        });
        Ok(keys)
    }

    /// Rereads the key set from the store.
    pub async fn reload(&self) -> Result<(), CoreError> {
        let now = self.context.now();
        let (keys, sealed) = key_wrap::load_keys(self.context.store(), &self.kek).await?;
        self.audit_sealed_keys(sealed).await?;
        let ring = Keyring::new(&keys, now).map_err(|e| CoreError::Internal(e.to_string()))?;
        let changed = self.keyring().kids() != ring.kids();
        *self.keyring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        if changed {
            // A key may have gone: tokens it verified must be checked again.
            self.verified.clear();
        }
        self.loaded_at
            .store(now.unix_timestamp(), Ordering::Relaxed);
        Ok(())
    }

    /// Audits keys found in clear (stored before keys were sealed) and sealed.
    async fn audit_sealed_keys(&self, kids: Vec<String>) -> Result<(), CoreError> {
        if kids.is_empty() {
            return Ok(());
        }
        tracing::info!(?kids, kek = %self.kek.id(), "signing keys stored in clear are now sealed");
        self.context
            .audit(
                AuditKind::KeysSealed,
                None,
                &ClientInfo::new(None, Some("tessera")),
                json!({ "kids": kids, "kek": self.kek.id().to_string() }),
            )
            .await
    }

    /// Reloads the keys if the last load is older than `seconds`; true if it did.
    async fn reload_if_stale(&self, seconds: i64) -> bool {
        let now = self.context.now().unix_timestamp();
        let last = self.loaded_at.load(Ordering::Relaxed);
        if now - last < seconds
            || self
                .loaded_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        self.reload().await.is_ok()
    }
}

/// The key set at start: makes sure a current key of the configured
/// algorithm exists (sealed under `kek`), opens every stored key, sealing
/// those still in clear (their ids are returned, to be audited).
async fn open_keys(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    config: &TesseraConfig,
    now: OffsetDateTime,
) -> Result<(Keyring, Vec<String>), CoreError> {
    // Every stored key opens with `kek` before a key is added under it.
    let (mut keys, sealed) = key_wrap::load_keys(store, kek).await?;
    let current_access = |keys: &[SigningKey]| {
        keys.iter()
            .find(|k| k.purpose == KeyPurpose::Access && k.retired_at.is_none())
            .map(|k| k.algorithm)
    };
    if current_access(&keys).is_none() {
        let key = generate(config.algorithm, KeyPurpose::Access, now).await?;
        store
            .ensure_current_key(&key_wrap::seal(kek, &key)?)
            .await?;
        keys = key_wrap::load_keys(store, kek).await?.0;
    }
    if current_access(&keys) != Some(config.algorithm) {
        let key = generate(config.algorithm, KeyPurpose::Access, now).await?;
        store
            .rotate_key(
                &key_wrap::seal(kek, &key)?,
                now,
                now + config.tokens.revocation_ttl(),
            )
            .await?;
        keys = key_wrap::load_keys(store, kek).await?.0;
    }
    let keyring = Keyring::new(&keys, now).map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok((keyring, sealed))
}

/// A new key from the OS CSPRNG, made off the async workers (an RSA key
/// takes a while).
async fn generate(
    algorithm: Algorithm,
    purpose: KeyPurpose,
    now: OffsetDateTime,
) -> Result<SigningKey, CoreError> {
    let made = tokio::task::spawn_blocking(move || SigningKey::generate(algorithm, now))
        .await
        .map_err(|e| CoreError::Internal(format!("key generation stopped: {e}")))?
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(match purpose {
        KeyPurpose::Access => made,
        KeyPurpose::IdToken => made.for_id_tokens(),
    })
}
