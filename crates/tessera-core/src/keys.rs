//! Signing keys: generated here from the OS CSPRNG, kept in the store so that
//! every node signs and verifies with the same set, rotated with an overlap
//! so tokens signed by a retired key verify until they expire.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
    RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Header};
use serde::Serialize;
use tessera_verify::{KeySet, VerifyingKey};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::jws::Signer;
use crate::secret::{fill_random, random_token};

/// The signing algorithms Tessera issues tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (the default).
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
    /// HMAC-SHA256 with a shared secret; only by explicit choice, never published.
    HS256,
}

impl Algorithm {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
            Algorithm::HS256 => "HS256",
        }
    }

    /// Parses a JOSE `alg` name (exact, case-sensitive, as RFC 7515 says).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "EdDSA" => Some(Algorithm::EdDSA),
            "ES256" => Some(Algorithm::ES256),
            "RS256" => Some(Algorithm::RS256),
            "HS256" => Some(Algorithm::HS256),
            _ => None,
        }
    }

    /// Whether the key is asymmetric, hence publishable in the JWKS.
    pub fn is_public(self) -> bool {
        !matches!(self, Algorithm::HS256)
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

/// What a key signs. Access tokens are signed with the configured
/// algorithm; ID tokens with RS256 unless a client asked for the configured
/// one, so when that is not RS256 an RS256 key is kept beside it, rotated
/// with it, and never accepted for an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// Access tokens (and ID tokens in the configured algorithm).
    Access,
    /// ID tokens only (RS256, when the configured algorithm differs).
    IdToken,
}

impl KeyPurpose {
    /// The name stored with the key.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Access => "access",
            KeyPurpose::IdToken => "id_token",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "access" => Some(KeyPurpose::Access),
            "id_token" => Some(KeyPurpose::IdToken),
            _ => None,
        }
    }
}

/// A signing key in clear, as this process holds it in memory: the private
/// material (PKCS#8 DER, or the HMAC secret) never leaves the server and is
/// stored only sealed (see [`crate::key_wrap`]).
#[derive(Clone)]
pub struct SigningKey {
    /// Key id, the JWT `kid`.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// What it signs.
    pub purpose: KeyPurpose,
    /// PKCS#8 DER (asymmetric) or raw secret (HS256).
    pub private: Zeroizing<Vec<u8>>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it stopped signing; `None` while it is the current key.
    pub retired_at: Option<OffsetDateTime>,
    /// When every token it signed has expired: it leaves the JWKS then.
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("purpose", &self.purpose)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A key as the store keeps it: its private material sealed under the
/// key-encryption key ([`crate::key_wrap`]).
#[derive(Clone)]
pub struct StoredKey {
    /// Key id, the JWT `kid`.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// What it signs.
    pub purpose: KeyPurpose,
    /// The sealed private material. Rows written before keys were sealed
    /// hold it in clear until the next start seals them.
    pub sealed: Vec<u8>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it stopped signing; `None` while it is the current key.
    pub retired_at: Option<OffsetDateTime>,
    /// When every token it signed has expired: it leaves the JWKS then.
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("purpose", &self.purpose)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Key handling failed.
#[derive(Debug, thiserror::Error)]
#[error("signing key error: {0}")]
pub struct KeyError(pub String);

impl SigningKey {
    /// A new key of `algorithm`, from the OS CSPRNG.
    pub fn generate(algorithm: Algorithm, now: OffsetDateTime) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let err = |what: &str| KeyError(format!("cannot generate {what} key"));
        let private: Vec<u8> = match algorithm {
            Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| err("Ed25519"))?
                .as_ref()
                .to_vec(),
            Algorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| err("P-256"))?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::RS256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| err("RSA"))?;
                let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                    .map_err(|_| err("RSA"))?;
                der.as_ref().to_vec()
            }
            Algorithm::HS256 => {
                let mut secret = vec![0u8; 32];
                fill_random(&mut secret).map_err(|_| err("HMAC"))?;
                secret
            }
        };
        Ok(Self {
            kid: random_token(12).map_err(|_| err("an id for the"))?,
            algorithm,
            purpose: KeyPurpose::Access,
            private: Zeroizing::new(private),
            created_at: now,
            retired_at: None,
            expires_at: None,
        })
    }

    /// The same key, for ID tokens only.
    pub fn for_id_tokens(mut self) -> Self {
        self.purpose = KeyPurpose::IdToken;
        self
    }

    /// Whether the key still belongs in the key set at `now`.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

