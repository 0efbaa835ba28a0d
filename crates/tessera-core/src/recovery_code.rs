//! Recovery codes: the way back in when the authenticator is lost. Ten per
//! user, each usable once, shown once when made and stored only as a hash.
//!
//! A code is 80 bits from the OS CSPRNG written as four groups of four
//! lower-case base32 characters (`abcd-efgh-ijkm-npqr`): easy to copy from
//! paper, too many possibilities to guess online or to search offline from
//! a stolen hash, which is why a fast hash (SHA-256, salted with the user's
//! id so one table cannot serve every user) is right here, unlike for
//! passwords.

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::secret::{RandomError, SecretHash, fill_random, sha256};

/// Codes made at once.
pub const COUNT: usize = 10;
/// Characters of a code, without the dashes.
const CHARS: usize = 16;
/// Characters per group.
const GROUP: usize = 4;
/// RFC 4648 base32 in lower case.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Separates the hashes of different purposes.
const HASH_LABEL: &[u8] = b"tessera recovery code v1\0";

/// A fresh set of codes (clear, to show once) and their hashes for `user`
/// (to store).
pub fn generate(user: Uuid) -> Result<(Vec<Zeroizing<String>>, Vec<SecretHash>), RandomError> {
    let mut clear = Vec::with_capacity(COUNT);
    let mut hashes = Vec::with_capacity(COUNT);
    while clear.len() < COUNT {
        let code = one()?;
        let hash = hash(user, &code);
        // 80 bits make a repeat practically impossible; the stores key codes
        // by hash, so one is still never made twice.
        if !hashes.contains(&hash) {
            hashes.push(hash);
            clear.push(code);
        }
    }
    Ok((clear, hashes))
}

fn one() -> Result<Zeroizing<String>, RandomError> {
    let mut bytes = Zeroizing::new([0u8; CHARS]);
    fill_random(bytes.as_mut_slice())?;
    let mut code = Zeroizing::new(String::with_capacity(CHARS + CHARS / GROUP));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % GROUP == 0 {
            code.push('-');
        }
        // 5 bits of each random byte: 16 × 5 = 80 bits.
        let index = usize::from(b & 31);
        code.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'a')));
    }
    Ok(code)
}

/// What a user typed, as a code: case, dashes and spaces do not matter;
/// anything else (another length, characters outside the alphabet) is no
/// recovery code.
pub fn normalize(typed: &str) -> Option<Zeroizing<String>> {
    if typed.len() > 64 {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(CHARS + CHARS / GROUP));
    let mut n = 0;
    for c in typed.chars() {
        if c == '-' || c == ' ' {
            continue;
        }
        let c = c.to_ascii_lowercase();
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        if n > 0 && n % GROUP == 0 {
            out.push('-');
        }
        out.push(c);
        n += 1;
    }
    (n == CHARS).then_some(out)
}

/// The stored form of `code` (normalised) for `user`.
pub fn hash(user: Uuid, code: &str) -> SecretHash {
    let mut input = Zeroizing::new(Vec::with_capacity(HASH_LABEL.len() + 16 + code.len()));
    input.extend_from_slice(HASH_LABEL);
    input.extend_from_slice(user.as_bytes());
    input.extend_from_slice(code.as_bytes());
    SecretHash::from_bytes(sha256(&input))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn codes_are_distinct_readable_and_normalise_to_themselves() {
        let user = Uuid::new_v4();
        let (clear, hashes) = generate(user).unwrap();
        assert_eq!(clear.len(), COUNT);
        assert_eq!(hashes.len(), COUNT);
        for (code, stored) in clear.iter().zip(&hashes) {
            assert_eq!(code.len(), 19, "{}", code.as_str());
            assert_eq!(code.split('-').count(), 4);
            let typed = code.to_uppercase().replace('-', " ");
            let normal = normalize(&typed).unwrap();
            assert_eq!(normal.as_str(), code.as_str());
            assert_eq!(hash(user, &normal), *stored);
            // Another user's hash of the same code differs.
            assert_ne!(hash(Uuid::new_v4(), &normal), *stored);
        }
    }

    #[test]
    fn anything_else_is_no_code() {
        for junk in [
            "",
            "123456",
            "abcd-efgh-ijkm-npq",
            "abcd-efgh-ijkm-npqr1",
            "abcd-efgh-ijkm-npq1",
            "äbcd-efgh-ijkm-npqr",
            &"a".repeat(100),
        ] {
            assert!(normalize(junk).is_none(), "{junk:?}");
        }
    }
}
