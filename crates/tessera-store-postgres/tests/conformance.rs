//! The shared store conformance suite against PostgreSQL, each test in its
//! own schema so tests run in parallel. Needs `TEST_DATABASE_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use tessera_core::store::Store;
use tessera_store_postgres::PgStore;

async fn fresh_store() -> Arc<dyn Store> {
    let url = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL must name a PostgreSQL database (scripts/test sets it)");
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = PgStore::connect(&url, 2).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await
        .unwrap();
    admin.close().await;
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let store = PgStore::connect_with(options, 8).await.unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

tessera_store_tests::conformance_suite!(
    fresh_store,
    ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"
);