/// A public key in JWK form (RFC 7517), as published in the JWKS.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// Key type: `OKP`, `EC` or `RSA`.
    pub kty: &'static str,
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// Curve (`Ed25519`, `P-256`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<&'static str>,
    /// Curve x coordinate / Ed25519 public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Curve y coordinate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// A key ready to sign and verify.
pub struct PreparedKey {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// What it signs.
    pub purpose: KeyPurpose,
    pub(crate) signer: Signer,
    pub(crate) verifying: VerifyingKey,
    /// The same public key, for checking ID tokens (which
    /// `tessera-verify`, made for access tokens, does not).
    pub(crate) decoding: DecodingKey,
    /// The public half, `None` for HS256.
    pub jwk: Option<Jwk>,
    /// When it leaves the key set.
    pub expires_at: Option<OffsetDateTime>,
    /// Whether it is the signing key.
    pub current: bool,
}

impl std::fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl PreparedKey {
    /// A compact JWS of `claims` signed with this key, its header naming the
    /// key and `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(self.algorithm.jwt());
        header.typ = Some(typ.into());
        header.kid = Some(self.kid.clone());
        self.signer
            .sign(&header, claims)
            .map_err(|e| KeyError(format!("signing with key {} failed: {e}", self.kid)))
    }

    /// Parses stored material into signing and verifying keys.
    pub fn prepare(key: &SigningKey) -> Result<Self, KeyError> {
        let bad = |why: &str| KeyError(format!("stored key {} is unusable: {why}", key.kid));
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let signer = Signer::new(key.algorithm, &key.private)?;
        let (verifying, decoding, jwk) = match key.algorithm {
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(&key.private).map_err(|_| bad("Ed25519"))?;
                let public = pair.public_key().as_ref().to_vec();
                let jwk = Jwk {
                    kty: "OKP",
                    crv: Some("Ed25519"),
                    x: Some(b64(&public)),
                    ..jwk_base(key)
                };
                (
                    VerifyingKey::ed25519(&public).map_err(|_| bad("Ed25519 public key"))?,
                    DecodingKey::from_ed_der(&public),
                    Some(jwk),
                )
            }
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.private)
                    .map_err(|_| bad("P-256"))?;
                let point = pair.public_key().as_ref().to_vec();
                let (x, y) = match point.split_first() {
                    Some((4, xy)) if xy.len() == 64 => xy.split_at(32),
                    _ => return Err(bad("P-256 point")),
                };
                let jwk = Jwk {
                    kty: "EC",
                    crv: Some("P-256"),
                    x: Some(b64(x)),
                    y: Some(b64(y)),
                    ..jwk_base(key)
                };
                (
                    VerifyingKey::p256(&point).map_err(|_| bad("P-256 public key"))?,
                    DecodingKey::from_ec_der(&point),
                    Some(jwk),
                )
            }
            Algorithm::RS256 => {
                let pair =
                    aws_lc_rs::rsa::KeyPair::from_pkcs8(&key.private).map_err(|_| bad("RSA"))?;
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let jwk = Jwk {
                    kty: "RSA",
                    n: Some(b64(&components.n)),
                    e: Some(b64(&components.e)),
                    ..jwk_base(key)
                };
                (
                    VerifyingKey::rsa(&components.n, &components.e)
                        .map_err(|_| bad("RSA public key"))?,
                    DecodingKey::from_rsa_raw_components(&components.n, &components.e),
                    Some(jwk),
                )
            }
            Algorithm::HS256 => (
                VerifyingKey::hmac(&key.private),
                DecodingKey::from_secret(&key.private),
                None,
            ),
        };
        Ok(Self {
            kid: key.kid.clone(),
            algorithm: key.algorithm,
            purpose: key.purpose,
            signer,
            verifying,
            decoding,
            jwk,
            expires_at: key.expires_at,
            current: key.retired_at.is_none(),
        })
    }
}

