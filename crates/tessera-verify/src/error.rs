//! Why a token was refused, or why the verifier could not decide.

/// A refused token, or a verifier that cannot decide. Services answer the
/// first group with 401 and [`VerifyError::Stale`] / [`VerifyError::Unavailable`]
/// with 503; the variants are for logs, not for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Larger than [`crate::MAX_TOKEN_BYTES`]: refused before parsing.
    #[error("token too large")]
    TooLarge,
    /// Not three base64url parts, or a header that is not a JSON object.
    #[error("malformed token")]
    Malformed,
    /// A header parameter other than `alg`, `typ`, `kid`, or a `typ` other than `at+jwt`.
    #[error("forbidden or unexpected header")]
    ForbiddenHeader,
    /// No `kid`, or one the key set does not hold.
    #[error("unknown key")]
    UnknownKey,
    /// `alg` is not the algorithm of the key named by `kid`.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// Bad signature, claims, issuer, audience, expiry, not-before or lifetime.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token's session (`sid`) or the token itself (`jti`) was revoked.
    #[error("token revoked")]
    Revoked,
    /// The revocation feed has been lost for longer than the allowed
    /// staleness: the verifier cannot tell whether the token was revoked,
    /// so it refuses (fails closed).
    #[error("revocation feed is stale")]
    Stale,
    /// The issuer could not be reached or answered something unusable
    /// (discovery, JWKS).
    #[error("issuer unavailable: {0}")]
    Unavailable(String),
    /// A key that cannot be used (a JWK of an unsupported type, bad material).
    #[error("unusable key: {0}")]
    Key(String),
}

impl VerifyError {
    /// Whether the token itself was refused (answer 401), as opposed to the
    /// verifier being unable to decide (answer 503).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            VerifyError::Stale | VerifyError::Unavailable(_) | VerifyError::Key(_)
        )
    }
}
