//! Signing compact JWS (access and ID tokens) with a key parsed once.
//!
//! `jsonwebtoken::encode` parses its key again for every token, and for
//! Ed25519 and P-256 parsing derives or checks the public key: a scalar
//! multiplication, about what the signature itself costs. A [`Signer`]
//! keeps the parsed key pair, so a token costs its signature only. The
//! tokens are the same: the header and claims serialised and encoded as
//! `jsonwebtoken` does, and the signature of the same algorithm.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use aws_lc_rs::{hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Header;
use serde::Serialize;

use crate::keys::{Algorithm, KeyError};

/// The private half of a key, parsed, ready to sign.
pub(crate) enum Signer {
    /// EdDSA.
    Ed25519(Ed25519KeyPair),
    /// ES256 (signatures as `r || s`, as JWS wants).
    P256(EcdsaKeyPair, SystemRandom),
    /// RS256 (PKCS #1 v1.5).
    Rsa(RsaKeyPair, SystemRandom),
    /// HS256 (boxed: the key's state is a kilobyte).
    Hmac(Box<hmac::Key>),
}

impl Signer {
    /// Parses `private` (PKCS #8 for the asymmetric algorithms, the secret
    /// for HS256).
    pub(crate) fn new(algorithm: Algorithm, private: &[u8]) -> Result<Self, KeyError> {
        let bad = |what: &str| KeyError(format!("the {what} key does not parse"));
        Ok(match algorithm {
            Algorithm::EdDSA => {
                Self::Ed25519(Ed25519KeyPair::from_pkcs8(private).map_err(|_| bad("Ed25519"))?)
            }
            Algorithm::ES256 => Self::P256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, private)
                    .map_err(|_| bad("P-256"))?,
                SystemRandom::new(),
            ),
            Algorithm::RS256 => Self::Rsa(
                RsaKeyPair::from_pkcs8(private).map_err(|_| bad("RSA"))?,
                SystemRandom::new(),
            ),
            Algorithm::HS256 => Self::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, private))),
        })
    }

    /// The compact JWS of `claims` under `header`, signed.
    pub(crate) fn sign<T: Serialize>(&self, header: &Header, claims: &T) -> Result<String, String> {
        let mut token = String::with_capacity(512);
        encode_part(&mut token, header)?;
        token.push('.');
        encode_part(&mut token, claims)?;
        let message = token.as_bytes();
        let failed = |_: aws_lc_rs::error::Unspecified| "the signature failed".to_owned();
        let signature = match self {
            Self::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Self::P256(pair, rng) => pair.sign(rng, message).map_err(failed)?.as_ref().to_vec(),
            Self::Rsa(pair, rng) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    rng as &dyn rand::SecureRandom,
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                signature
            }
            Self::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// Appends `part` as JSON, base64url without padding.
fn encode_part<T: Serialize>(token: &mut String, part: &T) -> Result<(), String> {
    let json = serde_json::to_vec(part).map_err(|e| e.to_string())?;
    URL_SAFE_NO_PAD.encode_string(json, token);
    Ok(())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Validation};
    use serde_json::{Value, json};
    use time::OffsetDateTime;

    use super::*;
    use crate::keys::{PreparedKey, SigningKey};

    /// The same token as `jsonwebtoken::encode` (byte for byte where the
    /// algorithm is deterministic), and one `jsonwebtoken` verifies.
    #[test]
    fn tokens_are_jsonwebtokens() -> Result<(), Box<dyn std::error::Error>> {
        let claims = json!({ "sub": "alice", "exp": 4_000_000_000_i64, "roles": ["a"] });
        for algorithm in [
            Algorithm::EdDSA,
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::HS256,
        ] {
            let key = SigningKey::generate(algorithm, OffsetDateTime::now_utc())?;
            let prepared = PreparedKey::prepare(&key)?;
            let mut header = Header::new(algorithm.jwt());
            header.typ = Some("JWT".into());
            header.kid = Some(key.kid.clone());
            let ours = Signer::new(algorithm, &key.private)?.sign(&header, &claims)?;
            let decoded = jsonwebtoken::decode::<Value>(
                &ours,
                &prepared.decoding,
                &Validation::new(algorithm.jwt()),
            )?;
            assert_eq!(decoded.claims, claims, "{algorithm:?}");
            assert_eq!(decoded.header.kid.as_deref(), Some(key.kid.as_str()));
            let theirs = match algorithm {
                Algorithm::EdDSA => Some(EncodingKey::from_ed_der(&key.private)),
                Algorithm::HS256 => Some(EncodingKey::from_secret(&key.private)),
                Algorithm::RS256 => Some(rsa_pem(&key.private)?),
                // ECDSA signatures are randomised: only the signed part matches.
                Algorithm::ES256 => None,
            };
            match theirs {
                Some(theirs) => {
                    assert_eq!(
                        ours,
                        jsonwebtoken::encode(&header, &claims, &theirs)?,
                        "{algorithm:?}"
                    );
                }
                None => {
                    let theirs = jsonwebtoken::encode(
                        &header,
                        &claims,
                        &EncodingKey::from_ec_der(&key.private),
                    )?;
                    let signed = |t: &str| t.rsplit_once('.').map(|(m, _)| m.to_owned());
                    assert_eq!(signed(&ours), signed(&theirs));
                }
            }
            // Not verified under another key of the same algorithm.
            let other =
                PreparedKey::prepare(&SigningKey::generate(algorithm, OffsetDateTime::now_utc())?)?;
            assert!(
                jsonwebtoken::decode::<Value>(
                    &ours,
                    &other.decoding,
                    &Validation::new(algorithm.jwt())
                )
                .is_err()
            );
        }
        Ok(())
    }

    /// An RSA PKCS #8 document as `jsonwebtoken` takes it: PEM.
    fn rsa_pem(pkcs8: &[u8]) -> Result<EncodingKey, jsonwebtoken::errors::Error> {
        use base64::engine::general_purpose::STANDARD;
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8)
        );
        EncodingKey::from_rsa_pem(pem.as_bytes())
    }
}
