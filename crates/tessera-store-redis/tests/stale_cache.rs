//! A Redis cache entry that outlived its session (the tombstone write that
//! should have hidden it failed) is still refused by every node: the domain
//! checks what the store answers against the revocation set. Needs
//! `TEST_DATABASE_URL` and `TEST_REDIS_URL`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use redis::AsyncCommands;
use tessera_core::client::ClientInfo;
use tessera_core::clock::SystemClock;
use tessera_core::key_wrap::KeyEncryptionKey;
use tessera_core::password::HashCost;
use tessera_core::store::{Sessions, Store};
use tessera_core::{CoreError, Tessera, TesseraConfig};
use tessera_store_postgres::PgStore;
use tessera_store_redis::{Redis, RedisLayer};
use zeroize::Zeroizing;

const NEEDS: &str = "TEST_DATABASE_URL and TEST_REDIS_URL must be set (scripts/test sets them)";
const PASSWORD: &str = "correct horse battery staple";

fn config() -> TesseraConfig {
    TesseraConfig {
        hash_cost: HashCost {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        ..TesseraConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn a_cache_entry_whose_tombstone_was_lost_is_refused_by_every_node() {
    let database = std::env::var("TEST_DATABASE_URL").expect(NEEDS);
    let redis_url = std::env::var("TEST_REDIS_URL").expect(NEEDS);
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let postgres: Arc<dyn Store> = Arc::new(
        PgStore::connect_in_new_schema(&database, 8)
            .await
            .unwrap()
            .0,
    );
    // Every node opens the shared signing keys with the same key-encryption key.
    let kek = KeyEncryptionKey::generate().unwrap();
    let node = |postgres: Arc<dyn Store>| {
        let (redis_url, prefix, kek) = (redis_url.clone(), prefix.clone(), kek.clone());
        async move {
            let redis = Redis::connect(&redis_url, &prefix).await.unwrap();
            let layer = Arc::new(RedisLayer::new(postgres, redis));
            let store: Arc<dyn Store> = layer.clone();
            let core = Tessera::open(store, Arc::new(SystemClock), config(), kek)
                .await
                .unwrap();
            (layer, core)
        }
    };
    let client = ClientInfo::new(None, Some("test"));
    let (layer_a, node_a) = node(postgres.clone()).await;
    node_a
        .accounts
        .register("alice", Zeroizing::new(PASSWORD.into()), &client)
        .await
        .unwrap();
    let signed_in = node_a
        .cookie_sessions
        .sign_in(
            "alice",
            Zeroizing::new(PASSWORD.into()),
            false,
            &[],
            &client,
        )
        .await
        .unwrap();
    let hash = signed_in.secret.hash();
    // A lookup fills the shared cache; keep the entry as Redis holds it.
    assert!(layer_a.session_by_secret(&hash).await.unwrap().is_some());
    // A cookie session is cached under its secret's hash, raw.
    let entry_key = [prefix.as_bytes(), b"s:c:", hash.as_bytes()].concat();
    let mut raw = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let entry: Vec<u8> = raw.get(&entry_key).await.unwrap();
    assert!(!entry.is_empty());

    let auth = node_a
        .cookie_sessions
        .authenticate(&signed_in.secret)
        .await
        .unwrap();
    node_a
        .cookie_sessions
        .sign_out(&auth, &client)
        .await
        .unwrap();
    // As if the tombstone write of that sign-out had failed.
    let tombstone: Vec<u8> = raw.get(&entry_key).await.unwrap();
    assert!(tombstone.is_empty(), "the sign-out left a tombstone");
    let () = raw.set(&entry_key, &entry).await.unwrap();

    // A node that never saw the session: its own cache is empty, and the
    // shared cache does answer with the deleted session...
    let (layer_b, node_b) = node(postgres).await;
    assert!(
        layer_b.session_by_secret(&hash).await.unwrap().is_some(),
        "the simulated stale entry is not served: the test proves nothing"
    );
    // ...which the node refuses, since the session's sid is revoked.
    assert!(matches!(
        node_b.cookie_sessions.authenticate(&signed_in.secret).await,
        Err(CoreError::Unauthenticated)
    ));
    let _: () = raw.del(&entry_key).await.unwrap();
}
