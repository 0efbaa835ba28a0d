//! The checks every Tessera access token passes, in the order that trusts
//! nothing in the token until the key named by `kid` has checked it
//! (RFC 8725). The server verifies through this same function.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::claims::Claims;
use crate::error::VerifyError;
use crate::key::KeySet;

/// Longest token accepted, in bytes; larger ones are refused before parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The JOSE `typ` of Tessera access tokens (RFC 9068): checked, so no other
/// kind of JWT (an ID token, say) can pass as one.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Header parameters a Tessera token may carry. `jku`, `x5u`, `jwk`, `crit`
/// and the rest would let a token name its own key: refused.
const ALLOWED_HEADER_PARAMS: &[&str] = &["alg", "typ", "kid"];

/// What a token must say about where it comes from and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// `iss`: the issuer's public URL, exactly.
    pub issuer: String,
    /// `aud`: this service's audience, exactly.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: i64,
    /// Longest `exp - iat` accepted, in seconds (the issuer's access-token
    /// lifetime): a token that claims to live longer was not minted by it.
    pub max_lifetime: i64,
}

impl Expectations {
    /// Tessera's defaults: 30 s of leeway, a 10-minute lifetime at most.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: 30,
            max_lifetime: 600,
        }
    }
}

/// Verifies a token's form, key, signature and claims at `now` (Unix
/// seconds): size, three parts, header whitelist, `typ`, key by `kid`, `alg`
/// equal to that key's algorithm, signature, then `iss`, `aud`, `exp`,
/// `nbf`, `iat`, lifetime and every required claim. Revocation is the
/// caller's next check.
///
/// ```
/// use std::collections::HashMap;
/// use tessera_verify::{Expectations, VerifyError, VerifyingKey, check};
///
/// let keys: HashMap<String, VerifyingKey> = HashMap::new();
/// let expect = Expectations::new("https://auth.example", "https://api.example");
/// assert_eq!(check("a.b.c", &keys, &expect, 0), Err(VerifyError::Malformed));
/// ```
pub fn check(
    token: &str,
    keys: &impl KeySet,
    expect: &Expectations,
    now: i64,
) -> Result<Claims, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(encoded_header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(encoded_header)
        .map_err(|_| VerifyError::Malformed)?;
    // A map, not a struct: every parameter is seen, so any outside the
    // list is refused. A name given twice counts once, the last (RFC 7515
    // §4); `alg` cannot choose the algorithm anyway.
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header_bytes).map_err(|_| VerifyError::Malformed)?;
    if header
        .keys()
        .any(|k| !ALLOWED_HEADER_PARAMS.contains(&k.as_str()))
    {
        return Err(VerifyError::ForbiddenHeader);
    }
    if header.get("typ").and_then(|t| t.as_str()) != Some(ACCESS_TOKEN_TYP) {
        return Err(VerifyError::ForbiddenHeader);
    }
    let kid = header
        .get("kid")
        .and_then(|k| k.as_str())
        .ok_or(VerifyError::UnknownKey)?;
    let key = keys.key(kid).ok_or(VerifyError::UnknownKey)?;
    // The key decides the algorithm; the header must merely agree with it.
    if header.get("alg").and_then(|a| a.as_str()) != Some(key.algorithm().as_str()) {
        return Err(VerifyError::AlgorithmMismatch);
    }

    // The signature, over the first two parts exactly as sent, before
    // anything in the payload is read.
    let signed = token
        .get(..encoded_header.len() + 1 + payload.len())
        .ok_or(VerifyError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| VerifyError::Invalid("signature is not base64url".into()))?;
    if !key.verifies(signed.as_bytes(), &signature) {
        return Err(VerifyError::Invalid("bad signature".into()));
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| VerifyError::Invalid("claims are not base64url".into()))?;
    // Every claim but `nbf` (and the client's two) is required by the type.
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|e| VerifyError::Invalid(format!("claims: {e}")))?;
    if claims.iss != expect.issuer {
        return Err(VerifyError::Invalid("wrong issuer".into()));
    }
    if claims.aud != expect.audience {
        return Err(VerifyError::Invalid("wrong audience".into()));
    }
    // Attacker-chosen numbers: saturating arithmetic, never an overflow.
    let leeway = expect.leeway;
    if claims.exp.saturating_add(leeway) <= now {
        return Err(VerifyError::Invalid("expired".into()));
    }
    if claims.iat.saturating_sub(leeway) > now {
        return Err(VerifyError::Invalid("issued in the future".into()));
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf.saturating_sub(leeway) > now)
    {
        return Err(VerifyError::Invalid("not yet valid".into()));
    }
    if claims.exp.saturating_sub(claims.iat) > expect.max_lifetime.saturating_add(leeway) {
        return Err(VerifyError::Invalid(
            "lifetime longer than the issuer's".into(),
        ));
    }
    if claims.sid.is_empty() || claims.jti.is_empty() {
        return Err(VerifyError::Invalid("missing sid or jti".into()));
    }
    Ok(claims)
}

