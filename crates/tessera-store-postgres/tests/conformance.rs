//! The shared store conformance suite against PostgreSQL, each test in its
//! own schema so tests run in parallel. Needs `TEST_DATABASE_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tessera_core::store::Store;
use tessera_store_postgres::PgStore;

async fn fresh_store() -> Arc<dyn Store> {
    let url = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL must name a PostgreSQL database (scripts/test sets it)");
    Arc::new(PgStore::connect_in_new_schema(&url, 8).await.unwrap().0)
}

tessera_store_tests::conformance_suite!(
    fresh_store,
    ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"
);
