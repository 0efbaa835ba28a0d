//! The `[ui]` section: how the web pages look (`ui.title`, `ui.accent`).

use serde::{Deserialize, Serialize};
use tessera_http::pages::ui::{Accent, UiConfig};

use super::ConfigError;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct UiSection {
    title: String,
    accent: String,
}

impl Default for UiSection {
    fn default() -> Self {
        let defaults = UiConfig::default();
        Self {
            title: defaults.title,
            accent: defaults.accent.css(),
        }
    }
}

impl UiSection {
    pub(super) fn validate(self) -> Result<UiConfig, ConfigError> {
        Ok(UiConfig {
            title: UiConfig::check_title(&self.title)
                .map_err(|e| ConfigError::at("ui.title", e))?,
            accent: Accent::parse(self.accent.trim())
                .map_err(|e| ConfigError::at("ui.accent", e))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Settings;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, super::ConfigError> {
        Settings::load(
            None,
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn title_and_accent_are_read_and_checked() -> Result<(), super::ConfigError> {
        let settings = load(&[])?;
        assert_eq!(settings.ui.title, "Tessera");
        let settings = load(&[
            ("TESSERA_UI__TITLE", "Acme ID"),
            ("TESSERA_UI__ACCENT", "#C0FFEE"),
        ])?;
        assert_eq!(settings.ui.title, "Acme ID");
        assert_eq!(settings.ui.accent.css(), "#c0ffee");
        for (var, value, key) in [
            ("TESSERA_UI__ACCENT", "blue", "ui.accent"),
            ("TESSERA_UI__ACCENT", "#12345", "ui.accent"),
            ("TESSERA_UI__ACCENT", "#123;}", "ui.accent"),
            ("TESSERA_UI__TITLE", " ", "ui.title"),
            ("TESSERA_UI__COLOUR", "#123", "ui.colour"),
        ] {
            let refused = load(&[(var, value)]).err();
            assert_eq!(
                refused.as_ref().map(|e| e.key.as_str()),
                Some(key),
                "{var}={value}"
            );
            assert_eq!(
                refused.and_then(|e| e.env_var).as_deref(),
                Some(var),
                "{var}={value}"
            );
        }
        Ok(())
    }
}
