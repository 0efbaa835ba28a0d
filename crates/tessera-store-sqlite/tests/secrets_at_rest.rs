//! A copy of the database must not be replayable as cookies: the stored key
//! is SHA-256 of the secret, and the secret appears nowhere in the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use sqlx::Row;
use tessera_core::store::{Sessions, Users};
use tessera_store_sqlite::SqliteStore;
use tessera_store_tests::{session, user};

#[tokio::test]
async fn the_stored_key_is_the_hash_not_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (session, secret) = session(alice.id);
    store
        .insert_session(&session, &tessera_store_tests::sign_in_event(&session), "h")
        .await
        .unwrap();

    let wire = secret.expose();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&wire[3..])
        .unwrap();
    let row = sqlx::query("SELECT secret_hash FROM sessions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let stored: Vec<u8> = row.get("secret_hash");
    assert_eq!(stored, digest(&SHA256, &raw).as_ref().to_vec());
    assert_ne!(stored, raw);

    store.close().await;
    let file = std::fs::read(&path).unwrap();
    let contains = |needle: &[u8]| file.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(&stored),
        "the hash is in the file (the scan works)"
    );
    assert!(
        !contains(&raw),
        "raw secret bytes found in the database file"
    );
    assert!(
        !contains(wire.as_bytes()),
        "wire-form secret found in the database file"
    );
}
