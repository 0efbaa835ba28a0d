//! `tessera restore FILE`: a backup of the embedded store in place of the
//! database, while nothing has it open. The file is checked before anything
//! is replaced (an SQLite database, sound, Tessera's, with a schema this
//! version can run, signing keys the configured key-encryption key opens);
//! the database it replaces is kept beside it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tessera_core::key_wrap;
use tessera_core::store::Keys as _;
use tessera_store_sqlite::SqliteStore;
use tessera_store_sqlite::backup::{Schema, check_restorable, settle};

use crate::config::Settings;
use crate::data_dir::{self, KEK_FILE, StoreLock};

/// What SQLite keeps beside a database file.
const SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Replaces the embedded store with the backup `file`.
pub async fn run(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let Some(database) = settings.database.sqlite_path() else {
        bail!(
            "`tessera restore` restores the embedded store; this configuration uses PostgreSQL: \
             restore it with pg_restore (see the README)"
        );
    };
    if !file.is_file() {
        bail!("{} is not a file", file.display());
    }
    let dir = data_dir::of_database(database);
    data_dir::ensure_private_dir(&dir)?;
    let _lock = StoreLock::exclusive(database)?;

    let incoming = with_suffix(database, &format!(".restoring-{}", std::process::id()));
    remove_with_sidecars(&incoming);
    let prepared = prepare(settings, file, &incoming).await;
    let schema = match prepared {
        Ok(schema) => schema,
        Err(e) => {
            remove_with_sidecars(&incoming);
            return Err(e);
        }
    };
    let swapped = async {
        let aside = set_aside(database).await?;
        std::fs::rename(&incoming, database).with_context(|| {
            format!(
                "cannot move {} into place as {}",
                incoming.display(),
                database.display()
            )
        })?;
        anyhow::Ok(aside)
    }
    .await;
    // Whatever is left of the copy (all of it, if the swap failed) goes.
    remove_with_sidecars(&incoming);
    let aside = swapped?;
    data_dir::sync_dir(&dir);
    data_dir::restrict_database_files(database)?;

    println!(
        "restored {} into {} (schema migration {}{})",
        file.display(),
        database.display(),
        schema.version,
        match schema.pending {
            0 => String::new(),
            n => format!(", brought up to date by {n} more"),
        }
    );
    if let Some(aside) = aside {
        println!("the database it replaced is kept as {}", aside.display());
    }
    Ok(())
}

/// Copies `file` to `incoming`, checks it, brings its schema up to date and
/// checks that its signing keys can be opened here.
async fn prepare(settings: &Settings, file: &Path, incoming: &Path) -> anyhow::Result<Schema> {
    copy_private(file, incoming)?;
    // The copy is checked, not the file: it cannot change in between.
    let schema = check_restorable(incoming)
        .await
        .map_err(|refusal| anyhow::anyhow!("{} cannot be restored: {refusal}", file.display()))?;
    let store = SqliteStore::open(incoming)
        .await
        .with_context(|| format!("cannot open {}", incoming.display()))?;
    let checked = async {
        store
            .migrate()
            .await
            .context("cannot bring the backup's schema up to date")?;
        let keys = store.keys().await.context("cannot read the signing keys")?;
        check_key_encryption_key(settings, file, &keys)
    }
    .await;
    store.close().await;
    checked?;
    settle(incoming)
        .await
        .with_context(|| format!("cannot checkpoint {}", incoming.display()))?;
    Ok(schema)
}

/// The backup's sealed signing keys must open with the key-encryption key
/// the server will use here: restoring a database it cannot open would only
/// move the failure to the next start.
fn check_key_encryption_key(
    settings: &Settings,
    file: &Path,
    keys: &[tessera_core::keys::StoredKey],
) -> anyhow::Result<()> {
    let Some(needed) = keys.iter().find_map(|k| key_wrap::sealed_under(&k.sealed)) else {
        return Ok(());
    };
    let kek_file = settings.data_dir.join(KEK_FILE);
    let here = match &settings.key_encryption_key {
        Some(kek) => Some(kek.id()),
        None => data_dir::read_key_file(&kek_file)?.map(|kek| kek.id()),
    };
    let source = if settings.key_encryption_key.is_some() {
        "the configured key_encryption_key".to_owned()
    } else {
        kek_file.display().to_string()
    };
    match here {
        Some(id) if id == needed => {}
        Some(id) => bail!(
            "{} cannot be restored: its signing keys are sealed under key-encryption key \
             {needed}, but {source} holds key {id}; put the key that belongs with the backup \
             in its place first",
            file.display()
        ),
        None => bail!(
            "{} cannot be restored: its signing keys are sealed under key-encryption key \
             {needed}, and {source} does not exist (nor is key_encryption_key set); copy the \
             key-encryption.key that was beside the backed-up database there first",
            file.display()
        ),
    }
    if let Some(other) = keys
        .iter()
        .filter_map(|k| key_wrap::sealed_under(&k.sealed))
        .find(|id| *id != needed)
    {
        bail!(
            "{} cannot be restored: its signing keys are sealed under two key-encryption keys \
             ({needed} and {other}); finish `tessera keys rewrap` on the original first",
            file.display()
        );
    }
    Ok(())
}

/// Copies `from` to `to`, a new file only its owner can read, synced.
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut source =
        std::fs::File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut target = options
        .open(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    std::io::copy(&mut source, &mut target)
        .and_then(|_| target.sync_all())
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

/// Keeps the current database (if any) as `<database>.before-restore-<time>`,
/// its WAL checkpointed into it first. The database stays in place (a hard
/// link) until the restored one is renamed over it: there is always a
/// database at its path.
async fn set_aside(database: &Path) -> anyhow::Result<Option<PathBuf>> {
    if !database.exists() {
        remove_sidecars(database);
        return Ok(None);
    }
    // A WAL left by a killed server must not be replayed into the restored
    // file. Checkpointed, there is none; a database too damaged to open
    // keeps its WAL beside its copy.
    if let Err(e) = settle(database).await {
        eprintln!(
            "tessera: cannot checkpoint {} before setting it aside ({e}); its -wal is kept with it",
            database.display()
        );
    }
    let stamp = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    // Restores within the same second each keep their own.
    let mut attempt = 1;
    let aside = loop {
        let suffix = match attempt {
            1 => format!(".before-restore-{stamp}"),
            n => format!(".before-restore-{stamp}-{n}"),
        };
        let aside = with_suffix(database, &suffix);
        match std::fs::hard_link(database, &aside) {
            Ok(()) => break aside,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot keep {} as {}", database.display(), aside.display())
                });
            }
        }
    };
    for suffix in SIDECARS {
        let sidecar = with_suffix(database, suffix);
        if sidecar.exists() {
            std::fs::rename(&sidecar, with_suffix(&aside, suffix))
                .with_context(|| format!("cannot move {} aside", sidecar.display()))?;
        }
    }
    Ok(Some(aside))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_sidecars(path: &Path) {
    for suffix in SIDECARS {
        let _ = std::fs::remove_file(with_suffix(path, suffix));
    }
}

fn remove_with_sidecars(path: &Path) {
    let _ = std::fs::remove_file(path);
    remove_sidecars(path);
}
