//! Verifying keys: built from raw public material (the server) or from a
//! published JWK (everyone else), each bound to the one algorithm it serves
//! and parsed once, so checking a signature costs the signature check alone.

use std::collections::HashMap;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::VerifyError;

/// The signature algorithms Tessera signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// Ed25519.
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// HMAC-SHA-256: a shared secret, never published in a JWKS.
    HS256,
}

impl Algorithm {
    /// The JOSE name (`EdDSA`, `ES256`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
            Algorithm::HS256 => "HS256",
        }
    }
}

/// A key that checks signatures of one algorithm only: the key, never the
/// token's header, decides the algorithm (RFC 8725 §3.1).
#[derive(Clone)]
pub struct VerifyingKey {
    algorithm: Algorithm,
    material: Material,
}

/// The key as the signature check uses it.
#[derive(Clone)]
enum Material {
    /// An Ed25519, P-256 or RSA public key, parsed for its algorithm.
    Public(ParsedPublicKey),
    /// An HMAC-SHA-256 secret, boxed: its precomputed state is far larger
    /// than a parsed public key's handle.
    Secret(Box<hmac::Key>),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    fn public(
        algorithm: Algorithm,
        verification: &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
        bytes: &[u8],
    ) -> Result<Self, VerifyError> {
        let key = ParsedPublicKey::new(verification, bytes).map_err(|e| {
            VerifyError::Key(format!("not a {} public key: {e}", algorithm.as_str()))
        })?;
        Ok(Self {
            algorithm,
            material: Material::Public(key),
        })
    }

    /// An Ed25519 public key (32 bytes).
    pub fn ed25519(public: &[u8]) -> Result<Self, VerifyError> {
        Self::public(Algorithm::EdDSA, &ED25519, public)
    }

    /// A P-256 public key as an uncompressed SEC1 point (`04 || x || y`).
    pub fn p256(point: &[u8]) -> Result<Self, VerifyError> {
        Self::public(Algorithm::ES256, &ECDSA_P256_SHA256_FIXED, point)
    }

    /// An RSA public key (2048 to 8192 bits) from its big-endian modulus
    /// and exponent.
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Result<Self, VerifyError> {
        let der = PublicKeyComponents {
            n: modulus,
            e: exponent,
        }
        .as_der()
        .map_err(|_| VerifyError::Key("not an RSA public key".into()))?;
        Self::public(Algorithm::RS256, &RSA_PKCS1_2048_8192_SHA256, der.as_ref())
    }

    /// An HMAC-SHA-256 secret, for the issuer itself: a JWKS never carries
    /// one, and [`VerifyingKey::from_jwk`] refuses them.
    pub fn hmac(secret: &[u8]) -> Self {
        Self {
            algorithm: Algorithm::HS256,
            material: Material::Secret(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
        }
    }

    /// Whether `signature` is this key's signature of `message`, by the
    /// key's own algorithm (an HMAC compared in constant time).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Public(key) => key.verify_sig(message, signature).is_ok(),
            Material::Secret(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }

    /// A public key from its JWK (RFC 7517) and the key id it names. Only
    /// the key types and algorithms Tessera signs with are accepted:
    /// `OKP`/`Ed25519` for EdDSA, `EC`/`P-256` for ES256, `RSA` (2048 bits
    /// or more) for RS256. Symmetric (`oct`) keys and keys marked for
    /// encryption are refused.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<(String, Self), VerifyError> {
        let jwk: Jwk = serde_json::from_value(jwk.clone())
            .map_err(|e| VerifyError::Key(format!("not a JWK: {e}")))?;
        let bytes = |field: Option<&String>, name: &str| {
            field
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or_else(|| VerifyError::Key(format!("{name} missing or not base64url")))
        };
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(VerifyError::Key(format!(
                "{} is not a signing key",
                jwk.kid
            )));
        }
        let key = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => {
                let x = bytes(jwk.x.as_ref(), "x")?;
                if x.len() != 32 {
                    return Err(VerifyError::Key("Ed25519 key is not 32 bytes".into()));
                }
                Self::ed25519(&x)?
            }
            ("EC", Some("P-256")) => {
                let (x, y) = (bytes(jwk.x.as_ref(), "x")?, bytes(jwk.y.as_ref(), "y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(VerifyError::Key(
                        "P-256 coordinates are not 32 bytes".into(),
                    ));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Self::p256(&point)?
            }
            ("RSA", _) => {
                let (n, e) = (bytes(jwk.n.as_ref(), "n")?, bytes(jwk.e.as_ref(), "e")?);
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if bits < 2048 {
                    return Err(VerifyError::Key("RSA modulus under 2048 bits".into()));
                }
                Self::rsa(&n, &e)?
            }
            (kty, crv) => {
                return Err(VerifyError::Key(format!(
                    "unsupported key type {kty} {}",
                    crv.unwrap_or("")
                )));
            }
        };
        // A JWK that names an algorithm must name this key's own.
        if let Some(alg) = &jwk.alg
            && alg != key.algorithm.as_str()
        {
            return Err(VerifyError::Key(format!(
                "{} names {alg} for a {} key",
                jwk.kid,
                key.algorithm.as_str()
            )));
        }
        Ok((jwk.kid, key))
    }

    /// The one algorithm this key checks.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: String,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// Where [`crate::check`] finds the key a token's `kid` names.
