//! The shared store conformance suite against PostgreSQL with the Redis
//! layer in front (own schema, own key prefix per test), plus the cache's
//! own guarantees. Needs `TEST_DATABASE_URL` and `TEST_REDIS_URL`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use tessera_core::store::{Sessions, Store, Users};
use tessera_store_postgres::PgStore;
use tessera_store_redis::{Redis, RedisLayer};
use tessera_store_tests::{now, session, user};

const NEEDS: &str = "TEST_DATABASE_URL and TEST_REDIS_URL must be set (scripts/test sets them)";

async fn postgres() -> Arc<dyn Store> {
    let url = std::env::var("TEST_DATABASE_URL").expect(NEEDS);
    Arc::new(PgStore::connect_in_new_schema(&url, 8).await.unwrap().0)
}

async fn redis() -> Arc<Redis> {
    let url = std::env::var("TEST_REDIS_URL").expect(NEEDS);
    Redis::connect(&url, &format!("test:{}:", uuid::Uuid::new_v4().simple()))
        .await
        .unwrap()
}

async fn layered() -> Arc<dyn Store> {
    Arc::new(RedisLayer::new(postgres().await, redis().await))
}

tessera_store_tests::conformance_suite!(
    layered,
    ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"
);

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn a_stale_cache_fill_cannot_resurrect_a_deleted_session() {
    let url = std::env::var("TEST_REDIS_URL").expect(NEEDS);
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let layer = RedisLayer::new(
        postgres().await,
        Redis::connect(&url, &prefix).await.unwrap(),
    );
    let alice = user("alice");
    layer.insert_user(&alice, "h").await.unwrap();
    let (s, secret) = session(alice.id);
    layer
        .insert_session(&s, &tessera_store_tests::sign_in_event(&s), "h")
        .await
        .unwrap();
    assert!(
        layer
            .session_by_secret(&secret.hash())
            .await
            .unwrap()
            .is_some()
    );
    let key = format!(
        "{prefix}s:h:{}",
        secret
            .hash()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let cached: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    let cached = cached.expect("the lookup filled the cache");
    layer.delete_session(&s.id).await.unwrap();
    // A reader on another node that read the session just before the
    // deletion writes it into the cache just after: the race.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&cached)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        layer
            .session_by_secret(&secret.hash())
            .await
            .unwrap()
            .is_none(),
        "the tombstone masks it"
    );
    assert!(layer.session_by_id(&s.id).await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn reads_are_served_from_the_cache() {
    let backing = postgres().await;
    let layer = RedisLayer::new(backing.clone(), redis().await);
    let alice = user("alice");
    layer.insert_user(&alice, "h").await.unwrap();
    let (s, secret) = session(alice.id);
    layer
        .insert_session(&s, &tessera_store_tests::sign_in_event(&s), "h")
        .await
        .unwrap();
    assert_eq!(
        layer.session_by_secret(&secret.hash()).await.unwrap(),
        Some(s.clone())
    );
    // Remove it behind the layer's back: the cache still answers, proving
    // it is consulted (real removals go through the layer and tombstone).
    backing.delete_session(&s.id).await.unwrap();
    assert_eq!(
        layer.session_by_secret(&secret.hash()).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        layer.session_by_id(&s.id).await.unwrap().map(|x| x.id),
        Some(s.id.clone())
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn touch_refreshes_the_cache() {
    let layer = RedisLayer::new(postgres().await, redis().await);
    let alice = user("alice");
    layer.insert_user(&alice, "h").await.unwrap();
    let (s, secret) = session(alice.id);
    layer
        .insert_session(&s, &tessera_store_tests::sign_in_event(&s), "h")
        .await
        .unwrap();
    layer.session_by_secret(&secret.hash()).await.unwrap();
    let seen = now() + time::Duration::minutes(2);
    let idle = seen + time::Duration::minutes(30);
    layer.touch_session(&s.id, seen, idle).await.unwrap();
    let after = layer
        .session_by_secret(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.last_seen_at, seen);
    assert_eq!(after.idle_expires_at, idle);
    assert_eq!(
        layer
            .session_by_id(&s.id)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        seen
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn counters_count_within_a_window_and_reset() {
    let redis = redis().await;
    let window = Duration::from_millis(1500);
    assert_eq!(redis.hit("ip:1", window).await.unwrap().0, 1);
    assert_eq!(redis.hit("ip:1", window).await.unwrap().0, 2);
    let (n, retry) = redis.hit("ip:1", window).await.unwrap();
    assert_eq!(n, 3);
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(redis.count("ip:1").await.unwrap(), 3);
    assert_eq!(redis.count("ip:2").await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(redis.count("ip:1").await.unwrap(), 0, "window over");
    redis.hit("ip:1", window).await.unwrap();
    redis.reset("ip:1").await.unwrap();
    assert_eq!(redis.count("ip:1").await.unwrap(), 0);
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn revocation_announcements_reach_subscribers() {
    let redis = redis().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = redis.subscribe_revocations(move || {
        let _ = tx.send(());
    });
    // The first call comes on subscription (catch-up).
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    redis.publish_revocation().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    task.abort();
}
