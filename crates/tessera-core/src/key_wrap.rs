//! Signing keys at rest: private material is sealed with AES-256-GCM under a
//! key-encryption key (KEK) kept outside the store, so a copy of the
//! database alone cannot sign a token.
//!
//! Sealed format, version 1:
//!
//! ```text
//! "tkw" 0x01 | KEK id (8 bytes) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)
//! ```
//!
//! The associated data binds the header, the algorithm and the `kid`: sealed
//! material moved to another key's row, or a header edited to name another
//! KEK, fails to open. The KEK id (a truncated SHA-256 of the KEK) lets a
//! wrong KEK be named in a clear error instead of failing as tampering.
//! Clear material from before sealing existed is PKCS#8 DER (first byte
//! `0x30`) or a 32-byte HMAC secret (shorter than any sealed value), so it
//! is never mistaken for a sealed value.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditKind};
use crate::client::ClientInfo;
use crate::keys::{SigningKey, StoredKey};
use crate::secret::{RandomError, fill_random};
use crate::store::{Keys, Store, StoreError};

/// Bytes in a key-encryption key (AES-256).
pub const KEK_BYTES: usize = 32;
const MAGIC: &[u8; 3] = b"tkw";
const VERSION: u8 = 1;
const ID_BYTES: usize = 8;
const HEADER_LEN: usize = MAGIC.len() + 1 + ID_BYTES;
const TAG_LEN: usize = 16;
/// No sealed value is shorter: header, nonce and tag around an empty plaintext.
const MIN_SEALED_LEN: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// The short public name of a key-encryption key: the first 8 bytes of a
/// SHA-256 of it, shown in hex. It tells keys apart, and reveals nothing
/// usable about the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KekId([u8; ID_BYTES]);

impl std::fmt::Display for KekId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for KekId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KekId({self})")
    }
}

/// The key that seals signing keys at rest. Wiped from memory on drop;
/// never printed (its `Debug` shows only its id); no `Display`.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    bytes: Zeroizing<[u8; KEK_BYTES]>,
    id: KekId,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyEncryptionKey({}, [redacted])", self.id)
    }
}

/// A key-encryption key given in configuration is malformed.
#[derive(Debug, thiserror::Error)]
pub enum KekFormatError {
    /// Not base64.
    #[error("is not base64 (write 32 random bytes in base64, e.g. `openssl rand -base64 32`)")]
    NotBase64,
    /// Base64 of the wrong number of bytes.
    #[error(
        "decodes to {0} bytes; it must be exactly 32 (e.g. the output of `openssl rand -base64 32`)"
    )]
    WrongLength(usize),
}

impl KeyEncryptionKey {
    /// A new key from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = Zeroizing::new([0u8; KEK_BYTES]);
        fill_random(bytes.as_mut_slice())?;
        Ok(Self::from_bytes(bytes))
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: Zeroizing<[u8; KEK_BYTES]>) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(b"tessera key-encryption key id v1\0");
        context.update(bytes.as_slice());
        let digest = context.finish();
        let digest = digest.as_ref();
        let mut id = [0u8; ID_BYTES];
        id.iter_mut().zip(digest.iter()).for_each(|(d, s)| *d = *s);
        Self {
            bytes,
            id: KekId(id),
        }
    }

    /// Parses the configured form: base64 (padded or not) of exactly 32
    /// bytes, surrounding white space ignored (a file's trailing newline).
    pub fn from_base64(text: &str) -> Result<Self, KekFormatError> {
        let text = text.trim();
        let decoded = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| STANDARD_NO_PAD.decode(text))
                .map_err(|_| KekFormatError::NotBase64)?,
        );
        let mut bytes = Zeroizing::new([0u8; KEK_BYTES]);
        if decoded.len() != KEK_BYTES {
            return Err(KekFormatError::WrongLength(decoded.len()));
        }
        bytes.copy_from_slice(&decoded);
        Ok(Self::from_bytes(bytes))
    }

    /// The configured form (padded base64), for writing a generated key to its file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes.as_slice()))
    }

    /// Its public name.
    pub fn id(&self) -> KekId {
        self.id
    }

    fn cipher(&self) -> Result<LessSafeKey, WrapError> {
        UnboundKey::new(&AES_256_GCM, self.bytes.as_slice())
            .map(LessSafeKey::new)
            .map_err(|_| WrapError::Crypto)
    }
}

