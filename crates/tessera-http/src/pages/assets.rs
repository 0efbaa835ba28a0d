//! The pages' only static files, the stylesheet, the icon and the passkey
//! script, made once at start (the first two from the configured accent)
//! and served under names holding a hash of their content: a browser may
//! keep them forever, and a new accent (or a new release) is a new name.
//! Inline styles or scripts would need a weaker CSP.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tessera_core::secret::sha256;

use super::ui::Accent;

/// The stylesheet, with `{{accent}}` and `{{on-accent}}` to fill in.
const STYLESHEET: &str = include_str!("../../assets/style.css");
/// The icon (favicon and header mark), with `{{accent}}` and `{{on-accent}}`.
const ICON: &str = include_str!("../../assets/icon.svg");
/// The passkey ceremonies of `/login` and `/account` (WebAuthn needs a
/// script; nothing else on the pages does).
const PASSKEYS_SCRIPT: &str = include_str!("../../assets/passkeys.js");
/// Hex digits of the content hash in a file name (64 bits: no collisions
/// between two versions of one file).
const HASH_CHARS: usize = 16;
/// What browsers and shared caches may do with a hashed file.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One file served from memory.
#[derive(Debug)]
struct Asset {
    /// Path the pages link to, e.g. `/assets/style.0123456789abcdef.css`.
    path: String,
    content_type: &'static str,
    body: bytes::Bytes,
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: String) -> Self {
        let hash: String = sha256(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .chars()
            .take(HASH_CHARS)
            .collect();
        Self {
            path: format!("/assets/{stem}.{hash}.{extension}"),
            content_type,
            body: bytes::Bytes::from(body),
        }
    }

    fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }

    fn response(&self) -> Response {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(self.content_type),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
            ],
            self.body.clone(),
        )
            .into_response()
    }
}

/// The stylesheet and the icon in the configured accent, and the script.
#[derive(Debug)]
pub struct Assets {
    stylesheet: Asset,
    icon: Asset,
    script: Asset,
}

impl Assets {
    /// Fills the accent into both files and names them by their hashes.
    pub fn new(accent: Accent) -> Self {
        let fill = |template: &str| {
            template
                .replace("{{accent}}", &accent.css())
                .replace("{{on-accent}}", accent.text_on())
        };
        Self {
            stylesheet: Asset::new("style", "css", "text/css; charset=utf-8", fill(STYLESHEET)),
            icon: Asset::new("icon", "svg", "image/svg+xml", fill(ICON)),
            script: Asset::new(
                "passkeys",
                "js",
                "text/javascript; charset=utf-8",
                PASSKEYS_SCRIPT.to_owned(),
            ),
        }
    }

    /// Path of the stylesheet.
    pub fn stylesheet_path(&self) -> &str {
        &self.stylesheet.path
    }

    /// Path of the icon.
    pub fn icon_path(&self) -> &str {
        &self.icon.path
    }

    /// Path of the passkey script.
    pub fn script_path(&self) -> &str {
        &self.script.path
    }

    fn find(&self, file_name: &str) -> Option<&Asset> {
        [&self.stylesheet, &self.icon, &self.script]
            .into_iter()
            .find(|asset| asset.file_name() == file_name)
    }

    /// The answer to `GET /assets/{file_name}`: the current files only; an
    /// old hash is a 404, so a stale page never gets a mismatched file
    /// cached for a year.
    pub fn response(&self, file_name: &str) -> Response {
        match self.find(file_name) {
            Some(asset) => asset.response(),
            None => (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "not found\n",
            )
                .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_content() -> Result<(), String> {
        let blue = Assets::new(Accent::DEFAULT);
        let red = Assets::new(Accent::parse("#c00")?);
        assert_ne!(blue.stylesheet_path(), red.stylesheet_path());
        assert_ne!(blue.icon_path(), red.icon_path());
        assert_eq!(
            blue.stylesheet_path(),
            Assets::new(Accent::DEFAULT).stylesheet_path()
        );
        assert!(blue.stylesheet_path().starts_with("/assets/style."));
        assert!(blue.stylesheet_path().ends_with(".css"));
        let css = String::from_utf8_lossy(&red.stylesheet.body).into_owned();
        assert!(css.contains("#cc0000"), "the accent is in the stylesheet");
        assert!(!css.contains("{{"), "every placeholder is filled");
        assert!(blue.find("style.css").is_none());
        assert!(blue.find(blue.icon.file_name()).is_some());
        assert!(blue.script_path().starts_with("/assets/passkeys."));
        assert!(blue.script_path().ends_with(".js"));
        assert!(blue.find(blue.script.file_name()).is_some());
        Ok(())
    }
}
