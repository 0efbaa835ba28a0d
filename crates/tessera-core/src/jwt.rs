//! JWT access tokens: minting here; verification is `tessera-verify`'s
//! [`check`](tessera_verify::check), the same code every service behind
//! Tessera runs, so the server and its verifiers cannot disagree.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::keys::Keyring;
use crate::secret::random_token;

use tessera_verify::Expectations;
/// Why a token was refused: `tessera-verify`'s answer, the same for the
/// server and every service behind it.
pub use tessera_verify::VerifyError as TokenError;
pub use tessera_verify::{ACCESS_TOKEN_TYP, Claims as AccessClaims, MAX_TOKEN_BYTES};

use crate::error::CoreError;

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

    /// What a token of this policy must say (issuer, audience, leeway,
    /// lifetime), in `tessera-verify`'s terms.
    pub fn expectations(&self) -> Expectations {
        Expectations {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            leeway: self.leeway.whole_seconds(),
            max_lifetime: self.access_ttl.whole_seconds(),
        }
    }
}

/// Claims for `user` in session `sid`, valid from `now` for the policy's TTL.
pub fn new_claims(
    policy: &TokenPolicy,
    user: Uuid,
    sid: &str,
    roles: Vec<String>,
    now: OffsetDateTime,
) -> Result<AccessClaims, CoreError> {
    let iat = now.unix_timestamp();
    Ok(AccessClaims {
        iss: policy.issuer.clone(),
        sub: user.to_string(),
        aud: policy.audience.clone(),
        iat,
        exp: iat + policy.access_ttl.whole_seconds(),
        jti: random_token(16).map_err(|_| CoreError::Internal("no randomness".into()))?,
        sid: sid.to_owned(),
        roles,
        nbf: None,
        client_id: None,
        scope: None,
        amr: Vec::new(),
    })
}

/// Signs `claims` with the keyring's current key.
pub fn mint(keyring: &Keyring, claims: &AccessClaims) -> Result<String, CoreError> {
    keyring
        .current()
        .sign(ACCESS_TOKEN_TYP, claims)
        .map_err(|e| CoreError::Internal(format!("token minting failed: {e}")))
}

/// Verifies a token at `now`: the RFC 8725 checks of
/// [`tessera_verify::check`] against this keyring and policy. Revocation
/// is the caller's next check.
pub fn verify(
    keyring: &Keyring,
    policy: &TokenPolicy,
    token: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, TokenError> {
    verify_expecting(keyring, &policy.expectations(), token, now)
}

/// [`verify`] against expectations made once from the policy, as the
/// server does on every request.
pub fn verify_expecting(
    keyring: &Keyring,
    expect: &Expectations,
    token: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, TokenError> {
    tessera_verify::check(token, keyring, expect, now.unix_timestamp())
}

/// Reads `sid`, `jti` and `exp` of a token whose signature verifies with a
/// known key, without the time checks (revocation of expired tokens).
pub fn verify_ignoring_expiry(
    keyring: &Keyring,
    policy: &TokenPolicy,
    token: &str,
) -> Result<AccessClaims, TokenError> {
    tessera_verify::check_ignoring_expiry(token, keyring, &policy.expectations())
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
        new_claims(policy, Uuid::new_v4(), "sid-1", vec!["admin".into()], now)
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn every_algorithm_round_trips() -> Result<(), Box<dyn std::error::Error>> {
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
    fn time_bounds_are_enforced_with_leeway() -> Result<(), Box<dyn std::error::Error>> {
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
    fn wrong_issuer_or_audience_is_refused() -> Result<(), Box<dyn std::error::Error>> {
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