/// Loading or re-wrapping the stored keys failed: in the store, or in
/// sealing or opening a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be sealed or opened.
    #[error(transparent)]
    Wrap(#[from] WrapError),
}

/// Sealing or opening a signing key failed.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    /// The key was sealed under another key-encryption key.
    #[error(
        "signing keys are wrapped under key-encryption key {found}; the configured key is {configured} \
         (configure the key they were wrapped under, or re-wrap them with `tessera keys rewrap`)"
    )]
    WrongKek {
        /// The KEK the stored key names.
        found: KekId,
        /// The KEK in force.
        configured: KekId,
    },
    /// Authentication failed: the sealed value was altered or moved.
    #[error(
        "signing key {kid} does not decrypt: its stored form was altered or belongs to another key"
    )]
    Tampered {
        /// The key's id.
        kid: String,
    },
    /// A sealed format this version does not know.
    #[error("signing key {kid} is sealed in an unknown format (version {version})")]
    UnknownVersion {
        /// The key's id.
        kid: String,
        /// The version byte found.
        version: u8,
    },
    /// The material is in clear (written before keys were sealed).
    #[error("signing key {kid} is stored in clear")]
    Clear {
        /// The key's id.
        kid: String,
    },
    /// A key sealed under neither the old nor the new KEK met during a re-wrap.
    #[error(
        "signing key {kid} is wrapped under key-encryption key {found}, which is neither the old key ({from}) nor the configured one ({to})"
    )]
    Foreign {
        /// The key's id.
        kid: String,
        /// The KEK it names.
        found: KekId,
        /// The old KEK given.
        from: KekId,
        /// The KEK in force.
        to: KekId,
    },
    /// A stored key changed while it was being re-wrapped.
    #[error("signing key {kid} changed while it was being re-wrapped; run the command again")]
    Raced {
        /// The key's id.
        kid: String,
    },
    /// The cipher could not be set up.
    #[error("the AES-256-GCM cipher failed")]
    Crypto,
    /// No randomness for a nonce.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The KEK a stored value is sealed under, or `None` when it is in clear.
pub fn sealed_under(material: &[u8]) -> Option<KekId> {
    if material.len() < MIN_SEALED_LEN || !material.starts_with(MAGIC) {
        return None;
    }
    let id = material.get(MAGIC.len() + 1..HEADER_LEN)?;
    <[u8; ID_BYTES]>::try_from(id).ok().map(KekId)
}

/// The associated data: header, algorithm and `kid`.
fn associated_data(header: &[u8], key_algorithm: &str, kid: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + key_algorithm.len() + 1 + kid.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(key_algorithm.as_bytes());
    aad.push(0);
    aad.extend_from_slice(kid.as_bytes());
    aad
}

/// Seals `key`'s private material under `kek` for the store.
pub fn seal(kek: &KeyEncryptionKey, key: &SigningKey) -> Result<StoredKey, WrapError> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.extend_from_slice(&kek.id.0);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let aad = associated_data(&header, key.algorithm.as_str(), &key.kid);
    let mut in_out = Zeroizing::new(key.private.to_vec());
    let tag = kek
        .cipher()?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_slice()),
            in_out.as_mut_slice(),
        )
        .map_err(|_| WrapError::Crypto)?;
    let mut sealed = header;
    sealed.reserve(NONCE_LEN + in_out.len() + TAG_LEN);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&in_out);
    sealed.extend_from_slice(tag.as_ref());
    Ok(StoredKey {
        kid: key.kid.clone(),
        algorithm: key.algorithm,
        purpose: key.purpose,
        sealed,
        created_at: key.created_at,
        retired_at: key.retired_at,
        expires_at: key.expires_at,
    })
}

