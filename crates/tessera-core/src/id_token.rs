//! OpenID Connect ID tokens: their claims, `at_hash`, and signing.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};
use tessera_verify::MAX_TOKEN_BYTES;

use crate::error::CoreError;
use crate::jwt::TokenError;
use crate::keys::{Algorithm, Keyring, PreparedKey};

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The client's id.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// When the user last proved their password (Unix seconds).
    pub auth_time: i64,
    /// The client's `nonce`, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The session the tokens belong to.
    pub sid: String,
    /// Left half of the access token's hash (OIDC Core §3.1.3.6).
    pub at_hash: String,
    /// The username, with scope `profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// How the user proved who they are (RFC 8176 names).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The assurance that amounts to ([`crate::auth_methods::AuthMethods::acr`]).
    #[serde(default)]
    pub acr: String,
}

/// `at_hash` of `access_token` for a token signed with `alg`: the left
/// half of the hash that goes with the algorithm (SHA-256 for RS256 and
/// ES256, SHA-512 for EdDSA), base64url.
pub fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let hash = match alg {
        Algorithm::EdDSA => digest::digest(&digest::SHA512, access_token.as_bytes()),
        _ => digest::digest(&digest::SHA256, access_token.as_bytes()),
    };
    let bytes = hash.as_ref();
    let half = bytes.get(..bytes.len() / 2).unwrap_or(bytes);
    URL_SAFE_NO_PAD.encode(half)
}

/// Signs ID token `claims` with `key` (`typ: JWT`, so it can never pass
/// for an access token, whose `typ` differs).
pub fn mint(key: &PreparedKey, claims: &IdTokenClaims) -> Result<String, CoreError> {
    key.sign("JWT", claims)
        .map_err(|e| CoreError::Internal(format!("ID token minting failed: {e}")))
}

/// The claims of an ID token signed by a key of `keyring` for `issuer`,
/// whether or not it has expired (an `id_token_hint` may have: it names
/// a session, it lets nothing in). The key named by `kid` decides the
/// algorithm; `typ` must be `JWT`, so an access token is no hint.
pub fn verify_hint(
    keyring: &Keyring,
    issuer: &str,
    token: &str,
) -> Result<IdTokenClaims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.typ.as_deref() != Some("JWT")
        || header.jku.is_some()
        || header.jwk.is_some()
        || header.x5u.is_some()
        || header.crit.is_some()
    {
        return Err(TokenError::ForbiddenHeader);
    }
    let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
    let key = keyring
        .id_token_verifier(kid)
        .ok_or(TokenError::UnknownKey)?;
    if !key.algorithm.is_public() {
        return Err(TokenError::UnknownKey);
    }
    if header.alg != key.algorithm.jwt() {
        return Err(TokenError::AlgorithmMismatch);
    }
    let mut validation = Validation::new(key.algorithm.jwt());
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat"]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    // The audience is the client, whichever it is: the caller compares it.
    validation.validate_aud = false;
    jsonwebtoken::decode::<IdTokenClaims>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|e| TokenError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_follows_the_algorithm() {
        // OIDC Core's example access token and its RS256 at_hash.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(Algorithm::RS256, token), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash(Algorithm::EdDSA, token).len(), 43);
    }
}
