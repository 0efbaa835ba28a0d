//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): the
//! secret, the code of a time step, the check of a code a user typed, and
//! the `otpauth://` URI authenticator apps read from a QR code.
//!
//! What every authenticator app supports: HMAC-SHA-1, 6 digits, 30-second
//! steps. A code is accepted for the current step and one step either side
//! (clock drift, a code typed as it changed); that it is used only once is
//! the store's to enforce ([`crate::store::SecondFactors::use_totp_step`]).

use aws_lc_rs::{constant_time, hmac};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::secret::{RandomError, fill_random};

/// Bytes of a TOTP secret: 160 bits, the HMAC-SHA-1 block's natural key
/// size (RFC 4226 §4 recommends it).
pub const SECRET_BYTES: usize = 20;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Steps accepted either side of the current one.
pub const DRIFT_STEPS: i64 = 1;

/// A TOTP secret in clear: only in memory, wiped on drop, never printed.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<[u8; SECRET_BYTES]>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// A fresh secret from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        fill_random(bytes.as_mut_slice())?;
        Ok(Self(bytes))
    }

    /// A secret read back from its stored (opened) bytes; `None` unless
    /// exactly [`SECRET_BYTES`] long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array = <[u8; SECRET_BYTES]>::try_from(bytes).ok()?;
        Some(Self(Zeroizing::new(array)))
    }

    /// A secret from its base32 form (as [`Self::base32`] writes it; case
    /// and padding ignored), for clients and tests that hold one.
    pub fn from_base32(text: &str) -> Option<Self> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(SECRET_BYTES));
        let mut buffer: u32 = 0;
        let mut bits = 0;
        for c in text.trim_end_matches('=').bytes() {
            let value = match c.to_ascii_uppercase() {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return None,
            };
            buffer = (buffer << 5) | u32::from(value);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push((buffer >> bits) as u8);
                buffer &= (1 << bits) - 1;
            }
        }
        Self::from_slice(&bytes)
    }

    /// The raw bytes, to be sealed for the store.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Base32 (RFC 4648, no padding), as authenticator apps take it typed.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32(self.as_bytes()))
    }

    /// The code of time step `step`.
    pub fn code(&self, step: i64) -> u32 {
        hotp(self.as_bytes(), step_counter(step), DIGITS)
    }

    /// The step, among the current one at `now` and its neighbours, whose
    /// code `typed` is; `None` if it is none of them or not a code at all.
    /// The three codes are all computed and compared in constant time, so
    /// the timing tells nothing about which (if any) matched.
    pub fn matching_step(&self, typed: &str, now: OffsetDateTime) -> Option<i64> {
        let typed = parse_code(typed)?;
        let current = step_at(now);
        let mut found = None;
        for step in current - DRIFT_STEPS..=current + DRIFT_STEPS {
            let code = format!("{:06}", self.code(step));
            if constant_time::verify_slices_are_equal(code.as_bytes(), typed.as_bytes()).is_ok() {
                // The latest matching step: the store accepts only steps
                // after the last used one.
                found = Some(step);
            }
        }
        found
    }

    /// The `otpauth://totp/` URI (Key Uri Format) of this secret for
    /// `account` at `issuer`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let label = format!("{}:{}", uri_escape(issuer), uri_escape(account));
        Zeroizing::new(format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            self.base32().as_str(),
            uri_escape(issuer)
        ))
    }
}

/// The time step at `now` (Unix time over [`STEP_SECONDS`], T0 = 0).
pub fn step_at(now: OffsetDateTime) -> i64 {
    now.unix_timestamp().div_euclid(STEP_SECONDS)
}

/// A step as HOTP's counter. Steps before 1970 do not happen; they map to 0.
fn step_counter(step: i64) -> u64 {
    u64::try_from(step).unwrap_or(0)
}

/// What a user typed, as six digits: spaces (apps show "123 456") are
/// dropped; anything else but digits, or another count, is no code.
fn parse_code(typed: &str) -> Option<String> {
    if typed.len() > 16 {
        return None;
    }
    let digits: String = typed.chars().filter(|c| *c != ' ').collect();
    (digits.len() == DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

/// Whether `typed` has the shape of a TOTP code (six digits, spaces
/// allowed): what tells it from a recovery code in the one `code` field.
pub fn looks_like_code(typed: &str) -> bool {
    parse_code(typed).is_some()
}

/// HOTP (RFC 4226 §5.3): HMAC-SHA-1 of the counter, dynamically truncated
/// to `digits` decimal digits.
fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac
        .get(offset..offset + 4)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map_or(0, u32::from_be_bytes);
    (word & 0x7fff_ffff) % 10u32.pow(digits)
}

/// RFC 4648 base32, upper case, no padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = ((buffer >> bits) & 31) as usize;
            out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
        }
    }
    if bits > 0 {
        let index = ((buffer << (5 - bits)) & 31) as usize;
        out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn uri_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    /// RFC 6238 Appendix B, SHA-1 column: the 20-byte ASCII seed, 8 digits.
    #[test]
    fn rfc_6238_test_vectors() {
        let seed = b"12345678901234567890";
        for (time, expected) in [
            (59_i64, 94_287_082_u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            let step = time.div_euclid(STEP_SECONDS);
            assert_eq!(hotp(seed, step_counter(step), 8), expected, "T = {time}");
        }
    }

    /// RFC 4226 Appendix D: HOTP of the same seed, counters 0 to 9.
    #[test]
    fn rfc_4226_test_vectors() {
        let seed = b"12345678901234567890";
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(hotp(seed, counter as u64, 6), code, "counter {counter}");
        }
    }

    #[test]
    fn codes_of_the_neighbouring_steps_match_and_no_others() {
        let secret = TotpSecret::from_slice(b"12345678901234567890").unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_111_111_111).unwrap();
        let step = step_at(now);
        for offset in -1..=1 {
            let code = format!("{:06}", secret.code(step + offset));
            assert_eq!(secret.matching_step(&code, now), Some(step + offset));
        }
        for offset in [-3, -2, 2, 3] {
            let code = format!("{:06}", secret.code(step + offset));
            // Another step's code may collide with an accepted one (one in
            // a million); these do not.
            assert_eq!(secret.matching_step(&code, now), None, "{offset}");
        }
        let spaced = format!("{:06}", secret.code(step));
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(secret.matching_step(&spaced, now), Some(step));
        for junk in [
            "",
            "12345",
            "1234567",
            "abcdef",
            "１２３４５６",
            "12345\u{0}",
            &"1".repeat(100),
        ] {
            assert_eq!(secret.matching_step(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input), expected);
        }
        let secret = TotpSecret::generate().unwrap();
        assert_eq!(secret.base32().len(), 32);
        let back = TotpSecret::from_base32(&secret.base32().to_lowercase()).unwrap();
        assert_eq!(back.as_bytes(), secret.as_bytes());
        assert!(TotpSecret::from_base32("MZXW6").is_none());
        assert!(TotpSecret::from_base32("1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_none());
    }

    #[test]
    fn the_uri_escapes_issuer_and_account() {
        let secret = TotpSecret::from_slice(&[0u8; SECRET_BYTES]).unwrap();
        let uri = secret.otpauth_uri("Tessera Demo", "al ice&x");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Tessera%20Demo:al%20ice%26x?secret=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\
             &issuer=Tessera%20Demo&algorithm=SHA1&digits=6&period=30"
        );
        assert!(format!("{secret:?}").contains("redacted"));
    }
}