/// [`check`] without the time checks: the claims of a token whose signature
/// verifies with a known key, expired or not (to revoke an expired token's
/// session, say). Never use it to let a request in.
pub fn check_ignoring_expiry(
    token: &str,
    keys: &impl KeySet,
    expect: &Expectations,
) -> Result<Claims, VerifyError> {
    // Checking "at iat" passes the time checks of any token that is
    // otherwise valid, and only those.
    let iat = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("iat").and_then(serde_json::Value::as_i64))
        .ok_or(VerifyError::Malformed)?;
    check(token, keys, expect, iat)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::large_enum_variant
    )]
    use std::collections::HashMap;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
        RSA_PKCS1_SHA256,
    };
    use serde_json::{Value, json};

    use super::*;
    use crate::key::{Algorithm, VerifyingKey};

    const NOW: i64 = 1_700_000_000;

    /// A key pair of each algorithm: how to sign, and the verifying half.
    enum Signer {
        Ed(Ed25519KeyPair),
        Ec(EcdsaKeyPair),
        Rsa(RsaKeyPair),
        Hmac(aws_lc_rs::hmac::Key),
    }

    fn pair(algorithm: Algorithm) -> (Signer, VerifyingKey) {
        let rng = SystemRandom::new();
        match algorithm {
            Algorithm::EdDSA => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
                let key = VerifyingKey::ed25519(pair.public_key().as_ref()).unwrap();
                (Signer::Ed(pair), key)
            }
            Algorithm::ES256 => {
                let pkcs8 =
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                        .unwrap();
                let key = VerifyingKey::p256(pair.public_key().as_ref()).unwrap();
                (Signer::Ec(pair), key)
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
                let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let key = VerifyingKey::rsa(&components.n, &components.e).unwrap();
                (Signer::Rsa(pair), key)
            }
            _ => {
                let secret = [7u8; 32];
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
                (Signer::Hmac(key), VerifyingKey::hmac(&secret))
            }
        }
    }

    fn sign(signer: &Signer, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match signer {
            Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Ec(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            Signer::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .unwrap();
                out
            }
            Signer::Hmac(key) => aws_lc_rs::hmac::sign(key, message).as_ref().to_vec(),
        }
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn token(signer: &Signer, header: &Value, claims: &Value) -> String {
        let signed = format!("{}.{}", b64(header), b64(claims));
        let signature = URL_SAFE_NO_PAD.encode(sign(signer, signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    fn header(algorithm: Algorithm) -> Value {
        json!({"alg": algorithm.as_str(), "typ": ACCESS_TOKEN_TYP, "kid": "k1"})
    }

    fn claims() -> Value {
        json!({"iss": "https://auth.example", "sub": "u1", "aud": "https://api.example",
               "iat": NOW, "exp": NOW + 600, "jti": "j1", "sid": "s1", "roles": ["admin"]})
    }

    fn expect() -> Expectations {
        Expectations::new("https://auth.example", "https://api.example")
    }

    fn keys(key: VerifyingKey) -> HashMap<String, VerifyingKey> {
        HashMap::from([("k1".to_owned(), key)])
    }

    const ALGORITHMS: [Algorithm; 4] = [
        Algorithm::EdDSA,
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::HS256,
    ];

    #[test]
    fn a_signed_token_of_every_algorithm_passes() {
        for algorithm in ALGORITHMS {
            let (signer, key) = pair(algorithm);
            let token = token(&signer, &header(algorithm), &claims());
            let claims = check(&token, &keys(key), &expect(), NOW)
                .unwrap_or_else(|e| panic!("{algorithm:?}: {e}"));
            assert_eq!(
                (claims.sub.as_str(), claims.roles.as_slice()),
                ("u1", ["admin".to_owned()].as_slice()),
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn a_changed_payload_or_signature_is_refused() {
        for algorithm in ALGORITHMS {
            let (signer, key) = pair(algorithm);
            let keys = keys(key);
            let good = token(&signer, &header(algorithm), &claims());
            let parts: Vec<&str> = good.split('.').collect();
            // The payload of another token, under this token's signature.
            let mut admin = claims();
            admin["sub"] = json!("u2");
            let swapped = format!("{}.{}.{}", parts[0], b64(&admin), parts[2]);
            // The signature cut short, or of another message.
            let short = URL_SAFE_NO_PAD.encode(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()[..8]);
            let truncated = format!("{}.{}.{short}", parts[0], parts[1]);
            let other = URL_SAFE_NO_PAD.encode(sign(&signer, b"something else"));
            let resigned = format!("{}.{}.{other}", parts[0], parts[1]);
            for bad in [
                swapped,
                truncated,
                resigned,
                format!("{}.{}.", parts[0], parts[1]),
            ] {
                assert!(
                    matches!(
                        check(&bad, &keys, &expect(), NOW),
                        Err(VerifyError::Invalid(_))
                    ),
                    "{algorithm:?}: {bad}"
                );
            }
        }
    }

    #[test]
    fn another_key_of_the_same_algorithm_is_refused() {
        for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
            let (signer, _) = pair(algorithm);
            let (_, other) = pair(algorithm);
            let token = token(&signer, &header(algorithm), &claims());
            assert!(
                matches!(
                    check(&token, &keys(other), &expect(), NOW),
                    Err(VerifyError::Invalid(_))
                ),
                "{algorithm:?}"
            );
        }
        let (signer, _) = pair(Algorithm::HS256);
        let token = token(&signer, &header(Algorithm::HS256), &claims());
        let other = VerifyingKey::hmac(b"another secret");
        assert!(matches!(
            check(&token, &keys(other), &expect(), NOW),
            Err(VerifyError::Invalid(_))
        ));
    }

    #[test]
    fn the_header_cannot_choose_the_algorithm() {
        let (signer, key) = pair(Algorithm::EdDSA);
        let keys = keys(key);
        for alg in ["none", "HS256", "RS256", "ES256", "eddsa"] {
            let mut h = header(Algorithm::EdDSA);
            h["alg"] = json!(alg);
            let token = token(&signer, &h, &claims());
            assert_eq!(
                check(&token, &keys, &expect(), NOW),
                Err(VerifyError::AlgorithmMismatch),
                "{alg}"
            );
        }
        // An unsigned token (`alg: none`, empty signature).
        let mut h = header(Algorithm::EdDSA);
        h["alg"] = json!("none");
        let unsigned = format!("{}.{}.", b64(&h), b64(&claims()));
        assert_eq!(
            check(&unsigned, &keys, &expect(), NOW),
            Err(VerifyError::AlgorithmMismatch)
        );
    }

    #[test]
    fn issuer_audience_and_required_claims_are_checked_after_the_signature() {
        let (signer, key) = pair(Algorithm::EdDSA);
        let keys = keys(key);
        let h = header(Algorithm::EdDSA);
        for (field, value) in [
            ("iss", json!("https://evil.example")),
            ("aud", json!("https://other.example")),
            ("aud", json!(["https://api.example"])),
            ("exp", json!("soon")),
            ("sid", json!("")),
        ] {
            let mut c = claims();
            c[field] = value.clone();
            let token = token(&signer, &h, &c);
            assert!(
                matches!(
                    check(&token, &keys, &expect(), NOW),
                    Err(VerifyError::Invalid(_))
                ),
                "{field} = {value}"
            );
        }
        for field in ["iss", "sub", "aud", "iat", "exp", "jti", "sid", "roles"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(field);
            let token = token(&signer, &h, &c);
            assert!(
                matches!(
                    check(&token, &keys, &expect(), NOW),
                    Err(VerifyError::Invalid(_))
                ),
                "without {field}"
            );
        }
        // A claim given twice is refused, whichever copy would win.
        let signed = format!(
            "{}.{}",
            b64(&h),
            URL_SAFE_NO_PAD.encode(
                r#"{"iss":"https://auth.example","sub":"u1","sub":"u2","aud":"https://api.example","iat":1700000000,"exp":1700000600,"jti":"j","sid":"s","roles":[]}"#
            )
        );
        let signature = URL_SAFE_NO_PAD.encode(sign(&signer, signed.as_bytes()));
        assert!(matches!(
            check(&format!("{signed}.{signature}"), &keys, &expect(), NOW),
            Err(VerifyError::Invalid(_))
        ));
    }

    #[test]
    fn forbidden_headers_and_broken_forms_are_refused_before_any_key() {
        let (signer, key) = pair(Algorithm::EdDSA);
        let keys = keys(key);
        for param in ["jku", "jwk", "x5u", "x5c", "crit", "cty"] {
            let mut h = header(Algorithm::EdDSA);
            h[param] = json!("x");
            let token = token(&signer, &h, &claims());
            assert_eq!(
                check(&token, &keys, &expect(), NOW),
                Err(VerifyError::ForbiddenHeader),
                "{param}"
            );
        }
        let mut h = header(Algorithm::EdDSA);
        h["typ"] = json!("JWT");
        assert_eq!(
            check(&token(&signer, &h, &claims()), &keys, &expect(), NOW),
            Err(VerifyError::ForbiddenHeader)
        );
        let mut h = header(Algorithm::EdDSA);
        h["kid"] = json!("k2");
        assert_eq!(
            check(&token(&signer, &h, &claims()), &keys, &expect(), NOW),
            Err(VerifyError::UnknownKey)
        );
        let good = token(&signer, &header(Algorithm::EdDSA), &claims());
        for bad in [
            format!("{good}.x"),
            good.replacen('.', "", 1),
            format!("!{good}"),
            format!("{}.{}", b64(&json!([1])), good.split_once('.').unwrap().1),
        ] {
            assert_eq!(
                check(&bad, &keys, &expect(), NOW),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
        // Not base64url where the signature or the payload should be.
        let parts: Vec<&str> = good.split('.').collect();
        for bad in [
            format!("{}.{}.{}!", parts[0], parts[1], parts[2]),
            format!("{}.{}=.{}", parts[0], parts[1], parts[2]),
        ] {
            assert!(
                matches!(
                    check(&bad, &keys, &expect(), NOW),
                    Err(VerifyError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }
}
