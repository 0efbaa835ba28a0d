//! JWT access tokens: minting, and verification that trusts nothing in the
//! token until the key named by `kid` has checked it (RFC 8725).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::keys::Keyring;
use crate::secret::random_token;

/// Longest token accepted, in bytes; larger ones are refused before parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The JOSE `typ` of Tessera access tokens (RFC 9068), checked on the way in
/// so no other kind of JWT can pass as one.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Header parameters a Tessera token may carry. `jku`, `x5u`, `jwk`, `crit`
/// and the rest would let a token name its own key: refused.
const ALLOWED_HEADER_PARAMS: &[&str] = &["alg", "typ", "kid"];

/// Token settings.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// `iss`: the server's public URL.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// Access token lifetime.
    pub access_ttl: Duration,
    /// A refresh token unused for this long expires.
    pub refresh_idle_ttl: Duration,
    /// A token session ends this long after sign-in, however active.
    pub refresh_absolute_ttl: Duration,
    /// How long a just-replaced refresh token may still be exchanged.
    pub refresh_reuse_grace: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
}

impl TokenPolicy {
    /// Defaults for an issuer.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Self {
            audience: issuer.clone(),
            issuer,
            access_ttl: Duration::minutes(10),
            refresh_idle_ttl: Duration::days(14),
            refresh_absolute_ttl: Duration::days(90),
            refresh_reuse_grace: Duration::seconds(10),
            leeway: Duration::seconds(30),
        }
    }

    /// How long after a revocation an access token naming it could still
    /// pass its `exp` check: the revocation entry must live this long.
    pub fn revocation_ttl(&self) -> Duration {
        self.access_ttl + self.leeway * 2
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// User id.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Token id.
    pub jti: String,
    /// Public id of the session the token belongs to.
    pub sid: String,
    /// Roles at minting time.
    pub roles: Vec<String>,
    /// Not before (Unix seconds); Tessera never sets it, but honours it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl AccessClaims {
    /// Claims for `user` in session `sid`, valid from `now` for the policy's TTL.
    pub fn new(
        policy: &TokenPolicy,
        user: Uuid,
        sid: &str,
        roles: Vec<String>,
        now: OffsetDateTime,
    ) -> Result<Self, TokenError> {
        let iat = now.unix_timestamp();
        Ok(Self {
            iss: policy.issuer.clone(),
            sub: user.to_string(),
            aud: policy.audience.clone(),
            iat,
            exp: iat + policy.access_ttl.whole_seconds(),
            jti: random_token(16).map_err(|_| TokenError::Internal("no randomness".into()))?,
            sid: sid.to_owned(),
            roles,
            nbf: None,
        })
    }
}

/// Why a token was refused. The variants are for logs and tests; clients see
/// one answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Larger than [`MAX_TOKEN_BYTES`].
    #[error("token too large")]
    TooLarge,
    /// Not three base64url parts, or a header that is not JSON.
    #[error("malformed token")]
    Malformed,
    /// A header parameter outside `alg`, `typ`, `kid`, or a wrong `typ`.
    #[error("forbidden or unexpected header")]
    ForbiddenHeader,
    /// No `kid`, or one that is not in the key set.
    #[error("unknown key")]
    UnknownKey,
    /// `alg` is not the algorithm of the key named by `kid`.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// Bad signature, claims, issuer, audience, expiry or not-before.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token's session or id has been revoked.
    #[error("token revoked")]
    Revoked,
    /// The node cannot tell whether the token was revoked: its revocation
    /// set is out of date (the store is unreachable). Fails closed.
    #[error("revocation set is stale")]
    RevocationsStale,
    /// Signing failed on the server.
    #[error("token minting failed: {0}")]
    Internal(String),
}

/// Signs `claims` with the keyring's current key.
pub fn mint(keyring: &Keyring, claims: &AccessClaims) -> Result<String, TokenError> {
    let key = keyring.current();
    let mut header = Header::new(key.algorithm.jwt());
    header.typ = Some(ACCESS_TOKEN_TYP.into());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding)
        .map_err(|e| TokenError::Internal(e.to_string()))
}

