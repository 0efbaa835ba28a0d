//! Bulk loading into PostgreSQL, each test in its own schema. Needs
//! `TEST_DATABASE_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tessera_store_postgres::PgStore;
use tessera_store_tests::bulk;

async fn fresh_store() -> PgStore {
    let url = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL must name a PostgreSQL database (scripts/test sets it)");
    PgStore::connect_in_new_schema(&url, 4).await.unwrap().0
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"]
async fn bulk_loading_reads_back_as_written() {
    bulk::bulk_loading_reads_back_as_written(&fresh_store().await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"]
async fn a_bulk_batch_is_stored_whole_or_not_at_all() {
    bulk::a_bulk_batch_is_stored_whole_or_not_at_all(&fresh_store().await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"]
async fn a_sweep_deletes_a_backlog_of_many_batches() {
    bulk::a_sweep_deletes_a_backlog_of_many_batches(&fresh_store().await).await;
}
