//! Where each key's value came from: the file, a `TESSERA_*` variable
//! (which wins), or the default. Errors name it, and `config check` shows it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Where one key's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source<'a> {
    /// Not configured.
    Default,
    /// The configuration file.
    File(&'a Path),
    /// This environment variable.
    Env(&'a str),
}

/// The keys the file set and the variables that set keys.
#[derive(Debug)]
pub(super) struct Sources {
    file: Option<PathBuf>,
    file_keys: BTreeSet<String>,
    env: BTreeMap<String, String>,
}

impl Sources {
    pub(super) fn new(
        file: Option<&Path>,
        file_keys: BTreeSet<String>,
        env: BTreeMap<String, String>,
    ) -> Self {
        Self {
            file: file.map(Path::to_owned),
            file_keys,
            env,
        }
    }

    /// Where `key` (dotted) came from.
    pub(super) fn of(&self, key: &str) -> Source<'_> {
        if let Some(var) = self.env.get(key) {
            return Source::Env(var);
        }
        match &self.file {
            Some(file) if self.file_keys.contains(key) => Source::File(file),
            _ => Source::Default,
        }
    }

    /// The configuration file, if one was read.
    pub(super) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// `error` with the source of its key filled in.
    pub(super) fn attribute(&self, mut error: ConfigError) -> ConfigError {
        match self.of(&error.key) {
            Source::Env(var) => error.env_var = Some(var.to_owned()),
            Source::File(file) => error.file = Some(file.to_owned()),
            Source::Default => {}
        }
        error
    }
}

/// Every dotted key a TOML table sets, sections included.
pub(super) fn keys_of(table: &toml::Table) -> BTreeSet<String> {
    fn walk(prefix: &str, table: &toml::Table, keys: &mut BTreeSet<String>) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if let toml::Value::Table(inner) = value {
                walk(&key, inner, keys);
            }
            keys.insert(key);
        }
    }
    let mut keys = BTreeSet::new();
    walk("", table, &mut keys);
    keys
}
