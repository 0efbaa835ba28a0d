//! How the pages look for a deployment: the product name and the accent
//! colour (`ui.title`, `ui.accent`), checked once at start.

/// Longest product name shown in the page header and titles.
pub const MAX_TITLE_CHARS: usize = 64;

/// The look of the pages, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiConfig {
    /// Product name in the header and every page title.
    pub title: String,
    /// Accent colour of buttons, links and focus rings.
    pub accent: Accent,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            title: "Tessera".into(),
            accent: Accent::DEFAULT,
        }
    }
}

impl UiConfig {
    /// Checks a configured product name: 1 to [`MAX_TITLE_CHARS`]
    /// characters, no control characters (it is escaped when shown anyway).
    pub fn check_title(title: &str) -> Result<String, String> {
        let trimmed = title.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".into());
        }
        if trimmed.chars().count() > MAX_TITLE_CHARS {
            return Err(format!("must be at most {MAX_TITLE_CHARS} characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(trimmed.to_owned())
    }
}

/// An sRGB colour written as a CSS hex colour (`#rgb` or `#rrggbb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accent {
    rgb: [u8; 3],
}

impl Accent {
    /// The accent used unless one is configured (a blue that keeps white
    /// text readable on it).
    pub const DEFAULT: Accent = Accent {
        rgb: [0x25, 0x63, 0xeb],
    };

    /// Parses `#rgb` or `#rrggbb` (any case). Nothing else is accepted: the
    /// value ends up in the stylesheet, so it must not be able to carry CSS.
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = || format!("`{text}` is not a CSS hex colour like #2563eb or #26e");
        let digits = text.strip_prefix('#').ok_or_else(refuse)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refuse());
        }
        let nibble = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
        let nibbles: Vec<u8> = digits.bytes().filter_map(nibble).collect();
        let rgb = match nibbles.as_slice() {
            [r, g, b] => [r * 17, g * 17, b * 17],
            [r1, r2, g1, g2, b1, b2] => [r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2],
            _ => return Err(refuse()),
        };
        Ok(Self { rgb })
    }

    /// `#rrggbb`, lower case.
    pub fn css(&self) -> String {
        let [r, g, b] = self.rgb;
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// Black or white, whichever reads better on the accent (WCAG contrast).
    pub fn text_on(&self) -> &'static str {
        let luminance = relative_luminance(self.rgb);
        // Contrast with white: 1.05 / (L + 0.05); with black: (L + 0.05) / 0.05.
        if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 {
            "#ffffff"
        } else {
            "#111111"
        }
    }
}

/// WCAG 2 relative luminance of an sRGB colour.
fn relative_luminance(rgb: [u8; 3]) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = rgb;
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_are_css_hex_colours_only() {
        assert_eq!(
            Accent::parse("#2563EB").map(|a| a.css()).ok(),
            Some("#2563eb".into())
        );
        assert_eq!(
            Accent::parse("#26e").map(|a| a.css()).ok(),
            Some("#2266ee".into())
        );
        for bad in [
            "",
            "#",
            "2563eb",
            "#2563e",
            "#2563ebff",
            "#ggg",
            "red",
            "#26e;}",
            "#26e}body{",
            "# 26e",
            "#２６ｅ",
            "rgb(1,2,3)",
            "#2563eb ",
        ] {
            assert!(Accent::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn text_on_the_accent_is_readable() {
        assert_eq!(Accent::DEFAULT.text_on(), "#ffffff");
        assert_eq!(
            Accent::parse("#ffd700").map(|a| a.text_on()).ok(),
            Some("#111111")
        );
        assert_eq!(
            Accent::parse("#000").map(|a| a.text_on()).ok(),
            Some("#ffffff")
        );
    }

    #[test]
    fn titles_are_bounded_and_printable() {
        assert_eq!(
            UiConfig::check_title("  Acme ID ").ok(),
            Some("Acme ID".into())
        );
        assert!(UiConfig::check_title(" ").is_err());
        assert!(UiConfig::check_title("a\u{7}b").is_err());
        assert!(UiConfig::check_title(&"x".repeat(MAX_TITLE_CHARS + 1)).is_err());
    }
}
