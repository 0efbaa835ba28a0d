//! The shared store conformance suite against the embedded SQLite store,
//! each test on its own database file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tessera_core::store::Store;
use tessera_store_sqlite::SqliteStore;

async fn fresh_store() -> Arc<dyn Store> {
    // The directory must outlive the test; leaking it keeps the code simple
    // and the OS temp cleaner removes it.
    let dir = tempfile::tempdir().unwrap().keep();
    let store = SqliteStore::open(&dir.join("tessera.db")).await.unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

tessera_store_tests::conformance_suite!(fresh_store);
