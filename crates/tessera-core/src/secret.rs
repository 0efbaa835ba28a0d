//! Bearer secrets (session cookies, refresh tokens) and their stored form.
//!
//! A secret is 256 bits from the OS CSPRNG, shown on the wire as a short
//! prefix plus unpadded base64url so that leaked secrets are easy to scan for.
//! Only its SHA-256 ([`SecretHash`]) is ever stored: a copy of the database
//! cannot be replayed as credentials.

use aws_lc_rs::{constant_time, digest, hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroize;

use crate::base64url;

/// Number of random bytes in every secret.
pub const SECRET_BYTES: usize = 32;
/// Length of the base64url (unpadded) encoding of [`SECRET_BYTES`].
const ENCODED_LEN: usize = 43;

/// Fills `buf` from the operating system's CSPRNG.
///
/// There is no fallback: an authentication server that cannot get
/// randomness must not hand out guessable secrets.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomError> {
    rand::fill(buf).map_err(|_| RandomError)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// Constant-time equality of two byte strings of the same length (a
/// length difference is no secret: every caller compares digests).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// `n` random bytes encoded as unpadded base64url.
pub fn random_token(n: usize) -> Result<String, RandomError> {
    let mut bytes = vec![0u8; n];
    fill_random(&mut bytes)?;
    let encoded = URL_SAFE_NO_PAD.encode(&bytes);
    bytes.zeroize();
    Ok(encoded)
}

/// The OS random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// SHA-256 of a secret: the only form in which a secret is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Wraps a stored hash.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a stored hash from a byte slice; `None` unless it is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw digest, for the store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality, for when a comparison happens outside an index lookup.
    pub fn ct_eq(&self, other: &SecretHash) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash is not a credential, but there is no reason to print it either.
        f.write_str("SecretHash([redacted])")
    }
}

/// The kinds of bearer secret, each with its own wire prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A cookie session's secret: the cookie value.
    Session,
    /// A token session's refresh token.
    Refresh,
    /// An OAuth client's secret (confidential clients).
    ClientSecret,
    /// An OAuth authorization code.
    AuthorizationCode,
    /// The token of a sign-in waiting for its second factor.
    MfaToken,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::Session => "ts_",
            SecretKind::Refresh => "rt_",
            SecretKind::ClientSecret => "cs_",
            SecretKind::AuthorizationCode => "ac_",
            SecretKind::MfaToken => "mt_",
        }
    }
}

/// A bearer secret in clear. Made only from the CSPRNG or parsed from a
/// request; never serialised, never printed, wiped from memory on drop.
#[derive(Clone)]
pub struct Secret {
    kind: SecretKind,
    bytes: [u8; SECRET_BYTES],
}

impl Secret {
    /// A fresh secret from the OS CSPRNG.
    pub fn generate(kind: SecretKind) -> Result<Self, RandomError> {
        let mut bytes = [0u8; SECRET_BYTES];
        fill_random(&mut bytes)?;
        Ok(Self { kind, bytes })
    }

    /// Parses the wire form. Anything but the exact prefix followed by 43
    /// base64url characters is refused, so garbage never reaches the store.
    pub fn parse(kind: SecretKind, wire: &str) -> Option<Self> {
        Self::parse_bytes(kind, wire.as_bytes())
    }

    /// [`Self::parse`] on bytes not yet known to be text (a cookie value):
    /// anything but base64url is refused either way.
    pub fn parse_bytes(kind: SecretKind, wire: &[u8]) -> Option<Self> {
        let encoded = wire.strip_prefix(kind.prefix().as_bytes())?;
        let bytes = base64url::decode::<SECRET_BYTES>(encoded)?;
        Some(Self { kind, bytes })
    }

    /// The wire form: prefix plus base64url. Handle with care.
    pub fn expose(&self) -> String {
        let mut out = String::with_capacity(3 + ENCODED_LEN);
        out.push_str(self.kind.prefix());
        URL_SAFE_NO_PAD.encode_string(self.bytes, &mut out);
        out
    }

