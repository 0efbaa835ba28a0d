//! What a granted scope lets an application do, in plain words: the
//! consent page asks with these words and the account page lists them.

use tessera_core::authorization::has_scope;

/// The permissions `scope` (space-separated) gives, in plain words.
pub fn describe(scope: &str) -> Vec<&'static str> {
    let mut permissions = vec!["know who you are on this site (your user id)"];
    if has_scope(scope, "profile") {
        permissions.push("see your username");
    }
    permissions.push("act for you while this session lasts");
    permissions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_adds_the_username() {
        assert_eq!(describe("openid").len(), 2);
        assert!(describe("openid profile").contains(&"see your username"));
        assert!(!describe("openid profiles").contains(&"see your username"));
    }
}
