//! The shared store conformance suite against PostgreSQL with the Redis
//! layer in front (own schema, own key prefix per test), plus the cache's
//! own guarantees, read off the keys Redis holds. Needs `TEST_DATABASE_URL`
//! and `TEST_REDIS_URL`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::AsyncCommands as _;
use tessera_core::secret::{Secret, SecretKind};
use tessera_core::session::{Session, SessionKind};
use tessera_core::store::{Counters, RefreshTokens, Rotation, Sessions, Store, Users};
use tessera_store_postgres::PgStore;
use tessera_store_redis::{Redis, RedisLayer};
use tessera_store_tests::{now, session, sign_in_event, token_session, user};

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

/// A layer over a fresh PostgreSQL schema and a fresh key prefix, the
/// store below it (to change things behind the cache's back), a raw
/// connection to the same Redis, and the prefix.
struct Setup {
    layer: RedisLayer,
    backing: Arc<dyn Store>,
    raw: redis::aio::MultiplexedConnection,
    prefix: String,
}

async fn setup() -> Setup {
    let url = std::env::var("TEST_REDIS_URL").expect(NEEDS);
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let backing = postgres().await;
    let layer = RedisLayer::new(
        backing.clone(),
        Redis::connect(&url, &prefix).await.unwrap(),
    );
    let raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    Setup {
        layer,
        backing,
        raw,
        prefix,
    }
}

impl Setup {
    /// A user with a stored cookie session and a stored token session.
    async fn sessions(&self) -> ((Session, Secret), (Session, Secret)) {
        let alice = user(&format!("u{}", uuid::Uuid::new_v4().simple()));
        self.layer.insert_user(&alice, "h").await.unwrap();
        let (cookie, secret) = session(alice.id);
        self.layer
            .insert_session(&cookie, &sign_in_event(&cookie), "h")
            .await
            .unwrap();
        let (token, refresh) = token_session(alice.id);
        self.layer
            .insert_token_session(&token, &sign_in_event(&token), "h")
            .await
            .unwrap();
        ((cookie, secret), (token, refresh))
    }

    /// The key a session is cached under: a cookie session by its secret's
    /// hash, a token session by its id's 16 bytes, both raw.
    fn key(&self, session: &Session) -> Vec<u8> {
        let (tag, bytes): (&[u8], Vec<u8>) = match session.kind {
            SessionKind::Cookie => (b"s:c:", session.secret_hash.as_bytes().to_vec()),
            SessionKind::Token => (
                b"s:t:",
                URL_SAFE_NO_PAD.decode(session.id.as_str()).unwrap(),
            ),
        };
        [self.prefix.as_bytes(), tag, &bytes].concat()
    }

    async fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.raw.get(key).await.unwrap()
    }

    async fn ttl(&mut self, key: &[u8]) -> i64 {
        self.raw.ttl(key).await.unwrap()
    }

    /// Every key under the prefix.
    async fn keys(&mut self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self.raw.keys(format!("{}*", self.prefix)).await.unwrap();
        keys.sort();
        keys
    }
}