/// Opens a stored key sealed under `kek`.
pub fn unseal(kek: &KeyEncryptionKey, key: &StoredKey) -> Result<SigningKey, WrapError> {
    let found = sealed_under(&key.sealed).ok_or_else(|| WrapError::Clear {
        kid: key.kid.clone(),
    })?;
    match key.sealed.get(MAGIC.len()) {
        Some(&VERSION) => {}
        version => {
            return Err(WrapError::UnknownVersion {
                kid: key.kid.clone(),
                version: version.copied().unwrap_or_default(),
            });
        }
    }
    if found != kek.id {
        return Err(WrapError::WrongKek {
            found,
            configured: kek.id,
        });
    }
    let tampered = || WrapError::Tampered {
        kid: key.kid.clone(),
    };
    let (header, rest) = key
        .sealed
        .split_at_checked(HEADER_LEN)
        .ok_or_else(tampered)?;
    let (nonce, ciphertext) = rest.split_at_checked(NONCE_LEN).ok_or_else(tampered)?;
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| tampered())?;
    let aad = associated_data(header, key.algorithm.as_str(), &key.kid);
    let mut in_out = Zeroizing::new(ciphertext.to_vec());
    let clear_len = kek
        .cipher()?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_slice()),
            in_out.as_mut_slice(),
        )
        .map_err(|_| tampered())?
        .len();
    in_out.truncate(clear_len);
    Ok(SigningKey {
        kid: key.kid.clone(),
        algorithm: key.algorithm,
        purpose: key.purpose,
        private: in_out,
        created_at: key.created_at,
        retired_at: key.retired_at,
        expires_at: key.expires_at,
    })
}

/// Seals a secret value that is not a signing key (a TOTP secret) under
/// `kek`, in the same format; `label` (what the value is and whose) is
/// bound as associated data, so a sealed value moved to another row does
/// not open.
pub fn seal_value(kek: &KeyEncryptionKey, label: &str, clear: &[u8]) -> Result<Vec<u8>, WrapError> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.extend_from_slice(&kek.id.0);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let aad = associated_data(&header, VALUE_ALGORITHM, label);
    let mut in_out = Zeroizing::new(clear.to_vec());
    let tag = kek
        .cipher()?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_slice()),
            in_out.as_mut_slice(),
        )
        .map_err(|_| WrapError::Crypto)?;
    let mut sealed = header;
    sealed.reserve(NONCE_LEN + in_out.len() + TAG_LEN);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&in_out);
    sealed.extend_from_slice(tag.as_ref());
    Ok(sealed)
}

/// Opens a value sealed by [`seal_value`] with the same `label`.
pub fn open_value(
    kek: &KeyEncryptionKey,
    label: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, WrapError> {
    let tampered = || WrapError::Tampered {
        kid: label.to_owned(),
    };
    let found = sealed_under(sealed).ok_or_else(tampered)?;
    if sealed.get(MAGIC.len()) != Some(&VERSION) {
        return Err(tampered());
    }
    if found != kek.id {
        return Err(WrapError::WrongKek {
            found,
            configured: kek.id,
        });
    }
    let (header, rest) = sealed.split_at_checked(HEADER_LEN).ok_or_else(tampered)?;
    let (nonce, ciphertext) = rest.split_at_checked(NONCE_LEN).ok_or_else(tampered)?;
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| tampered())?;
    let aad = associated_data(header, VALUE_ALGORITHM, label);
    let mut in_out = Zeroizing::new(ciphertext.to_vec());
    let clear_len = kek
        .cipher()?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_slice()),
            in_out.as_mut_slice(),
        )
        .map_err(|_| tampered())?
        .len();
    in_out.truncate(clear_len);
    Ok(in_out)
}

