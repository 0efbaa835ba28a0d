//! The embedded store's directory: owner-only, with owner-only files (the
//! database, its -wal and -shm, and the generated key-encryption key).
//!
//! Every process that opens the embedded store holds a shared lock on
//! `<database>.lock` for as long as it has it open; `tessera restore` takes
//! it exclusively, so it never swaps the file under a server or a command,
//! and nothing opens the store while it does.
//!
//! A data directory that other users can enter is refused, not tightened:
//! it may be a directory shared on purpose (a home directory, `.`), and
//! whatever it held may already have been read. The operator fixes it with
//! `chmod 700` and knows why.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tessera_core::key_wrap::{self, KeyEncryptionKey};
use tessera_core::store::Store;

/// Name of the generated key-encryption key in the data directory.
pub const KEK_FILE: &str = "key-encryption.key";

/// Makes the process's files private from birth: SQLite creates its -wal
/// and -shm files itself, at any time and from any connection, and a chmod
/// after the fact leaves a window in which they are readable. The process
/// writes nothing that other users should read (database, key file, bench
/// scratch space), so the mask is set once, for the whole process.
pub fn restrict_umask() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates `dir` (owner-only) if it is missing; refuses one that other
/// users can reach.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("cannot read the data directory {}", dir.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "the data directory {dir} is accessible to other users (mode {mode:04o}); it holds \
                 the database and the key that decrypts the signing keys: make it the owner's \
                 only with `chmod 700 {dir}`",
                dir = dir.display()
            );
        }
    }
    Ok(())
}

/// The directory the database file is in (`.` for a bare file name).
pub fn of_database(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// A lock on the embedded store, released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct StoreLock {
    _file: std::fs::File,
}

impl StoreLock {
    /// Taken by every process that opens the database (`serve` and the
    /// commands): any number of them at once, but not during a restore.
    pub fn shared(database: &Path) -> anyhow::Result<Self> {
        Self::take(database, false).map_err(|e| match e {
            Taken::Held => anyhow::anyhow!(
                "{} is being restored (`tessera restore` holds it); try again once it is done",
                database.display()
            ),
            Taken::Failed(e) => e,
        })
    }

    /// Taken by `tessera restore`: only while no other process has the
    /// database open.
    pub fn exclusive(database: &Path) -> anyhow::Result<Self> {
        Self::take(database, true).map_err(|e| match e {
            Taken::Held => anyhow::anyhow!(
                "{} is in use: a tessera server (or another tessera command) has it open; \
                 stop it first",
                database.display()
            ),
            Taken::Failed(e) => e,
        })
    }

    fn take(database: &Path, exclusive: bool) -> Result<Self, Taken> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))
            .map_err(Taken::Failed)?;
        // flock(2) on Unix: held by the open file, released when it is
        // closed, by the kernel if the process dies.
        let taken = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match taken {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Taken::Held),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Taken::Failed(
                    anyhow::Error::new(e).context(format!("cannot lock {}", path.display())),
                ));
            }
        }
        Ok(Self { _file: file })
    }
}

enum Taken {
    Held,
    Failed(anyhow::Error),
}

/// The database holds password hashes and sealed signing keys: it and its
/// -wal and -shm files are the owner's only (`0600`), also when an earlier
/// version or another umask created them more open.
pub fn restrict_database_files(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut files = vec![path.to_owned()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(PathBuf::from(name));
        }
        for file in files {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                outcome => outcome.with_context(|| {
                    format!("cannot restrict the permissions of {}", file.display())
                })?,
            }
        }
    }
    Ok(())
}

/// The embedded store's key-encryption key, kept in `<data_dir>/key-encryption.key`
/// (outside the database, so a copy of the database alone is useless).
/// Generated at first start, and at the first start after an upgrade
/// (keys still in clear). Missing while the store holds sealed keys, it is
/// not replaced (a copied database, or a lost file): that is an error,
/// unless `replace` (re-wrapping the keys under a new key).
pub async fn key_encryption_key(
    data_dir: &Path,
    store: &dyn Store,
    replace: bool,
) -> anyhow::Result<KeyEncryptionKey> {
    let path = data_dir.join(KEK_FILE);
    if let Some(kek) = read_key_file(&path)? {
        return Ok(kek);
    }
    if !replace
        && let Some(id) = store
            .keys()
            .await
            .context("cannot read the signing keys")?
            .iter()
            .find_map(|k| key_wrap::sealed_under(&k.sealed))
    {
        bail!(
            "the signing keys in the store are wrapped under key-encryption key {id}, but {path} \
             does not exist and neither key_encryption_key nor key_encryption_key_file is set: \
             restore that file from a backup, or configure the key; a new key could not open them",
            path = path.display()
        );
    }
    ensure_private_dir(data_dir)?;
    let kek = KeyEncryptionKey::generate().context("cannot generate a key-encryption key")?;
    // Written to a temporary file and linked into place: a process starting
    // at the same moment never reads half a key, and the loser of the race
    // takes the winner's key.
    let temporary = data_dir.join(format!(".{KEK_FILE}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let written =
        write_key_file(&temporary, &kek).and_then(|()| std::fs::hard_link(&temporary, &path));
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => {
            sync_dir(data_dir);
            tracing::info!(
                path = %path.display(),
                kek = %kek.id(),
                "generated the key-encryption key of the signing keys; back it up apart from the database"
            );
            Ok(kek)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(&path)?
            .with_context(|| format!("{} vanished while starting", path.display())),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// Makes the names just linked, renamed or removed in `dir` durable. Best
/// effort: not every file system can sync a directory, and the data itself
/// is already synced.
pub fn sync_dir(dir: &Path) {
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// Reads a key file (base64 of 32 bytes); `None` when there is none.
pub fn read_key_file(path: &Path) -> anyhow::Result<Option<KeyEncryptionKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    KeyEncryptionKey::from_base64(&text)
        .map(Some)
        .with_context(|| format!("the key-encryption key in {} is unusable", path.display()))
}

fn write_key_file(path: &Path, kek: &KeyEncryptionKey) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(kek.to_base64().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
