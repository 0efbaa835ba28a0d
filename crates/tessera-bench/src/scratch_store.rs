//! Stores made for one `--populate` run and removed after it: a SQLite file
//! in the run's scratch directory, or a schema of its own in the PostgreSQL
//! database named by `--database-url` (so the run neither reads nor leaves
//! anything among that database's own tables).

use std::path::Path;

use anyhow::Context as _;
use tessera_server::config::{Database, Settings};
use tessera_server::data_dir;
use tessera_store_postgres::PgStore;
use tessera_store_sql::BulkLoad;
use tessera_store_sqlite::SqliteStore;

/// A store made for the run.
pub(crate) struct ScratchStore {
    /// The settings of a node serving it.
    pub(crate) settings: Settings,
    /// The PostgreSQL URL and the schema made in it, to drop at the end.
    schema: Option<(String, String)>,
}

/// The store open for loading.
pub(crate) enum Loading {
    Sqlite(SqliteStore),
    Postgres(Box<PgStore>),
}

impl Loading {
    pub(crate) fn bulk(&self) -> &dyn BulkLoad {
        match self {
            Loading::Sqlite(store) => store,
            Loading::Postgres(store) => store.as_ref(),
        }
    }

    /// Closes it, so that a node can open it.
    pub(crate) async fn close(self) {
        match self {
            Loading::Sqlite(store) => store.close().await,
            Loading::Postgres(store) => store.close().await,
        }
    }
}

impl ScratchStore {
    /// Makes an empty, migrated store named `name`: in `scratch` or, with
    /// `postgres` (a URL), in a new schema there. Returns it open for loading.
    pub(crate) async fn make(
        base: &Settings,
        scratch: &Path,
        name: &str,
        postgres: Option<&str>,
    ) -> anyhow::Result<(Self, Loading)> {
        let mut settings = base.clone();
        let dir = scratch.join(name);
        data_dir::ensure_private_dir(&dir)?;
        settings.data_dir = dir.clone();
        match postgres {
            None => {
                let path = dir.join("bench.db");
                let store = SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?;
                store.migrate().await.context("cannot migrate the store")?;
                settings.database = Database::Sqlite(path);
                Ok((
                    Self {
                        settings,
                        schema: None,
                    },
                    Loading::Sqlite(store),
                ))
            }
            Some(url) => {
                let (store, schema) = PgStore::connect_in_new_schema(url, 4)
                    .await
                    .context("cannot make a schema in the PostgreSQL database")?;
                let separator = if url.contains('?') { '&' } else { '?' };
                let in_schema = format!("{url}{separator}options=-c%20search_path%3D{schema}");
                settings.database = Database::Postgres(in_schema.as_str().into());
                Ok((
                    Self {
                        settings,
                        schema: Some((url.to_owned(), schema)),
                    },
                    Loading::Postgres(Box::new(store)),
                ))
            }
        }
    }

    /// Drops its schema (a SQLite file goes with the scratch directory).
    pub(crate) async fn remove(self) -> anyhow::Result<()> {
        if let Some((url, schema)) = self.schema {
            PgStore::drop_schema(&url, &schema)
                .await
                .with_context(|| format!("cannot drop the schema {schema}"))?;
        }
        Ok(())
    }
}