/// The label a user's TOTP secret is sealed with: bound to its user, so a
/// sealed secret copied to another user's row does not open.
pub fn totp_label(user_id: uuid::Uuid) -> String {
    format!("totp:{user_id}")
}

/// Stands where a signing key's algorithm goes in the associated data of a
/// sealed value: no algorithm has this name, so a value never opens as a key.
const VALUE_ALGORITHM: &str = "sealed-value";

/// A stored key whose material is in clear, taken as it is.
fn from_clear(key: &StoredKey) -> SigningKey {
    SigningKey {
        kid: key.kid.clone(),
        algorithm: key.algorithm,
        purpose: key.purpose,
        private: Zeroizing::new(key.sealed.clone()),
        created_at: key.created_at,
        retired_at: key.retired_at,
        expires_at: key.expires_at,
    }
}

/// Every stored key, opened with `kek`. Keys still in clear (written before
/// keys were sealed) are then sealed in the store; their ids are returned,
/// to be audited. Nothing is written unless every sealed key opens (a wrong
/// KEK must not seal anything under itself). The replacement is a
/// compare-and-swap on the clear bytes, so nodes starting at once do no
/// harm: a loser's key is the same material, sealed by the winner.
pub async fn load_keys(
    store: &dyn Keys,
    kek: &KeyEncryptionKey,
) -> Result<(Vec<SigningKey>, Vec<String>), KeyStoreError> {
    let stored = store.keys().await?;
    let mut keys = Vec::with_capacity(stored.len());
    let mut clear = Vec::new();
    for key in &stored {
        if sealed_under(&key.sealed).is_some() {
            keys.push(unseal(kek, key)?);
        } else {
            clear.push(key);
        }
    }
    let mut sealed_now = Vec::new();
    for key in clear {
        let opened = from_clear(key);
        let sealed = seal(kek, &opened)?;
        if store
            .replace_sealed_key(&key.kid, &key.sealed, &sealed.sealed)
            .await?
        {
            sealed_now.push(key.kid.clone());
        }
        keys.push(opened);
    }
    Ok((keys, sealed_now))
}

/// What a re-wrap did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rewrapped {
    /// Keys moved from the old KEK to the new one.
    pub rewrapped: Vec<String>,
    /// Keys found in clear and sealed under the new KEK.
    pub sealed: Vec<String>,
    /// Keys already under the new KEK (an earlier, interrupted run).
    pub unchanged: Vec<String>,
    /// TOTP secrets moved from the old KEK to the new one (the others were
    /// already under it).
    pub totp_secrets: usize,
}

