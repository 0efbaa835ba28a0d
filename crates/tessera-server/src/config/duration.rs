//! Durations in configuration: `90s`, `30m`, `12h`, `14d`, and compounds
//! such as `1h30m` or `500ms`.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

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

impl fmt::Display for ConfigDuration {
    /// The shortest form [`ConfigDuration::parse`] reads back: `30m`,
    /// `1h30m`, `14d`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.0.whole_milliseconds().max(0);
        if left == 0 {
            return f.write_str("0s");
        }
        for (unit, ms) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            let count = left / ms;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                left %= ms;
            }
        }
        Ok(())
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
