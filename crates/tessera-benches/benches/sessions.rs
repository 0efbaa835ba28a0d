//! Session lookups per store, warm (the in-process cache) and cold (the
//! store itself), and refresh-token rotation per store. PostgreSQL and
//! PostgreSQL + Redis run when `TEST_DATABASE_URL` (and `TEST_REDIS_URL`)
//! are set, as `scripts/test` and `bench/run-criterion` set them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::clock::SystemClock;
use tessera_core::key_wrap::KeyEncryptionKey;
use tessera_core::password::HashCost;
use tessera_core::secret::{Secret, SecretKind};
use tessera_core::session::{Session, SessionId, SessionKind};
use tessera_core::store::Store;
use tessera_core::user::User;
use tessera_core::username::Username;
use tessera_core::{Tessera, TesseraConfig};
use tessera_store_tests::sign_in_event;
use time::{Duration, OffsetDateTime};

async fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    let dir = tempfile::tempdir().unwrap().keep();
    let sqlite = tessera_store_sqlite::SqliteStore::open(&dir.join("bench.db"))
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let mut stores: Vec<(&'static str, Arc<dyn Store>)> = vec![("sqlite", Arc::new(sqlite))];
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => {
            let (pg, _) = tessera_store_postgres::PgStore::connect_in_new_schema(&url, 8)
                .await
                .unwrap();
            let pg: Arc<dyn Store> = Arc::new(pg);
            stores.push(("postgres", pg));
            if let Ok(redis_url) = std::env::var("TEST_REDIS_URL") {
                let (pg2, _) = tessera_store_postgres::PgStore::connect_in_new_schema(&url, 8)
                    .await
                    .unwrap();
                let prefix = format!("bench{}:", uuid::Uuid::new_v4().simple());
                let redis = tessera_store_redis::Redis::connect(&redis_url, &prefix)
                    .await
                    .unwrap();
                stores.push((
                    "postgres+redis",
                    Arc::new(tessera_store_redis::RedisLayer::new(Arc::new(pg2), redis)),
                ));
            }
        }
        Err(_) => eprintln!("TEST_DATABASE_URL not set: PostgreSQL and Redis stores not measured"),
    }
    stores
}

fn now_ms() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_millisecond(now.millisecond()).unwrap()
}

async fn user(store: &Arc<dyn Store>) -> User {
    let now = now_ms();
    let user = User {
        id: uuid::Uuid::new_v4(),
        username: Username::parse(&format!("u{}", uuid::Uuid::new_v4().simple())).unwrap(),
        roles: vec![],
        disabled: false,
        created_at: now,
        updated_at: now,
        rendered: Default::default(),
    };
    store.insert_user(&user, "$argon2id$unused").await.unwrap();
    user
}

fn session(user: &User, kind: SessionKind, secret: &Secret) -> Session {
    let now = now_ms();
    Session {
        id: SessionId::generate().unwrap(),
        kind,
        user_id: user.id,
        secret_hash: secret.hash(),
        created_at: now,
        last_seen_at: now,
        idle_expires_at: now + Duration::minutes(30),
        absolute_expires_at: now + Duration::hours(12),
        remember_me: false,
        amr: tessera_core::auth_methods::AuthMethods::PASSWORD,
        ip: None,
        user_agent: None,
    }
}

fn lookups(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stores = runtime.block_on(stores());
    for (name, store) in stores {
        let (core, secret) = runtime.block_on(async {
            let user = user(&store).await;
            let secret = Secret::generate(SecretKind::Session).unwrap();
            let cookie_session = session(&user, SessionKind::Cookie, &secret);
            store
                .insert_session(
                    &cookie_session,
                    &sign_in_event(&cookie_session),
                    "$argon2id$unused",
                )
                .await
                .unwrap();
            let config = TesseraConfig {
                hash_cost: HashCost {
                    memory_kib: 64,
                    iterations: 1,
                    parallelism: 1,
                },
                ..TesseraConfig::default()
            };
            let kek = KeyEncryptionKey::generate().unwrap();
            let core = Tessera::open(store.clone(), Arc::new(SystemClock), config, kek)
                .await
                .unwrap();
            core.cookie_sessions.authenticate(&secret).await.unwrap();
            (core, secret)
        });
        c.bench_function(
            &format!("session lookup warm (in-process cache) [{name}]"),
            |b| {
                b.to_async(&runtime)
                    .iter(|| async { core.cookie_sessions.authenticate(&secret).await.unwrap() })
            },
        );
        let hash = secret.hash();
        c.bench_function(&format!("session lookup cold (store) [{name}]"), |b| {
            b.to_async(&runtime)
                .iter(|| async { store.session_by_secret(&hash).await.unwrap().unwrap() })
        });
        let current = std::cell::RefCell::new({
            let refresh = Secret::generate(SecretKind::Refresh).unwrap();
            runtime.block_on(async {
                let user = user(&store).await;
                let token_session = session(&user, SessionKind::Token, &refresh);
                store
                    .insert_token_session(
                        &token_session,
                        &sign_in_event(&token_session),
                        "$argon2id$unused",
                    )
                    .await
                    .unwrap();
            });
            refresh
        });
        c.bench_function(&format!("refresh rotation [{name}]"), |b| {
            b.to_async(&runtime).iter(|| async {
                let next = Secret::generate(SecretKind::Refresh).unwrap();
                let presented = current.borrow().hash();
                let outcome = store
                    .rotate_refresh(
                        &presented,
                        &next.hash(),
                        None,
                        now_ms(),
                        Duration::seconds(10),
                        Duration::days(14),
                    )
                    .await
                    .unwrap();
                assert!(matches!(
                    outcome,
                    tessera_core::store::Rotation::Rotated(..)
                ));
                *current.borrow_mut() = next;
            })
        });
    }
}

criterion_group!(benches, lookups);
criterion_main!(benches);