fn jwk_base(key: &SigningKey) -> Jwk {
    Jwk {
        kty: "",
        kid: key.kid.clone(),
        alg: key.algorithm.as_str(),
        use_: "sig",
        crv: None,
        x: None,
        y: None,
        n: None,
        e: None,
    }
}

/// The keys in force: one access-token signing key and every access key
/// still verifying; beside them, the ID-token keys (see [`KeyPurpose`]).
#[derive(Debug, Clone)]
pub struct Keyring {
    current: Arc<PreparedKey>,
    by_kid: HashMap<String, Arc<PreparedKey>>,
    id_current: Option<Arc<PreparedKey>>,
    id_by_kid: HashMap<String, Arc<PreparedKey>>,
}

impl Keyring {
    /// Builds a keyring from stored keys: exactly one access key must be
    /// current; at most one ID-token key is.
    pub fn new(keys: &[SigningKey], now: OffsetDateTime) -> Result<Self, KeyError> {
        let mut by_kid = HashMap::new();
        let mut id_by_kid = HashMap::new();
        let mut current = None;
        let mut id_current = None;
        for key in keys.iter().filter(|k| k.is_valid_at(now)) {
            let prepared = Arc::new(PreparedKey::prepare(key)?);
            let (map, newest) = match key.purpose {
                KeyPurpose::Access => (&mut by_kid, &mut current),
                KeyPurpose::IdToken => (&mut id_by_kid, &mut id_current),
            };
            if prepared.current {
                // Should two be current (a race between nodes at first start), the newest signs.
                let newer = newest.as_ref().is_none_or(
                    |(created, _): &(OffsetDateTime, Arc<PreparedKey>)| key.created_at > *created,
                );
                if newer {
                    *newest = Some((key.created_at, prepared.clone()));
                }
            }
            map.insert(key.kid.clone(), prepared);
        }
        let (_, current) = current.ok_or_else(|| KeyError("no current signing key".into()))?;
        Ok(Self {
            current,
            by_kid,
            id_current: id_current.map(|(_, key)| key),
            id_by_kid,
        })
    }

    /// The access-token signing key.
    pub fn current(&self) -> &Arc<PreparedKey> {
        &self.current
    }

    /// An access-token verifying key by `kid`.
    pub fn get(&self, kid: &str) -> Option<&Arc<PreparedKey>> {
        self.by_kid.get(kid)
    }

    /// The key that signs ID tokens in `algorithm`: the access key when it
    /// is of that algorithm, else the current ID-token key if it is.
    pub fn id_token_signer(&self, algorithm: Algorithm) -> Option<&Arc<PreparedKey>> {
        if self.current.algorithm == algorithm {
            return Some(&self.current);
        }
        self.id_current
            .as_ref()
            .filter(|key| key.algorithm == algorithm)
    }

    /// The current ID-token key, when one is kept.
    pub fn id_token_key(&self) -> Option<&Arc<PreparedKey>> {
        self.id_current.as_ref()
    }

    /// A key that may have signed an ID token, by `kid` (either purpose).
    pub fn id_token_verifier(&self, kid: &str) -> Option<&Arc<PreparedKey>> {
        self.id_by_kid.get(kid).or_else(|| self.by_kid.get(kid))
    }

    /// The published keys (asymmetric ones still valid at `now`), both
    /// purposes.
    pub fn jwks(&self, now: OffsetDateTime) -> Vec<Jwk> {
        let mut keys: Vec<&Arc<PreparedKey>> = self
            .by_kid
            .values()
            .chain(self.id_by_kid.values())
            .filter(|k| k.expires_at.is_none_or(|end| now < end))
            .collect();
        // Current keys first, access before ID-token keys, then by kid, so
        // the document is stable.
        keys.sort_by(|a, b| {
            b.current
                .cmp(&a.current)
                .then_with(|| (a.purpose as u8).cmp(&(b.purpose as u8)))
                .then_with(|| a.kid.cmp(&b.kid))
        });
        keys.into_iter().filter_map(|k| k.jwk.clone()).collect()
    }