/// Re-seals every stored key from `from` to `to`, one compare-and-swap per
/// key, and audits it. Safe to run again after an interruption: keys
/// already under `to` are left alone. Nothing is changed when some key is
/// under neither KEK (or does not decrypt).
pub async fn rewrap(
    store: &dyn Store,
    from: &KeyEncryptionKey,
    to: &KeyEncryptionKey,
    client: &ClientInfo,
    now: OffsetDateTime,
) -> Result<Rewrapped, KeyStoreError> {
    let stored = store.keys().await?;
    let totp = store.sealed_totp_secrets().await?;
    // Everything is opened before anything is written.
    let mut plan = Vec::with_capacity(stored.len());
    let mut done = Rewrapped::default();
    let mut totp_plan = Vec::with_capacity(totp.len());
    for (user_id, sealed) in &totp {
        let label = totp_label(*user_id);
        match sealed_under(sealed) {
            Some(found) if found == to.id => {
                open_value(to, &label, sealed)?;
            }
            Some(found) if found == from.id => {
                totp_plan.push((*user_id, sealed, open_value(from, &label, sealed)?));
            }
            found => {
                return Err(WrapError::Foreign {
                    kid: label,
                    found: found.unwrap_or(KekId([0; ID_BYTES])),
                    from: from.id,
                    to: to.id,
                }
                .into());
            }
        }
    }
    for key in &stored {
        match sealed_under(&key.sealed) {
            Some(found) if found == to.id => {
                unseal(to, key)?;
                done.unchanged.push(key.kid.clone());
            }
            Some(found) if found == from.id => plan.push((key, unseal(from, key)?, false)),
            Some(found) => {
                return Err(WrapError::Foreign {
                    kid: key.kid.clone(),
                    found,
                    from: from.id,
                    to: to.id,
                }
                .into());
            }
            None => plan.push((key, from_clear(key), true)),
        }
    }
    for (old, clear, was_clear) in plan {
        let new = seal(to, &clear)?;
        if !store
            .replace_sealed_key(&old.kid, &old.sealed, &new.sealed)
            .await?
        {
            return Err(WrapError::Raced {
                kid: old.kid.clone(),
            }
            .into());
        }
        if was_clear {
            done.sealed.push(old.kid.clone());
        } else {
            done.rewrapped.push(old.kid.clone());
        }
    }
    for (user_id, old, clear) in totp_plan {
        let new = seal_value(to, &totp_label(user_id), &clear)?;
        if !store.replace_totp_secret(user_id, old, &new).await? {
            return Err(WrapError::Raced {
                kid: totp_label(user_id),
            }
            .into());
        }
        done.totp_secrets += 1;
    }
    let event = AuditEvent::new(
        AuditKind::KeysRewrapped,
        None,
        client,
        now,
        json!({
            "from": from.id.to_string(),
            "to": to.id.to_string(),
            "rewrapped": done.rewrapped,
            "sealed": done.sealed,
            "unchanged": done.unchanged,
            "totp_secrets": done.totp_secrets,
        }),
    );
    store.append_audit(&event).await?;
    event.log();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, PreparedKey};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn key(algorithm: Algorithm) -> Result<SigningKey, crate::keys::KeyError> {
        SigningKey::generate(algorithm, OffsetDateTime::now_utc())
    }

    #[test]
    fn values_open_only_with_their_label_and_kek() -> TestResult {
        let kek = KeyEncryptionKey::generate()?;
        let clear = b"12345678901234567890";
        let sealed = seal_value(&kek, "totp:a", clear)?;
        assert!(!sealed.windows(clear.len()).any(|w| w == clear));
        assert_eq!(sealed_under(&sealed), Some(kek.id()));
        assert_eq!(open_value(&kek, "totp:a", &sealed)?.as_slice(), clear);
        assert!(matches!(
            open_value(&kek, "totp:b", &sealed),
            Err(WrapError::Tampered { .. })
        ));
        let other = KeyEncryptionKey::generate()?;
        assert!(matches!(
            open_value(&other, "totp:a", &sealed),
            Err(WrapError::WrongKek { .. })
        ));
        let mut flipped = sealed.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert!(open_value(&kek, "totp:a", &flipped).is_err());
        assert!(open_value(&kek, "totp:a", clear).is_err());
        Ok(())
    }

    #[test]
    fn every_algorithm_round_trips_and_the_stored_form_is_not_the_key() -> TestResult {
        let kek = KeyEncryptionKey::generate()?;
        for algorithm in [
            Algorithm::EdDSA,
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::HS256,
        ] {
            let clear = key(algorithm)?;
            let stored = seal(&kek, &clear)?;
            assert_eq!(sealed_under(&stored.sealed), Some(kek.id()));
            assert!(
                !stored
                    .sealed
                    .windows(clear.private.len())
                    .any(|w| w == clear.private.as_slice()),
                "{algorithm:?}: clear material inside the sealed form"
            );
            let opened = unseal(&kek, &stored)?;
            assert_eq!(opened.private.as_slice(), clear.private.as_slice());
            assert_eq!(opened.kid, clear.kid);
            PreparedKey::prepare(&opened)?;
            // A fresh nonce each time: sealing twice never gives the same bytes.
            assert_ne!(seal(&kek, &clear)?.sealed, stored.sealed);
        }
        Ok(())
    }

    #[test]
    fn tampering_moving_and_wrong_keys_are_refused() -> TestResult {
        let kek = KeyEncryptionKey::generate()?;
        let stored = seal(&kek, &key(Algorithm::EdDSA)?)?;

        for at in [HEADER_LEN, HEADER_LEN + NONCE_LEN, stored.sealed.len() - 1] {
            let mut bad = stored.clone();
            if let Some(b) = bad.sealed.get_mut(at) {
                *b ^= 1;
            }
            assert!(
                matches!(unseal(&kek, &bad), Err(WrapError::Tampered { .. })),
                "flipped byte {at} accepted"
            );
        }

        let mut moved = stored.clone();
        moved.kid = "another-key-id".into();
        assert!(matches!(
            unseal(&kek, &moved),
            Err(WrapError::Tampered { .. })
        ));
        let mut relabelled = stored.clone();
        relabelled.algorithm = Algorithm::HS256;
        assert!(matches!(
            unseal(&kek, &relabelled),
            Err(WrapError::Tampered { .. })
        ));

        let other = KeyEncryptionKey::generate()?;
        let message = match unseal(&other, &stored) {
            Err(e @ WrapError::WrongKek { .. }) => e.to_string(),
            other => return Err(format!("wrong KEK gave {other:?}").into()),
        };
        assert!(
            message.contains(&format!(
                "signing keys are wrapped under key-encryption key {}; the configured key is {}",
                kek.id(),
                other.id()
            )),
            "{message}"
        );

        // A header edited to name the other KEK still fails: it is authenticated.
        let mut renamed = stored.clone();
        renamed
            .sealed
            .splice(MAGIC.len() + 1..HEADER_LEN, other.id().0);
        assert!(matches!(
            unseal(&other, &renamed),
            Err(WrapError::Tampered { .. })
        ));

        let mut future = stored.clone();
        if let Some(v) = future.sealed.get_mut(MAGIC.len()) {
            *v = 2;
        }
        assert!(matches!(
            unseal(&kek, &future),
            Err(WrapError::UnknownVersion { version: 2, .. })
        ));
        Ok(())
    }

    #[test]
    fn clear_material_is_never_taken_for_sealed() -> TestResult {
        for algorithm in [
            Algorithm::EdDSA,
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::HS256,
        ] {
            let clear = key(algorithm)?;
            assert_eq!(sealed_under(&clear.private), None, "{algorithm:?}");
        }
        let mut hmac_like = b"tkw\x01".to_vec();
        hmac_like.resize(32, 7);
        assert_eq!(sealed_under(&hmac_like), None);
        Ok(())
    }

    #[test]
    fn keys_parse_from_base64_and_never_print() -> TestResult {
        let kek = KeyEncryptionKey::generate()?;
        let text = kek.to_base64();
        let parsed = KeyEncryptionKey::from_base64(&format!("{}\n", text.as_str()))?;
        assert_eq!(parsed.id(), kek.id());
        let unpadded = text.trim_end_matches('=');
        assert_eq!(KeyEncryptionKey::from_base64(unpadded)?.id(), kek.id());
        assert_eq!(kek.id().to_string().len(), 16);
        let printed = format!("{kek:?}");
        assert!(!printed.contains(text.as_str()), "{printed}");
        assert!(!printed.contains(unpadded), "{printed}");
        assert!(printed.contains("redacted"), "{printed}");
        assert!(matches!(
            KeyEncryptionKey::from_base64("not base64!"),
            Err(KekFormatError::NotBase64)
        ));
        assert!(matches!(
            KeyEncryptionKey::from_base64(&STANDARD.encode([1u8; 16])),
            Err(KekFormatError::WrongLength(16))
        ));
        Ok(())
    }
}
