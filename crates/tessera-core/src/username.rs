//! Usernames: what a user typed, and the normalised form that makes them unique.
//!
//! Two usernames are the same when they are equal after Unicode NFKC
//! normalisation and case folding, so `Alice`, `ALICE` and `Ａｌｉｃｅ`
//! (full-width) are one account.

use unicode_normalization::UnicodeNormalization;

/// Longest username, in characters (of the normalised form).
pub const MAX_USERNAME_CHARS: usize = 64;

/// A username that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    normalized: String,
}

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Empty, or only white space.
    #[error("the username is empty")]
    Empty,
    /// Over [`MAX_USERNAME_CHARS`].
    #[error("the username is longer than {MAX_USERNAME_CHARS} characters")]
    TooLong,
    /// Starts or ends with white space.
    #[error("the username starts or ends with white space")]
    SurroundingWhitespace,
    /// Holds a control, format (e.g. bidirectional override), or other
    /// invisible character that could make two names look alike.
    #[error("the username contains a control or invisible character")]
    ForbiddenCharacter,
}

impl Username {
    /// Validates and normalises `raw`.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if raw.trim().is_empty() {
            return Err(UsernameError::Empty);
        }
        // Reject early so that a megabyte of input costs nothing to normalise.
        if raw.chars().count() > MAX_USERNAME_CHARS * 4 {
            return Err(UsernameError::TooLong);
        }
        if raw.chars().any(is_forbidden) {
            return Err(UsernameError::ForbiddenCharacter);
        }
        let display: String = raw.nfc().collect();
        if display.trim() != display {
            return Err(UsernameError::SurroundingWhitespace);
        }
        let normalized = normalize(&display);
        if normalized.chars().any(is_forbidden) {
            return Err(UsernameError::ForbiddenCharacter);
        }
        let length = normalized.chars().count();
        if length == 0 || normalized.trim().is_empty() {
            return Err(UsernameError::Empty);
        }
        if length > MAX_USERNAME_CHARS || display.chars().count() > MAX_USERNAME_CHARS {
            return Err(UsernameError::TooLong);
        }
        Ok(Self {
            display,
            normalized,
        })
    }

    /// The name as the user wrote it (NFC), for display.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The unique key: NFKC, case-folded.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Rebuilds a username read back from the store.
    pub fn from_stored(display: String, normalized: String) -> Self {
        Self {
            display,
            normalized,
        }
    }
}

/// NFKC, lower-cased, then NFKC again (lower-casing can denormalise).
pub fn normalize(raw: &str) -> String {
    let folded: String = raw.nfkc().flat_map(char::to_lowercase).collect();
    folded.nfkc().collect()
}

fn is_forbidden(c: char) -> bool {
    if c.is_control() {
        return true;
    }
    matches!(c,
        // bidirectional controls: the "Trojan Source" characters
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        // zero-width and invisible characters
        | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}'
        // private use and unassigned-by-design
        | '\u{E000}'..='\u{F8FF}' | '\u{FFF0}'..='\u{FFFF}'
        // tag characters
        | '\u{E0000}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_width_variants_normalise_to_one_key() -> Result<(), UsernameError> {
        let a = Username::parse("Alice")?;
        let b = Username::parse("ALICE")?;
        let c = Username::parse("Ａｌｉｃｅ")?;
        assert_eq!(a.normalized(), "alice");
        assert_eq!(a.normalized(), b.normalized());
        assert_eq!(a.normalized(), c.normalized());
        assert_eq!(a.display(), "Alice");
        Ok(())
    }

    #[test]
    fn composed_and_decomposed_forms_are_one_key() -> Result<(), UsernameError> {
        let composed = Username::parse("Jos\u{00E9}")?;
        let decomposed = Username::parse("Jose\u{0301}")?;
        assert_eq!(composed.normalized(), decomposed.normalized());
        Ok(())
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(Username::parse("   "), Err(UsernameError::Empty));
        assert_eq!(
            Username::parse(" bob"),
            Err(UsernameError::SurroundingWhitespace)
        );
        assert_eq!(
            Username::parse("bo\0b"),
            Err(UsernameError::ForbiddenCharacter)
        );
        assert_eq!(
            Username::parse("bo\u{202E}b"),
            Err(UsernameError::ForbiddenCharacter)
        );
        assert_eq!(
            Username::parse("bo\u{200B}b"),
            Err(UsernameError::ForbiddenCharacter)
        );
        assert_eq!(
            Username::parse(&"a".repeat(65)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(
            Username::parse(&"a".repeat(100_000)),
            Err(UsernameError::TooLong)
        );
    }

    #[test]
    fn sixty_four_characters_are_fine() {
        assert!(Username::parse(&"é".repeat(64)).is_ok());
    }

    #[test]
    fn ligatures_expanding_past_the_limit_are_refused() {
        // U+FB03 (ﬃ) becomes three letters under NFKC.
        assert_eq!(
            Username::parse(&"\u{FB03}".repeat(30)),
            Err(UsernameError::TooLong)
        );
    }
}
