//! OAuth clients: the applications registered to sign users in through the
//! authorization-code flow, and the rules their registration follows.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::keys::Algorithm;
use crate::secret::SecretHash;

/// Most redirect URIs (of either kind) one client may register.
pub const MAX_REDIRECT_URIS: usize = 16;
/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;
/// Longest client name accepted, in characters.
pub const MAX_CLIENT_NAME_LEN: usize = 100;

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// The `client_id`.
    pub id: Uuid,
    /// Shown to users on the consent page and beside its sessions.
    pub name: String,
    /// Where codes may be sent: compared exactly, character for character.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser.
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (SPA, native app) has no secret.
    pub public: bool,
    /// SHA-256 of a confidential client's secret.
    pub secret_hash: Option<SecretHash>,
    /// A first-party client: no consent page.
    pub skip_consent: bool,
    /// The ID token algorithm the client registered, if any.
    pub id_token_alg: Option<Algorithm>,
    /// When it was registered.
    pub created_at: OffsetDateTime,
}

impl OAuthClient {
    /// Whether `uri` is one of its redirect URIs, exactly.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    /// Whether `uri` is one of its post-logout redirect URIs, exactly.
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
    }
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The name is empty, too long or has control characters.
    #[error("the client name must be 1 to 100 characters without control characters")]
    Name,
    /// A confidential client or a public one needs at least one redirect URI.
    #[error("at least one redirect URI is required")]
    NoRedirectUri,
    /// Too many URIs.
    #[error("at most 16 redirect URIs of each kind")]
    TooManyUris,
    /// A URI that cannot be a redirect target.
    #[error("redirect URI {uri:?} refused: {reason}")]
    RedirectUri {
        /// The URI as given.
        uri: String,
        /// Why.
        reason: &'static str,
    },
    /// An algorithm the server cannot sign ID tokens with.
    #[error("id_token_signed_response_alg must be RS256, ES256 or EdDSA")]
    Algorithm,
}

/// Checks a client name.
pub fn validate_name(name: &str) -> Result<String, ClientError> {
    let trimmed = name.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > MAX_CLIENT_NAME_LEN || trimmed.chars().any(char::is_control) {
        return Err(ClientError::Name);
    }
    Ok(trimmed.to_owned())
}

/// Checks a list of redirect URIs (`required`: at least one).
pub fn validate_redirect_uris(uris: &[String], required: bool) -> Result<(), ClientError> {
    if required && uris.is_empty() {
        return Err(ClientError::NoRedirectUri);
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(ClientError::TooManyUris);
    }
    uris.iter().try_for_each(|u| validate_redirect_uri(u))
}

/// One redirect URI: absolute, no fragment, no credentials; `https`, or
/// `http` to a loopback host only (RFC 8252 §7.3), or a private-use scheme
/// of a native app (RFC 8252 §7.1, a reverse domain name such as
/// `com.example.app:/cb`). Schemes a browser would run are refused.
pub fn validate_redirect_uri(uri: &str) -> Result<(), ClientError> {
    let refuse = |reason: &'static str| ClientError::RedirectUri {
        uri: uri.chars().take(200).collect(),
        reason,
    };
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(refuse("too long"));
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refuse("whitespace or control characters"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| refuse("not an absolute URI"))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(refuse("a fragment is not allowed"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse("credentials are not allowed"));
    }
    match parsed.scheme() {
        "https" => {
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(refuse("no host"));
            }
            Ok(())
        }
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => Err(refuse("http only to a loopback address")),
        },
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws" | "wss" => {
            Err(refuse("scheme not allowed"))
        }
        // A private-use scheme must look like a reverse domain name, so it
        // is one the app's owner controls (RFC 8252 §7.1).
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(refuse(
            "custom schemes must be reverse domain names (com.example.app)",
        )),
    }
}

/// Checks a requested ID-token algorithm.
pub fn validate_id_token_alg(raw: &str) -> Result<Algorithm, ClientError> {
    match Algorithm::parse(raw) {
        Some(alg) if alg.is_public() => Ok(alg),
        _ => Err(ClientError::Algorithm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_rfc_8252() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1:8000/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(validate_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/relative",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "myapp:/cb",
            "https://user:pw@app.example.com/",
            "https://app.example.com/a b",
            "",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_algorithms() {
        assert_eq!(validate_name("  Photos  "), Ok("Photos".into()));
        assert!(validate_name("").is_err());
        assert!(validate_name("a\u{0}b").is_err());
        assert_eq!(validate_id_token_alg("ES256"), Ok(Algorithm::ES256));
        assert!(validate_id_token_alg("HS256").is_err());
        assert!(validate_id_token_alg("none").is_err());
    }
}
