//! How a session's user proved who they are: the set of authentication
//! methods (RFC 8176 `amr` values) and the assurance level (`acr`) it
//! amounts to.
//!
//! A small bit set, so a session copies it for free and the stores keep it
//! as one integer.

/// `acr` of a session proven by one factor.
pub const ACR_ONE_FACTOR: &str = "urn:tessera:acr:pwd";
/// `acr` of a session proven by two factors, or by a passkey alone (a
/// hardware-bound key with user verification is itself two factors, and
/// resists phishing).
pub const ACR_MULTI_FACTOR: &str = "urn:tessera:acr:mfa";

/// One authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A password (`pwd`).
    Password,
    /// A one-time code: TOTP or a recovery code (`otp`).
    OneTimeCode,
    /// A hardware-bound key: a passkey (`hwk`).
    HardwareKey,
}

impl AuthMethod {
    /// Every method, in the order `amr` lists them.
    pub const ALL: [AuthMethod; 3] = [
        AuthMethod::Password,
        AuthMethod::OneTimeCode,
        AuthMethod::HardwareKey,
    ];

    /// The RFC 8176 name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "pwd",
            AuthMethod::OneTimeCode => "otp",
            AuthMethod::HardwareKey => "hwk",
        }
    }

    /// A method by its RFC 8176 name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    fn bit(self) -> u8 {
        match self {
            AuthMethod::Password => 1,
            AuthMethod::OneTimeCode => 2,
            AuthMethod::HardwareKey => 4,
        }
    }
}

/// The methods a session was authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthMethods(u8);

impl Default for AuthMethods {
    /// A password alone: what every session was before second factors
    /// existed.
    fn default() -> Self {
        Self::PASSWORD
    }
}

impl AuthMethods {
    /// A password alone.
    pub const PASSWORD: AuthMethods = AuthMethods(1);
    /// No method (only as the start of a set being built).
    pub const NONE: AuthMethods = AuthMethods(0);
    /// The bits every known method uses.
    const KNOWN: u8 = 1 | 2 | 4;

    /// The set with `method` added.
    #[must_use]
    pub fn with(self, method: AuthMethod) -> Self {
        Self(self.0 | method.bit())
    }

    /// Whether `method` is in the set.
    pub fn contains(self, method: AuthMethod) -> bool {
        self.0 & method.bit() != 0
    }

    /// Whether no method is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set as the stores keep it.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// A stored set back; `None` for unknown bits or no method at all.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits != 0 && bits & !Self::KNOWN == 0).then_some(Self(bits))
    }

    /// The methods in `amr` order.
    pub fn iter(self) -> impl Iterator<Item = AuthMethod> {
        AuthMethod::ALL
            .into_iter()
            .filter(move |m| self.contains(*m))
    }

    /// The `amr` claim (RFC 8176 names; `mfa` too when more than one
    /// factor was used).
    pub fn amr(self) -> Vec<String> {
        let mut out: Vec<String> = self.iter().map(|m| m.as_str().to_owned()).collect();
        if out.len() > 1 {
            out.push("mfa".to_owned());
        }
        out
    }

    /// Whether the set amounts to multi-factor authentication: two methods,
    /// or a passkey (possession of the key plus the device's user
    /// verification).
    pub fn is_multi_factor(self) -> bool {
        self.0.count_ones() > 1 || self.contains(AuthMethod::HardwareKey)
    }

    /// The `acr` claim.
    pub fn acr(self) -> &'static str {
        if self.is_multi_factor() {
            ACR_MULTI_FACTOR
        } else {
            ACR_ONE_FACTOR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in AuthMethod::ALL {
            assert_eq!(AuthMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(AuthMethod::parse("sms"), None);
    }

    #[test]
    fn amr_and_acr_follow_the_methods() {
        let pwd = AuthMethods::PASSWORD;
        assert_eq!(pwd.amr(), vec!["pwd"]);
        assert_eq!(pwd.acr(), ACR_ONE_FACTOR);
        let two = pwd.with(AuthMethod::OneTimeCode);
        assert_eq!(two.amr(), vec!["pwd", "otp", "mfa"]);
        assert_eq!(two.acr(), ACR_MULTI_FACTOR);
        let passkey = AuthMethods::NONE.with(AuthMethod::HardwareKey);
        assert_eq!(passkey.amr(), vec!["hwk"]);
        assert_eq!(passkey.acr(), ACR_MULTI_FACTOR);
    }

    #[test]
    fn stored_bits_round_trip_and_unknown_ones_are_refused() {
        for bits in 1..8u8 {
            assert_eq!(
                AuthMethods::from_bits(bits).map(AuthMethods::bits),
                Some(bits)
            );
        }
        assert_eq!(AuthMethods::from_bits(0), None);
        assert_eq!(AuthMethods::from_bits(8), None);
        assert_eq!(AuthMethods::default(), AuthMethods::PASSWORD);
    }
}
