//! Bulk loading into the embedded SQLite store.
#![allow(clippy::unwrap_used)]

use tessera_store_sqlite::SqliteStore;
use tessera_store_tests::bulk;

async fn fresh_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("tessera.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

#[tokio::test]
async fn bulk_loading_reads_back_as_written() {
    let (store, _dir) = fresh_store().await;
    bulk::bulk_loading_reads_back_as_written(&store).await;
}

#[tokio::test]
async fn a_bulk_batch_is_stored_whole_or_not_at_all() {
    let (store, _dir) = fresh_store().await;
    bulk::a_bulk_batch_is_stored_whole_or_not_at_all(&store).await;
}

#[tokio::test]
async fn a_sweep_deletes_a_backlog_of_many_batches() {
    let (store, _dir) = fresh_store().await;
    bulk::a_sweep_deletes_a_backlog_of_many_batches(&store).await;
}
