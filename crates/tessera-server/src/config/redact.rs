//! Secrets out of anything printed: configured secrets are shown as
//! `<redacted>`, URLs without their password (in the user part or in a
//! query parameter).

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serializer;

/// What a secret is printed as.
pub const REDACTED: &str = "<redacted>";

/// Query parameters whose value may be a secret (`password`, `sslpassword`,
/// `auth_token`, `sslkey`, ...): matched as parts of the name.
const SECRET_PARAMETERS: &[&str] = &["pass", "secret", "token", "key", "auth"];

/// A URL without its password: `scheme://user:***@host/...`, and every
/// query parameter that may hold a secret as `***`. Whatever sits before the
/// last `@` past the user name is hidden, so a password holding characters
/// a URL reserves cannot show through either.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // `sqlite:FILE` names a file; anything else without an authority
        // has nothing that tells a secret apart.
        return if url.starts_with("sqlite:") && !url.contains('?') {
            url.to_owned()
        } else {
            REDACTED.to_owned()
        };
    };
    let (authority, after) = match rest.rfind('@') {
        Some(at) => {
            let user = rest
                .get(..at)
                .and_then(|userinfo| userinfo.split(':').next())
                .unwrap_or_default();
            let hidden = rest
                .get(..at)
                .is_some_and(|userinfo| userinfo.contains(':'));
            let user = if hidden {
                format!("{user}:***@")
            } else {
                format!("{user}@")
            };
            (user, rest.get(at + 1..).unwrap_or_default())
        }
        None => (String::new(), rest),
    };
    let after = match after.split_once('?') {
        None => after.to_owned(),
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret_parameter(name) => format!("{name}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
    };
    format!("{scheme}://{authority}{after}")
}

fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETERS.iter().any(|part| name.contains(part))
}

/// Serialises a configured secret as [`REDACTED`] (nothing when unset).
pub(super) fn secret<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some(REDACTED),
        None => s.serialize_none(),
    }
}

/// Serialises a configured URL without its password.
pub(super) fn secret_url<S: Serializer>(
    value: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => s.serialize_some(&url(value.expose_secret())),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            url("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(url("redis://:secret@cache:6379"), "redis://:***@cache:6379");
        assert_eq!(url("postgres://db/x"), "postgres://db/x");
        assert_eq!(url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(
            url("postgres://db/x?sslmode=require&password=secret&PGPASSWORD=s2"),
            "postgres://db/x?sslmode=require&password=***&PGPASSWORD=***"
        );
        // Reserved characters left unencoded in a password.
        for raw in [
            "postgres://u:se/cr@et@db/x",
            "postgres://u:se?cret@db/x",
            "postgres://u:se#cr:et@db/x",
        ] {
            assert_eq!(url(raw), "postgres://u:***@db/x", "{raw}");
        }
        assert_eq!(url("not a url secret"), "<redacted>");
        assert_eq!(url("sqlite://data/tessera.db"), "sqlite://data/tessera.db");
        assert_eq!(url("sqlite:tessera.db"), "sqlite:tessera.db");
    }
}
