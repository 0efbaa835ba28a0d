//! Passkeys as the stores keep them: a user's registered WebAuthn
//! credentials, and the state of a ceremony between its start and its
//! finish.
//!
//! The credential itself (public key, counter, backup flags) is kept as
//! the JSON `webauthn-rs` writes for it; the store needs only its id (to
//! find it at sign-in) and its owner.

use time::OffsetDateTime;
use uuid::Uuid;

/// Longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// One registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Tessera's id for it (safe to show, used in URLs).
    pub id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// The authenticator's credential id (unique across all users).
    pub credential_id: Vec<u8>,
    /// The name its user gave it.
    pub name: String,
    /// The credential as `webauthn-rs` serialises it (public key, counter,
    /// backup flags).
    pub credential: String,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// When it last signed in.
    pub last_used_at: Option<OffsetDateTime>,
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Adding a passkey to the signed-in user's account.
    Registration,
    /// Signing in with a passkey alone: the authenticator names the user.
    SignIn,
    /// Proving a second factor for a user whose password was checked.
    SecondFactor,
}

impl CeremonyKind {
    /// The stable name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Registration => "registration",
            CeremonyKind::SignIn => "sign_in",
            CeremonyKind::SecondFactor => "second_factor",
        }
    }

    /// A kind by its stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            CeremonyKind::Registration,
            CeremonyKind::SignIn,
            CeremonyKind::SecondFactor,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

/// The server's half of a ceremony under way: single use, short-lived,
/// stored (not held by the node that began it), so any node may finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// Its id, handed to the browser with the options.
    pub id: Uuid,
    /// What it is for.
    pub kind: CeremonyKind,
    /// The user it is bound to (none for a sign-in by passkey alone).
    pub user_id: Option<Uuid>,
    /// The `webauthn-rs` state (challenge, policy, allowed credentials) as JSON.
    pub state: String,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// A passkey name from user input: trimmed, 1 to [`MAX_NAME_CHARS`]
/// characters, no control characters; `None` otherwise.
pub fn clean_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return None;
    }
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(clean_name("  Laptop  ").as_deref(), Some("Laptop"));
        assert_eq!(clean_name("   "), None);
        assert_eq!(clean_name("a\u{0}b"), None);
        assert_eq!(clean_name("line\nbreak"), None);
        assert!(clean_name(&"é".repeat(MAX_NAME_CHARS)).is_some());
        assert_eq!(clean_name(&"é".repeat(MAX_NAME_CHARS + 1)), None);
    }

    #[test]
    fn ceremony_kinds_round_trip() {
        for kind in [
            CeremonyKind::Registration,
            CeremonyKind::SignIn,
            CeremonyKind::SecondFactor,
        ] {
            assert_eq!(CeremonyKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(CeremonyKind::parse("other"), None);
    }
}
