//! The effective configuration as `tessera config check` prints it: every
//! key the loader knows, in its order, with its value (secrets redacted, by
//! `FileConfig`'s serialisation) and where the value came from. Unset keys
//! are comments, so the text is still TOML.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::sources::{Source, Sources};
use super::{Database, Settings, keys};
use crate::data_dir::KEK_FILE;

/// Where the comments saying each value's source begin.
const COMMENT_COLUMN: usize = 44;

/// Describes `effective` (the file's shape after the environment, before
/// validation) with the values validation derived filled in.
pub(super) fn describe(effective: toml::Table, settings: &Settings, sources: &Sources) -> String {
    let mut values = flatten(effective);
    let mut notes = BTreeMap::new();
    let mut derive = |key: &str, value: String, note: &str| {
        if !values.contains_key(key) {
            values.insert(key.to_owned(), toml::Value::String(value));
            notes.insert(key.to_owned(), note.to_owned());
        }
    };
    derive(
        "public_url",
        settings.public_url.clone(),
        "derived from listen",
    );
    derive(
        "token.audience",
        settings.tokens.audience.clone(),
        "derived from public_url",
    );
    if let Database::Sqlite(path) = &settings.database {
        derive(
            "database_url",
            format!("sqlite://{}", path.display()),
            "the embedded store in data_dir",
        );
        if settings.key_encryption_key.is_none() {
            notes.insert(
                "key_encryption_key".to_owned(),
                format!(
                    "the embedded store keeps a generated one in {}",
                    settings.data_dir.join(KEK_FILE).display()
                ),
            );
        }
    }
    if values.get("password.workers") == Some(&toml::Value::Integer(0)) {
        notes.insert(
            "password.workers".to_owned(),
            format!("one per core: {}", settings.hash_workers),
        );
    }

    let mut out =
        String::from("# The configuration is valid. Effective settings, secrets redacted:\n");
    let _ = match sources.file() {
        Some(file) => writeln!(
            out,
            "# the file {}, then TESSERA_* variables, then defaults.",
            file.display()
        ),
        None => writeln!(out, "# no file; TESSERA_* variables, then defaults."),
    };
    let mut section = String::new();
    let keys = keys();
    // Keys of the top level first: TOML puts every key after a [section]
    // header into that section.
    let ordered = keys
        .iter()
        .filter(|k| !k.contains('.'))
        .chain(keys.iter().filter(|k| k.contains('.')));
    for key in ordered {
        let (parent, name) = key.rsplit_once('.').unwrap_or(("", key));
        if parent != section {
            section = parent.to_owned();
            let _ = writeln!(out, "\n[{section}]");
        }
        let Some(value) = values.get(key) else {
            match notes.get(key) {
                Some(note) => writeln!(out, "# {name} is not set: {note}"),
                None => writeln!(out, "# {name} is not set"),
            }
            .ok();
            continue;
        };
        let line = format!("{name} = {value}");
        let source = match sources.of(key) {
            Source::Default => "default".to_owned(),
            Source::File(_) => "file".to_owned(),
            Source::Env(var) => var.to_owned(),
        };
        let comment = match notes.get(key) {
            Some(note) => format!("{source}, {note}"),
            None => source,
        };
        let pad = COMMENT_COLUMN.saturating_sub(line.chars().count()).max(1);
        let _ = writeln!(out, "{line}{:pad$}# {comment}", "");
    }
    out
}

/// Dotted key → value, for every value of the tree.
fn flatten(table: toml::Table) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, table: toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            match value {
                toml::Value::Table(inner) => walk(&key, inner, out),
                value => {
                    out.insert(key, value);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", table, &mut out);
    out
}