    /// The stored form.
    pub fn hash(&self) -> SecretHash {
        SecretHash(sha256(&self.bytes))
    }

    /// A value derived from the secret with HMAC-SHA256 under `label`.
    ///
    /// Used for the CSRF token: whoever holds the session secret can compute
    /// it, nobody who only sees the database can, and it changes whenever the
    /// session secret is rotated.
    pub fn derive(&self, label: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.bytes);
        URL_SAFE_NO_PAD.encode(hmac::sign(&key, label))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Constant-time comparison of two strings (e.g. a CSRF token or the admin token).
///
/// Both sides are hashed first so that neither the content nor the length of
/// the expected value leaks through timing.
pub fn constant_time_str_eq(given: &str, expected: &str) -> bool {
    ct_eq(&sha256(given.as_bytes()), &sha256(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_wire_form() -> Result<(), RandomError> {
        let secret = Secret::generate(SecretKind::Session)?;
        let wire = secret.expose();
        assert!(wire.starts_with("ts_"));
        assert_eq!(wire.len(), 46);
        let parsed = Secret::parse(SecretKind::Session, &wire);
        assert_eq!(parsed.map(|s| s.hash()), Some(secret.hash()));
        Ok(())
    }

    #[test]
    fn refuses_wrong_prefix_length_and_alphabet() -> Result<(), RandomError> {
        let wire = Secret::generate(SecretKind::Session)?.expose();
        assert!(Secret::parse(SecretKind::Refresh, &wire).is_none());
        assert!(Secret::parse(SecretKind::Session, &wire[..45]).is_none());
        assert!(Secret::parse_bytes(SecretKind::Session, wire.as_bytes()).is_some());
        let mut not_text = wire.clone().into_bytes();
        if let Some(b) = not_text.get_mut(20) {
            *b = 0xc3;
        }
        assert!(Secret::parse_bytes(SecretKind::Session, &not_text).is_none());
        assert!(Secret::parse(SecretKind::Session, &format!("{wire}A")).is_none());
        let mut bad = wire.clone();
        bad.replace_range(10..11, "+");
        assert!(Secret::parse(SecretKind::Session, &bad).is_none());
        assert!(Secret::parse(SecretKind::Session, "ts_").is_none());
        assert!(Secret::parse(SecretKind::Session, "ts_ééééééééééééééééééééé").is_none());
        Ok(())
    }

    #[test]
    fn secrets_are_distinct_and_debug_is_redacted() -> Result<(), RandomError> {
        let a = Secret::generate(SecretKind::Session)?;
        let b = Secret::generate(SecretKind::Session)?;
        assert_ne!(a.expose(), b.expose());
        assert!(!format!("{a:?}").contains(&a.expose()[3..]));
        assert!(format!("{a:?}").contains("redacted"));
        Ok(())
    }

    #[test]
    fn stored_hash_is_not_the_secret() -> Result<(), RandomError> {
        let secret = Secret::generate(SecretKind::Session)?;
        assert_ne!(&secret.hash().as_bytes()[..], &secret.bytes[..]);
        Ok(())
    }

    #[test]
    fn derived_values_depend_on_secret_and_label() -> Result<(), RandomError> {
        let a = Secret::generate(SecretKind::Session)?;
        let b = Secret::generate(SecretKind::Session)?;
        assert_eq!(a.derive(b"csrf"), a.derive(b"csrf"));
        assert_ne!(a.derive(b"csrf"), b.derive(b"csrf"));
        assert_ne!(a.derive(b"csrf"), a.derive(b"other"));
        Ok(())
    }

    #[test]
    fn constant_time_eq_compares_content() {
        assert!(constant_time_str_eq("abc", "abc"));
        assert!(!constant_time_str_eq("abc", "abd"));
        assert!(!constant_time_str_eq("abc", "abcd"));
        assert!(!constant_time_str_eq("", "a"));
    }
}
