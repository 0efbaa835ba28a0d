//! The checks every Tessera access token passes, in the order that trusts
//! nothing in the token until the key named by `kid` has checked it
//! (RFC 8725). The server verifies through this same function.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;

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
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::Malformed)?;
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

    let mut validation = Validation::new(key.algorithm().jwt());
    validation.set_issuer(&[&expect.issuer]);
    validation.set_audience(&[&expect.audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = u64::try_from(expect.leeway).unwrap_or(0);
    // Time is checked below against the caller's clock, not the system's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let claims = jsonwebtoken::decode::<Claims>(token, key.decoding(), &validation)
        .map_err(|e| VerifyError::Invalid(e.to_string()))?
        .claims;
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