pub trait KeySet {
    /// The key with this id, if the set holds it.
    fn key(&self, kid: &str) -> Option<&VerifyingKey>;
}

impl KeySet for HashMap<String, VerifyingKey> {
    fn key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.get(kid)
    }
}

/// A published key set (`/.well-known/jwks.json`), by key id.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: HashMap<String, VerifyingKey>,
}

impl Jwks {
    /// Parses a JWKS document. Keys of other types are skipped (a set may
    /// carry keys for other uses); the set must hold at least one usable key.
    pub fn parse(document: &[u8]) -> Result<Self, VerifyError> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(document)
            .map_err(|e| VerifyError::Unavailable(format!("JWKS is not a key set: {e}")))?;
        let keys: HashMap<String, VerifyingKey> = document
            .keys
            .iter()
            .filter_map(|jwk| VerifyingKey::from_jwk(jwk).ok())
            .collect();
        if keys.is_empty() {
            return Err(VerifyError::Unavailable("JWKS holds no usable key".into()));
        }
        Ok(Self { keys })
    }

    /// The key ids held.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

impl KeySet for Jwks {
    fn key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn symmetric_and_foreign_keys_are_refused() {
        for jwk in [
            json!({"kty": "oct", "kid": "a", "k": "c2VjcmV0"}),
            json!({"kty": "OKP", "crv": "X25519", "kid": "b", "x": URL_SAFE_NO_PAD.encode([1u8; 32])}),
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "c", "use": "enc", "x": URL_SAFE_NO_PAD.encode([1u8; 32])}),
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "d", "alg": "RS256", "x": URL_SAFE_NO_PAD.encode([1u8; 32])}),
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": "short"}),
            json!({"kty": "RSA", "kid": "f", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]), "e": "AQAB"}),
            json!({"kty": "EC", "crv": "P-256", "kid": "g", "x": URL_SAFE_NO_PAD.encode([1u8; 32])}),
            json!({"kid": "h"}),
            json!("not an object"),
        ] {
            assert!(VerifyingKey::from_jwk(&jwk).is_err(), "{jwk}");
        }
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert!(Jwks::parse(br#"{"keys": [{"kty": "oct", "kid": "a", "k": "AA"}]}"#).is_err());
        assert!(Jwks::parse(b"[]").is_err());
        let ok = Jwks::parse(
            format!(
                r#"{{"keys": [{{"kty": "oct", "kid": "a", "k": "AA"}},
                   {{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA", "x": "{}"}}]}}"#,
                URL_SAFE_NO_PAD.encode([7u8; 32])
            )
            .as_bytes(),
        );
        assert_eq!(ok.map(|s| s.kids().count()).ok(), Some(1));
    }
}
