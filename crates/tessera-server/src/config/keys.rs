//! Every key the loader accepts, read from the configuration types
//! themselves, so the help text, `tessera config check` and the example
//! file cannot drift from the loader.
//!
//! serde's derived code knows each struct's field names and hands them to
//! `de::Error::unknown_field` when it meets a key it does not know (the
//! sections deny unknown fields). A probe feeds the loader's tree an
//! impossible key at each level and collects the names offered back.

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapDeserializer;
use serde::de::{self, IntoDeserializer, Visitor};

use super::FileConfig;

/// A key no configuration can hold: the probe's question.
const PROBE: &str = "\u{0}probe";

/// Every dotted key of the configuration file (`listen`,
/// `session.idle_timeout`, ...), in the loader's order.
pub fn keys() -> Vec<String> {
    let mut found = Vec::new();
    collect(&mut Vec::new(), &mut found);
    found
}

/// A known key that `unknown` (an unknown dotted key) was probably meant
/// to be: the same letters, with sections joined otherwise (a variable with
/// one underscore where two belong, `session_idle_timeout`).
pub(super) fn meant(unknown: &str) -> Option<String> {
    let letters = |key: &str| -> String {
        key.chars()
            .filter(|c| *c != '.' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let wanted = letters(unknown);
    keys().into_iter().find(|key| letters(key) == wanted)
}

fn collect(path: &mut Vec<&'static str>, found: &mut Vec<String>) {
    let Some(fields) = fields_at(path) else {
        found.push(path.join("."));
        return;
    };
    for field in fields {
        path.push(field);
        collect(path, found);
        path.pop();
    }
}

/// The field names of the section at `path` (the root when empty), or
/// `None` when `path` names a value rather than a section.
fn fields_at(path: &[&'static str]) -> Option<&'static [&'static str]> {
    let mut node = Node::Map(vec![(PROBE, Node::Unit)]);
    for key in path.iter().rev() {
        node = Node::Map(vec![(key, node)]);
    }
    match FileConfig::deserialize(node) {
        Err(Probe::Fields(fields)) => Some(fields),
        // A value refuses a map with its own error: not a section.
        Err(Probe::Other) | Ok(_) => None,
    }
}

/// The probe's input: nested maps ending in a unit.
enum Node {
    Map(Vec<(&'static str, Node)>),
    Unit,
}

impl<'de> IntoDeserializer<'de, Probe> for Node {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for Node {
    type Error = Probe;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Probe> {
        match self {
            Node::Map(entries) => visitor.visit_map(MapDeserializer::new(entries.into_iter())),
            Node::Unit => visitor.visit_unit(),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// What the probe learns: the field names a section offered, or nothing.
#[derive(Debug)]
enum Probe {
    Fields(&'static [&'static str]),
    Other,
}

impl de::Error for Probe {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probe::Other
    }

    fn unknown_field(_: &str, expected: &'static [&'static str]) -> Self {
        Probe::Fields(expected)
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("configuration key probe")
    }
}

impl std::error::Error for Probe {}

#[cfg(test)]
mod tests {
    use super::keys;

    #[test]
    fn every_key_and_section_is_found() {
        let keys = keys();
        for key in [
            "listen",
            "public_url",
            "admin_token",
            "key_encryption_key_file",
            "session.idle_timeout",
            "cookie.same_site",
            "password.workers",
            "token.refresh_reuse_grace",
            "rate_limit.registrations",
            "tls.cert",
            "ui.accent",
            "forward_auth.allowed_hosts",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing: {keys:?}");
        }
        assert!(
            !keys.iter().any(|k| k == "session" || k == "token"),
            "sections are not keys: {keys:?}"
        );
        assert_eq!(
            super::meant("session_idle_timeout").as_deref(),
            Some("session.idle_timeout")
        );
        assert_eq!(
            super::meant("forward_auth_allowed_hosts").as_deref(),
            Some("forward_auth.allowed_hosts")
        );
        assert_eq!(super::meant("frobnicate"), None);
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
    }
}
