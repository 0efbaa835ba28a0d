//! Copies of the embedded store: a consistent copy of a database that a
//! server may be writing to, and the checks a file must pass before it may
//! replace a database.
//!
//! `VACUUM INTO` reads the source in one read transaction: in WAL mode
//! writers go on meanwhile, and the copy is the database as it was at one
//! moment (every commit before it, none after), compacted, in one file.

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions as _, Connection as _, Row as _, SqliteConnection};
use tessera_core::store::{StoreError, StoreResult};

use crate::MIGRATOR;

/// Where sqlx records the migrations applied (its default, which the
/// store keeps).
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// The first 16 bytes of every SQLite 3 database file.
const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Writes a consistent copy of the database at `source` into `dest`, a file
/// that must not exist yet. Nothing is written to `source`.
pub async fn copy_consistent(source: &Path, dest: &Path) -> StoreResult<()> {
    let mut conn = SqliteConnectOptions::new()
        .filename(source)
        .read_only(true)
        .create_if_missing(false)
        .connect()
        .await
        .map_err(|e| unavailable(source, e))?;
    let copied = sqlx::query("VACUUM INTO $1")
        .bind(dest.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(|e| StoreError::Unavailable(format!("cannot copy the database: {e}")));
    conn.close().await.map_err(|e| unavailable(source, e))?;
    copied
}

/// What a file offered to replace the database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The last migration applied to it.
    pub version: i64,
    /// The migrations this build would still apply to it.
    pub pending: usize,
}

/// Why a file may not replace the database.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not an SQLite database at all.
    #[error("it is not an SQLite database")]
    NotSqlite,
    /// An SQLite database that fails its integrity check.
    #[error("the database is damaged: {0}")]
    Damaged(String),
    /// An SQLite database, but not one of Tessera's.
    #[error("it is not a Tessera database: {0}")]
    NotTessera(String),
    /// A Tessera database from a later version.
    #[error(
        "its schema (migration {found}) is newer than this tessera's (migration {known}): \
         restore it with the version of tessera that wrote it, or a later one"
    )]
    Newer {
        /// The latest migration in the file.
        found: i64,
        /// The latest migration this build knows.
        known: i64,
    },
    /// The file could not be read.
    #[error("{0}")]
    Unreadable(String),
}

/// Checks that the database at `path` is sound (SQLite's integrity check)
/// and is Tessera's, with a schema this build can run: every migration
/// applied to it is one of this build's, unaltered, and none later.
/// Older schemas are fine: the missing migrations are applied on start.
/// The file is opened for writing only as SQLite needs to read it.
pub async fn check_restorable(path: &Path) -> Result<Schema, Refusal> {
    let mut header = [0u8; 16];
    {
        use std::io::Read as _;
        let mut file = std::fs::File::open(path).map_err(|e| Refusal::Unreadable(e.to_string()))?;
        if file.read_exact(&mut header).is_err() || &header != HEADER {
            return Err(Refusal::NotSqlite);
        }
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .connect()
        .await
        .map_err(|e| Refusal::Damaged(e.to_string()))?;
    let checked = check_open(&mut conn).await;
    let _ = conn.close().await;
    checked
}

async fn check_open(conn: &mut SqliteConnection) -> Result<Schema, Refusal> {
    let damaged = |e: sqlx::Error| Refusal::Damaged(e.to_string());
    let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut *conn)
        .await
        .map_err(damaged)?;
    if verdict != ["ok"] {
        return Err(Refusal::Damaged(verdict.join("; ")));
    }
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = $1)",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_one(&mut *conn)
    .await
    .map_err(damaged)?;
    if !has_table {
        return Err(Refusal::NotTessera("it has no migration history".into()));
    }
    let applied = sqlx::query(concat!(
        "SELECT version, checksum, success FROM _sqlx_migrations ",
        "ORDER BY version"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(damaged)?;
    let known: Vec<_> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .collect();
    let latest_known = known.iter().map(|m| m.version).max().unwrap_or(0);
    let mut versions = Vec::with_capacity(applied.len());
    for row in &applied {
        versions.push(row.try_get::<i64, _>("version").map_err(damaged)?);
    }
    if let Some(&found) = versions.iter().max()
        && found > latest_known
    {
        return Err(Refusal::Newer {
            found,
            known: latest_known,
        });
    }
    let mut version = None;
    for (row, &found) in applied.iter().zip(&versions) {
        let checksum: Vec<u8> = row.try_get("checksum").map_err(damaged)?;
        let success: bool = row.try_get("success").map_err(damaged)?;
        let Some(migration) = known.iter().find(|m| m.version == found) else {
            return Err(Refusal::NotTessera(format!(
                "it records migration {found}, which Tessera does not have"
            )));
        };
        if migration.checksum.as_ref() != checksum.as_slice() {
            return Err(Refusal::NotTessera(format!(
                "its migration {found} differs from Tessera's"
            )));
        }
        if !success {
            return Err(Refusal::Damaged(format!(
                "migration {found} did not finish"
            )));
        }
        version = Some(found);
    }
    let Some(version) = version else {
        return Err(Refusal::NotTessera("no migration was applied to it".into()));
    };
    let pending = known.iter().filter(|m| m.version > version).count();
    Ok(Schema { version, pending })
}

/// Checkpoints the database at `path` and leaves it in rollback-journal
/// mode: everything in the one file, with no -wal beside it, so it can be
/// moved (no other process may have it open). The store sets WAL mode
/// again when it next opens it.
pub async fn settle(path: &Path) -> StoreResult<()> {
    let conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Delete)
        .connect()
        .await
        .map_err(|e| unavailable(path, e))?;
    conn.close().await.map_err(|e| unavailable(path, e))
}

fn unavailable(path: &Path, e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_migrations_table_is_sqlx_default() {
        assert_eq!(super::MIGRATOR.table_name, super::MIGRATIONS_TABLE);
    }
}
