//! A QR code as inline SVG, made here (no image service sees the secret
//! it encodes): a path of dark modules on a white square, with no script
//! and no style attribute, so the pages' CSP needs nothing more.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// `text` as an SVG element to put in a page; `None` if it is too long for
/// a QR code.
pub fn svg(text: &str, label: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Inline SVG takes no XML declaration; the label names it for screen
    // readers (the `label` is escaped: it may hold a username).
    let start = image.find("<svg")?;
    let element = image.get(start + "<svg".len()..)?;
    Some(format!(
        r#"<svg role="img" aria-label="{}"{element}"#,
        escape(label)
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_inline_svg_without_script_or_style() {
        let svg = svg("otpauth://totp/Tessera:alice?secret=ABC", "QR \"code\" <x>").unwrap();
        assert!(
            svg.starts_with(r#"<svg role="img" aria-label="QR &quot;code&quot; &lt;x&gt;" xmlns="#)
        );
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
        assert!(!svg.contains("script"));
        assert!(!svg.contains("style"));
        assert!(svg.contains("<path"));
    }

    #[test]
    fn too_much_text_is_no_code() {
        assert!(svg(&"x".repeat(10_000), "big").is_none());
    }
}