/// Verifies a token: size, shape, header whitelist, `typ`, key by `kid`,
/// `alg` equal to that key's algorithm, signature, then `iss`, `aud`, `exp`,
/// `nbf`, `iat` and the presence of every claim. Revocation is the caller's
/// next check.
pub fn verify(
    keyring: &Keyring,
    policy: &TokenPolicy,
    token: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header_bytes).map_err(|_| TokenError::Malformed)?;
    if header
        .keys()
        .any(|k| !ALLOWED_HEADER_PARAMS.contains(&k.as_str()))
    {
        return Err(TokenError::ForbiddenHeader);
    }
    if header.get("typ").and_then(|t| t.as_str()) != Some(ACCESS_TOKEN_TYP) {
        return Err(TokenError::ForbiddenHeader);
    }
    let kid = header
        .get("kid")
        .and_then(|k| k.as_str())
        .ok_or(TokenError::UnknownKey)?;
    let key = keyring.get(kid).ok_or(TokenError::UnknownKey)?;
    // The key decides the algorithm; the header must merely agree with it.
    if header.get("alg").and_then(|a| a.as_str()) != Some(key.algorithm.as_str()) {
        return Err(TokenError::AlgorithmMismatch);
    }

    let mut validation = Validation::new(key.algorithm.jwt());
    validation.set_issuer(&[&policy.issuer]);
    validation.set_audience(&[&policy.audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = u64::try_from(policy.leeway.whole_seconds()).unwrap_or(0);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
    let claims = data.claims;
    // Time checks against the injected clock, not the system's.
    // Attacker-chosen numbers: saturating arithmetic, never an overflow.
    let leeway = policy.leeway.whole_seconds();
    let now = now.unix_timestamp();
    if claims.exp.saturating_add(leeway) <= now {
        return Err(TokenError::Invalid("expired".into()));
    }
    if claims.iat.saturating_sub(leeway) > now {
        return Err(TokenError::Invalid("issued in the future".into()));
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf.saturating_sub(leeway) > now)
    {
        return Err(TokenError::Invalid("not yet valid".into()));
    }
    if claims.exp.saturating_sub(claims.iat)
        > policy.access_ttl.whole_seconds().saturating_add(leeway)
    {
        return Err(TokenError::Invalid("lifetime longer than policy".into()));
    }
    if claims.sid.is_empty() || claims.jti.is_empty() {
        return Err(TokenError::Invalid("missing sid or jti".into()));
    }
    Ok(claims)
}

/// Reads `sid`, `jti` and `exp` of a token whose signature verifies with a
/// known key, without the time checks (revocation of expired tokens).
pub fn verify_ignoring_expiry(
    keyring: &Keyring,
    policy: &TokenPolicy,
    token: &str,
) -> Result<AccessClaims, TokenError> {
    // Far enough in the past that exp and iat checks pass for any real token.
    let claims_time = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("iat").and_then(serde_json::Value::as_i64))
        .ok_or(TokenError::Malformed)?;
    let at = OffsetDateTime::from_unix_timestamp(claims_time).map_err(|_| TokenError::Malformed)?;
    verify(keyring, policy, token, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, SigningKey};

    fn ring(alg: Algorithm) -> Keyring {
        let now = OffsetDateTime::now_utc();
        let key = SigningKey::generate(alg, now).unwrap_or_else(|e| unreachable!("{e}"));
        Keyring::new(&[key], now).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn claims(policy: &TokenPolicy, now: OffsetDateTime) -> AccessClaims {
        AccessClaims::new(policy, Uuid::new_v4(), "sid-1", vec!["admin".into()], now)
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn every_algorithm_round_trips() -> Result<(), TokenError> {
        let policy = TokenPolicy::new("https://auth.example");
        let now = OffsetDateTime::now_utc();
        for alg in [
            Algorithm::EdDSA,
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::HS256,
        ] {
            let ring = ring(alg);
            let c = claims(&policy, now);
            let token = mint(&ring, &c)?;
            assert_eq!(verify(&ring, &policy, &token, now)?, c, "{alg:?}");
        }
        Ok(())
    }

    #[test]
    fn time_bounds_are_enforced_with_leeway() -> Result<(), TokenError> {
        let policy = TokenPolicy::new("https://auth.example");
        let ring = ring(Algorithm::EdDSA);
        let now = OffsetDateTime::now_utc();
        let token = mint(&ring, &claims(&policy, now))?;
        assert!(
            verify(&ring, &policy, &token, now + Duration::minutes(10)).is_ok(),
            "within leeway"
        );
        assert!(verify(&ring, &policy, &token, now + Duration::minutes(11)).is_err());
        assert!(
            verify(&ring, &policy, &token, now - Duration::minutes(1)).is_err(),
            "iat in future"
        );
        assert!(verify_ignoring_expiry(&ring, &policy, &token).is_ok());
        Ok(())
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() -> Result<(), TokenError> {
        let policy = TokenPolicy::new("https://auth.example");
        let ring = ring(Algorithm::EdDSA);
        let now = OffsetDateTime::now_utc();
        let mut c = claims(&policy, now);
        c.aud = "https://other.example".into();
        assert!(verify(&ring, &policy, &mint(&ring, &c)?, now).is_err());
        let mut c = claims(&policy, now);
        c.iss = "https://evil.example".into();
        assert!(verify(&ring, &policy, &mint(&ring, &c)?, now).is_err());
        Ok(())
    }

    #[test]
    fn oversized_and_malformed_tokens_are_refused_early() {
        let policy = TokenPolicy::new("https://auth.example");
        let ring = ring(Algorithm::EdDSA);
        let now = OffsetDateTime::now_utc();
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(verify(&ring, &policy, &big, now), Err(TokenError::TooLarge));
        for bad in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "!!!.b.c",
            "e30.e30.",
            "bnVsbA.e30.x",
        ] {
            assert!(verify(&ring, &policy, bad, now).is_err(), "{bad}");
        }
    }
}