/// The session as a cache gives it back: without address and user agent.
fn as_cached(s: &Session) -> Session {
    Session {
        ip: None,
        user_agent: None,
        ..s.clone()
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn a_stale_cache_fill_cannot_resurrect_a_deleted_session() {
    let mut t = setup().await;
    let ((cookie, secret), (token, _)) = t.sessions().await;
    for s in [&cookie, &token] {
        let found = match s.kind {
            SessionKind::Cookie => t.layer.session_by_secret(&secret.hash()).await,
            SessionKind::Token => t.layer.session_by_id(&s.id).await,
        };
        assert!(found.unwrap().is_some());
        let key = t.key(s);
        let entry = t.get(&key).await.expect("the lookup filled the cache");
        t.layer.delete_session(&s.id).await.unwrap();
        assert_eq!(t.get(&key).await, Some(Vec::new()), "a tombstone");
        let ttl = t.ttl(&key).await;
        assert!((60..=65).contains(&ttl), "a minute: {ttl}");
        // A reader on another node that read the session just before the
        // deletion fills the cache just after, as the layer fills: only
        // where nothing is.
        let filled: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&entry)
            .arg("EX")
            .arg(30)
            .arg("NX")
            .query_async(&mut t.raw)
            .await
            .unwrap();
        assert_eq!(filled, None, "the fill did not take");
    }
    assert!(
        t.layer
            .session_by_secret(&secret.hash())
            .await
            .unwrap()
            .is_none(),
        "the tombstone masks it"
    );
    assert!(t.layer.session_by_id(&cookie.id).await.unwrap().is_none());
    assert!(t.layer.session_by_id(&token.id).await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn cookie_sessions_are_cached_by_secret_and_token_sessions_by_id() {
    let mut t = setup().await;
    let ((cookie, secret), (token, refresh)) = t.sessions().await;
    assert_eq!(
        t.layer.session_by_secret(&secret.hash()).await.unwrap(),
        Some(cookie.clone()),
        "the first answer is the store's"
    );
    assert_eq!(
        t.layer.session_by_id(&token.id).await.unwrap(),
        Some(token.clone())
    );
    // Lookups of the other kind pass through without caching anything.
    assert!(t.layer.session_by_id(&cookie.id).await.unwrap().is_some());
    assert!(
        t.layer
            .session_by_secret(&refresh.hash())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(t.keys().await.len(), 2, "one key per session");
    // Removed behind the layer's back: the cache still answers, proving it
    // is consulted (real removals go through the layer and tombstone), and
    // only for the lookup each kind is cached for.
    t.backing.delete_session(&cookie.id).await.unwrap();
    t.backing.delete_session(&token.id).await.unwrap();
    assert_eq!(
        t.layer.session_by_secret(&secret.hash()).await.unwrap(),
        Some(as_cached(&cookie))
    );
    assert_eq!(
        t.layer.session_by_id(&token.id).await.unwrap(),
        Some(as_cached(&token))
    );
    assert_eq!(t.layer.session_by_id(&cookie.id).await.unwrap(), None);
    assert_eq!(
        t.layer.session_by_secret(&refresh.hash()).await.unwrap(),
        None
    );
    // The stored session is never the cache's.
    assert_eq!(t.layer.stored_session(&token.id).await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn one_small_key_per_session() {
    let mut t = setup().await;
    let mut sessions = Vec::new();
    for _ in 0..20 {
        let ((cookie, secret), (token, _)) = t.sessions().await;
        t.layer.session_by_secret(&secret.hash()).await.unwrap();
        t.layer.session_by_id(&token.id).await.unwrap();
        sessions.push(cookie);
        sessions.push(token);
    }
    let mut expected: Vec<Vec<u8>> = sessions.iter().map(|s| t.key(s)).collect();
    expected.sort();
    assert_eq!(t.keys().await, expected);
    for s in &sessions {
        let key = t.key(s);
        let value = t.get(&key).await.unwrap();
        // Small enough for Redis's 64- and 80-byte allocations.
        let limit = match s.kind {
            SessionKind::Cookie => 56,
            SessionKind::Token => 72,
        };
        assert!(value.len() <= limit, "{} bytes", value.len());
        for text in ["127.0.0.1", "conformance"] {
            assert!(
                !value.windows(text.len()).any(|w| w == text.as_bytes()),
                "no address or user agent"
            );
        }
        let usage: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .query_async(&mut t.raw)
            .await
            .unwrap();
        // Redis's own count for the key, the value and their entry: the
        // key's bytes and at most 140 more (152 in all under `tessera:`).
        // The JSON copies of before took some 660 more, two per session.
        assert!(
            usage <= key.len() as u64 + 140,
            "{usage} bytes for one session under a {}-byte key",
            key.len()
        );
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn touch_rewrites_the_cached_session() {
    let mut t = setup().await;
    let ((cookie, secret), _) = t.sessions().await;
    t.layer.session_by_secret(&secret.hash()).await.unwrap();
    let key = t.key(&cookie);
    let before = t.get(&key).await.unwrap();
    let _: () = t.raw.expire(&key, 5).await.unwrap();
    let seen = now() + time::Duration::minutes(2);
    let touched = Session {
        last_seen_at: seen,
        idle_expires_at: seen + time::Duration::minutes(30),
        ..cookie.clone()
    };
    t.layer.touch_session(&touched).await.unwrap();
    let after = t.get(&key).await.expect("still cached");
    assert_ne!(after, before);
    // Another cache lifetime, longer than the time to the next touch.
    assert!(t.ttl(&key).await > 60, "kept another cache lifetime");
    // The store has the new times, and so has the cache: with the session
    // gone from the store behind the layer's back, the cache answers.
    let stored = t.backing.stored_session(&cookie.id).await.unwrap().unwrap();
    assert_eq!(stored.last_seen_at, seen);
    t.backing.delete_session(&cookie.id).await.unwrap();
    assert_eq!(
        t.layer.session_by_secret(&secret.hash()).await.unwrap(),
        Some(as_cached(&touched))
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn touch_never_resurrects_a_tombstone_or_caches_anew() {
    let mut t = setup().await;
    let ((cookie, secret), (token, _)) = t.sessions().await;
    let later = |s: &Session| Session {
        last_seen_at: s.last_seen_at + time::Duration::minutes(1),
        ..s.clone()
    };
    // Not cached: a touch caches nothing.
    t.layer.touch_session(&later(&token)).await.unwrap();
    assert_eq!(t.get(&t.key(&token)).await, None);
    // Ended (a tombstone), then a touch that read it before the end.
    t.layer.session_by_secret(&secret.hash()).await.unwrap();
    t.layer.delete_session(&cookie.id).await.unwrap();
    t.layer.touch_session(&later(&cookie)).await.unwrap();
    assert_eq!(t.get(&t.key(&cookie)).await, Some(Vec::new()));
    assert_eq!(
        t.layer.session_by_secret(&secret.hash()).await.unwrap(),
        None
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn refresh_rotation_rewrites_the_cached_session_and_reuse_buries_it() {
    let mut t = setup().await;
    let (_, (token, first)) = t.sessions().await;
    t.layer.session_by_id(&token.id).await.unwrap();
    let key = t.key(&token);
    let second = Secret::generate(SecretKind::Refresh).unwrap();
    let grace = time::Duration::seconds(10);
    let idle = time::Duration::days(14);
    let t0 = now() + time::Duration::minutes(1);
    let rotated = match t
        .layer
        .rotate_refresh(&first.hash(), &second.hash(), None, t0, grace, idle)
        .await
        .unwrap()
    {
        Rotation::Rotated(s, ..) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(rotated.secret_hash, second.hash());
    // The cache holds the rotated session: what the store says now.
    let cached = t.layer.session_by_id(&token.id).await.unwrap().unwrap();
    assert_eq!(cached, as_cached(&rotated));
    assert_eq!(
        cached.secret_hash,
        t.backing
            .stored_session(&token.id)
            .await
            .unwrap()
            .unwrap()
            .secret_hash
    );
    // The first token again, after the grace window: reuse ends the
    // session and its key becomes a tombstone.
    let third = Secret::generate(SecretKind::Refresh).unwrap();
    let reused = t
        .layer
        .rotate_refresh(
            &first.hash(),
            &third.hash(),
            None,
            t0 + grace * 2,
            grace,
            idle,
        )
        .await
        .unwrap();
    assert!(matches!(reused, Rotation::Reused(_)), "{reused:?}");
    assert_eq!(t.get(&key).await, Some(Vec::new()));
    assert!(t.layer.session_by_id(&token.id).await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: scripts/test sets TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn after_a_failure_the_cache_is_flushed_before_it_is_trusted() {
    let mut t = setup().await;
    let ((cookie, secret), (token, _)) = t.sessions().await;
    let ((ended, ended_secret), _) = t.sessions().await;
    t.layer.session_by_secret(&secret.hash()).await.unwrap();
    t.layer.session_by_id(&token.id).await.unwrap();
    t.layer
        .session_by_secret(&ended_secret.hash())
        .await
        .unwrap();
    t.layer.delete_session(&ended.id).await.unwrap();
    assert_eq!(t.keys().await.len(), 3, "two entries and a tombstone");
    // Any failed command counts as an outage: here a counter over a value
    // that is not a number. The count goes to the store instead.
    let poison = format!("{}c:poisoned", t.prefix);
    let _: () = t.raw.set(&poison, "not a number").await.unwrap();
    t.layer
        .hit("poisoned", time::Duration::minutes(1), now())
        .await
        .unwrap();
    assert!(!t.layer.redis().cache_usable());
    // Meanwhile the cache is not used: what the store no longer has is not
    // found (deletions made now would leave no tombstone).
    t.backing.delete_session(&cookie.id).await.unwrap();
    assert_eq!(
        t.layer.session_by_secret(&secret.hash()).await.unwrap(),
        None
    );
    // Back: the flush drops the entries (binary keys and all) and keeps the
    // tombstone, which still masks a late fill.
    t.layer.redis().ping().await.unwrap();
    assert!(t.layer.redis().cache_usable());
    let _: () = t.raw.del(&poison).await.unwrap();
    assert_eq!(t.keys().await, vec![t.key(&ended)]);
    assert_eq!(t.get(&t.key(&ended)).await, Some(Vec::new()));
    assert_eq!(t.layer.redis().session_cache_key_count().await.unwrap(), 1);
    // And the cache is in use again.
    t.layer.session_by_id(&token.id).await.unwrap();
    assert_eq!(t.keys().await.len(), 2);
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