    /// Ids of every key in the ring, both purposes.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self
            .by_kid
            .keys()
            .chain(self.id_by_kid.keys())
            .cloned()
            .collect();
        kids.sort();
        kids
    }
}

/// The server checks tokens with the same code as every outside verifier
/// (`tessera-verify`): the keyring's access keys are its key set (an
/// ID-token key never verifies an access token).
impl KeySet for Keyring {
    fn key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.by_kid.get(kid).map(|k| &k.verifying)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_prepares_and_publishes() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        for alg in [
            Algorithm::EdDSA,
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::HS256,
        ] {
            let key = SigningKey::generate(alg, now)?;
            assert_eq!(key.kid.len(), 16);
            let prepared = PreparedKey::prepare(&key)?;
            assert!(prepared.current);
            assert_eq!(prepared.jwk.is_some(), alg.is_public(), "{alg:?}");
            if let Some(jwk) = &prepared.jwk {
                assert_eq!(jwk.alg, alg.as_str());
                assert_eq!(jwk.kid, key.kid);
                let text = serde_json::to_string(jwk).map_err(|e| KeyError(e.to_string()))?;
                assert!(!text.contains("\"d\""), "private part published: {text}");
            }
        }
        Ok(())
    }

    #[test]
    fn keyring_publishes_only_valid_public_keys_current_first() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        let mut old = SigningKey::generate(Algorithm::EdDSA, now)?;
        old.retired_at = Some(now);
        old.expires_at = Some(now + time::Duration::minutes(10));
        let mut gone = SigningKey::generate(Algorithm::EdDSA, now)?;
        gone.retired_at = Some(now - time::Duration::hours(1));
        gone.expires_at = Some(now - time::Duration::minutes(1));
        let current = SigningKey::generate(Algorithm::ES256, now)?;
        let ring = Keyring::new(&[old.clone(), gone.clone(), current.clone()], now)?;
        assert_eq!(ring.current().kid, current.kid);
        let kids: Vec<String> = ring.jwks(now).into_iter().map(|j| j.kid).collect();
        assert_eq!(kids, [current.kid.clone(), old.kid.clone()]);
        assert!(ring.get(&gone.kid).is_none());
        assert!(ring.jwks(now + time::Duration::minutes(11)).len() == 1);
        Ok(())
    }

    #[test]
    fn id_token_keys_sign_id_tokens_only() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        let access = SigningKey::generate(Algorithm::EdDSA, now)?;
        let id_key = SigningKey::generate(Algorithm::RS256, now)?.for_id_tokens();
        let ring = Keyring::new(&[access.clone(), id_key.clone()], now)?;
        assert_eq!(ring.current().kid, access.kid);
        assert_eq!(
            ring.id_token_key().map(|k| k.kid.as_str()),
            Some(id_key.kid.as_str())
        );
        // Published, and found for ID tokens, but never for access tokens.
        assert_eq!(ring.jwks(now).len(), 2);
        assert!(KeySet::key(&ring, &id_key.kid).is_none());
        assert!(KeySet::key(&ring, &access.kid).is_some());
        assert!(ring.id_token_verifier(&id_key.kid).is_some());
        assert!(ring.id_token_verifier(&access.kid).is_some());
        let signer = |alg| ring.id_token_signer(alg).map(|k| k.kid.clone());
        assert_eq!(signer(Algorithm::RS256), Some(id_key.kid.clone()));
        assert_eq!(signer(Algorithm::EdDSA), Some(access.kid.clone()));
        assert_eq!(signer(Algorithm::ES256), None);
        // An ID-token key alone is no key set.
        assert!(Keyring::new(&[id_key], now).is_err());
        Ok(())
    }

    #[test]
    fn no_current_key_is_an_error() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        let mut old = SigningKey::generate(Algorithm::EdDSA, now)?;
        old.retired_at = Some(now);
        assert!(Keyring::new(&[old], now).is_err());
        Ok(())
    }
}
