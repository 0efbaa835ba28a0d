//! `TESSERA_*` environment variables over the file: a nested key maps to
//! its variable by upper-casing and joining with a double underscore, and
//! since variables are always strings, values may come as their text.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::ConfigError;

/// Prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "TESSERA_";

/// The one `TESSERA_` variable that is not a key: the configuration file
/// itself (the `--config` option's variable).
pub const CONFIG_FILE_VAR: &str = "TESSERA_CONFIG";

/// The variable that sets a dotted key: `session.idle_timeout` is
/// `TESSERA_SESSION__IDLE_TIMEOUT`.
pub fn env_var(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// The process's `TESSERA_*` variables. `std::env::vars` would panic on any
/// variable that is not UTF-8, whoever set it; these are read as they are,
/// others are none of the configuration's business. A value that is not
/// UTF-8 keeps its replacement characters and is refused by the key's check.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            name.starts_with(ENV_PREFIX)
                .then(|| (name, value.to_string_lossy().into_owned()))
        })
        .collect()
}

/// Accepts a native value or its string form (environment variables are
/// always strings).
pub(super) fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + Deserialize<'de>,
    T::Err: fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OrString<T> {
        Native(T),
        Text(String),
    }
    match OrString::<T>::deserialize(d)? {
        OrString::Native(v) => Ok(v),
        OrString::Text(s) => s.trim().parse().map_err(de::Error::custom),
    }
}

/// A list, or a comma-separated string of items.
pub(super) fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrString::deserialize(d)? {
        ListOrString::List(v) => v,
        ListOrString::Text(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Writes `TESSERA_*` variables into the tree as strings; returns which
/// dotted keys came from which variable.
pub(super) fn overlay_env(
    tree: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut origins = BTreeMap::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name == CONFIG_FILE_VAR {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let key = path.join(".");
        if path.iter().any(String::is_empty) {
            return Err(ConfigError {
                key,
                env_var: Some(name),
                file: None,
                message: "malformed variable name".into(),
            });
        }
        let Some((leaf, parents)) = path.split_last() else {
            continue;
        };
        let mut table = &mut *tree;
        for parent in parents {
            let entry = table
                .entry(parent.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(ConfigError {
                        key,
                        env_var: Some(name),
                        file: None,
                        message: format!("`{parent}` is not a section"),
                    });
                }
            };
        }
        table.insert(leaf.clone(), toml::Value::String(value));
        origins.insert(key, name);
    }
    Ok(origins)
}
