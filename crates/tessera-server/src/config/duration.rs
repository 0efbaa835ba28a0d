//! Durations in configuration: `90s`, `30m`, `12h`, `14d`, and compounds
//! such as `1h30m` or `500ms`.

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A duration written like `90s`, `30m`, `12h`, `14d`, `1h30m` or `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub time::Duration);

/// The units a configuration duration may use.
const UNITS: &[&str] = &["ms", "s", "m", "h", "d"];
/// Longer than any lifetime or window anyone means.
const MAX: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 86_400);

impl ConfigDuration {
    /// Parses whole numbers with units `ms`, `s`, `m`, `h`, `d`, run together
    /// (`1h30m`). humantime does the arithmetic; its wider grammar (spaces,
    /// words, years, months) is refused first, so a value reads the same to
    /// every operator.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let hint = "write e.g. 90s, 30m, 12h, 14d, 1h30m or 500ms";
        let mut rest = raw;
        if rest.is_empty() {
            return Err(format!("an empty duration; {hint}"));
        }
        while !rest.is_empty() {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                return Err(format!("`{raw}` is not a duration; {hint}"));
            }
            let after = rest.get(digits..).unwrap_or_default();
            let unit_len = after.len()
                - after
                    .trim_start_matches(|c: char| c.is_ascii_lowercase())
                    .len();
            let unit = after.get(..unit_len).unwrap_or_default();
            if unit.is_empty() {
                return Err(format!("`{raw}` has no unit; {hint}"));
            }
            if !UNITS.contains(&unit) {
                return Err(format!(
                    "`{raw}` has an unknown unit `{unit}`; use ms, s, m, h or d"
                ));
            }
            rest = after.get(unit_len..).unwrap_or_default();
        }
        let parsed = humantime::parse_duration(raw)
            .map_err(|_| format!("`{raw}` is longer than ten years"))?;
        if parsed > MAX {
            return Err(format!("`{raw}` is longer than ten years"));
        }
        time::Duration::try_from(parsed)
            .map(Self)
            .map_err(|_| format!("`{raw}` is longer than ten years"))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        ConfigDuration::parse(&raw).map_err(de::Error::custom)
    }
}
