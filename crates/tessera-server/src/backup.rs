//! `tessera backup FILE`: a consistent copy of the embedded store, taken
//! while servers go on serving (PostgreSQL is backed up with `pg_dump`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tessera_store_sqlite::backup::copy_consistent;

use crate::config::Settings;
use crate::data_dir::{self, KEK_FILE, StoreLock};

/// Writes a copy of the embedded store to `dest`, which must not exist:
/// a backup never overwrites anything.
pub async fn run(settings: &Settings, dest: &Path) -> anyhow::Result<()> {
    let Some(database) = settings.database.sqlite_path() else {
        bail!(
            "`tessera backup` copies the embedded store; this configuration uses PostgreSQL: \
             back it up with pg_dump (see the README)"
        );
    };
    if !database.is_file() {
        bail!(
            "there is no database at {}: nothing to back up",
            database.display()
        );
    }
    if dest.symlink_metadata().is_ok() {
        bail!(
            "{} exists; a backup never overwrites a file: choose a new name",
            dest.display()
        );
    }
    let Some(name) = dest.file_name() else {
        bail!("{} names no file", dest.display());
    };
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let _lock = StoreLock::shared(database)?;

    // Written beside the destination and linked into place once complete
    // and synced: an interrupted backup never leaves a file that looks whole.
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = dir.join(partial);
    let _ = std::fs::remove_file(&partial);
    let written = write(database, &partial, dest).await;
    let _ = std::fs::remove_file(&partial);
    written?;
    data_dir::sync_dir(&dir);

    let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    println!(
        "backed up {} to {} ({size} bytes)",
        database.display(),
        dest.display()
    );
    let kek = if settings.key_encryption_key.is_some() {
        "the configured key-encryption key (key_encryption_key or key_encryption_key_file)"
            .to_owned()
    } else {
        format!(
            "the key-encryption key in {}",
            settings.data_dir.join(KEK_FILE).display()
        )
    };
    eprintln!(
        "The signing keys in the backup are sealed under {kek}, which the backup does not \
         hold: keep a copy of that key too, apart from the backup. Without it a restored \
         database cannot sign or verify tokens."
    );
    Ok(())
}

async fn write(database: &Path, partial: &Path, dest: &Path) -> anyhow::Result<()> {
    copy_consistent(database, partial)
        .await
        .with_context(|| format!("cannot back up {}", database.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Password hashes and sealed keys: the owner's only, like the database.
        std::fs::set_permissions(partial, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", partial.display()))?;
    }
    std::fs::File::open(partial)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("cannot sync {}", partial.display()))?;
    std::fs::hard_link(partial, dest).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} appeared while backing up; a backup never overwrites a file",
                dest.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot write {}", dest.display()))
        }
    })
}
