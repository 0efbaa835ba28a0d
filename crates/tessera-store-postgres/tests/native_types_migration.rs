//! Migration 0004 (ids as uuid, times as timestamptz, addresses as inet)
//! on a database written under the old schema: rows inserted with the old
//! statements read back through the store exactly, to the millisecond.
//! Needs `TEST_DATABASE_URL`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::IpAddr;

use tessera_core::attempt::{Admission, Attempt};
use tessera_core::keys::Algorithm;
use tessera_core::revocation::RevocationKind;
use tessera_core::secret::SecretHash;
use tessera_core::session::SessionKind;
use tessera_core::store::{
    Audit, Counters, Keys, RefreshTokens, Revocations, Sessions, Users, from_millis,
};
use tessera_store_postgres::{MIGRATOR, PgStore};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// 2023-11-14T22:13:20.123Z, in Unix milliseconds.
const T: i64 = 1_700_000_000_123;
/// 9999-12-31T23:59:59.999Z: the latest time a store can be asked to keep.
const FAR: i64 = 253_402_300_799_999;

fn ms(t: i64) -> OffsetDateTime {
    from_millis(t).unwrap()
}

async fn old_row(store: &PgStore, sql: &'static str, binds: &[Bind<'_>]) {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = match *b {
            Bind::Text(v) => q.bind(v),
            Bind::OptText(v) => q.bind(v),
            Bind::Int(v) => q.bind(v),
            Bind::OptInt(v) => q.bind(v),
            Bind::Bytes(v) => q.bind(v),
            Bind::Flag(v) => q.bind(v),
        };
    }
    q.execute(store.pool()).await.unwrap();
}

enum Bind<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bytes(&'a [u8]),
    Flag(bool),
}
use Bind::*;

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"]
async fn rows_written_under_the_old_schema_read_back_the_same() {
    let url = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL must name a PostgreSQL database (scripts/test sets it)");
    let (store, _schema) = PgStore::connect_to_new_schema(&url, 2).await.unwrap();
    MIGRATOR.run_to(3, store.pool()).await.unwrap();

    // The old schema, written with the old statements: ids and addresses
    // as text, times as Unix milliseconds.
    let user_id = Uuid::new_v4();
    let uid = user_id.to_string();
    old_row(
        &store,
        "INSERT INTO users (id, username, username_normalized, password_hash, roles, disabled, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            Text(&uid),
            Text("Alice"),
            Text("alice"),
            Text("$argon2id$hash"),
            Text(r#"["admin"]"#),
            Flag(false),
            Int(T),
            Int(T + 1),
        ],
    )
    .await;
    let current = [7u8; 32];
    let replaced = [8u8; 32];
    let cookie = [9u8; 32];
    let insert_session = "INSERT INTO sessions (id, kind, user_id, secret_hash, created_at, \
         last_seen_at, idle_expires_at, absolute_expires_at, remember_me, ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    old_row(
        &store,
        insert_session,
        &[
            Text("tokenSessionId00000000"),
            Text("token"),
            Text(&uid),
            Bytes(&current),
            Int(T),
            Int(T + 5),
            Int(FAR - 1),
            Int(FAR),
            Flag(true),
            OptText(Some("2001:db8::1")),
            OptText(Some("agent/1")),
        ],
    )
    .await;
    old_row(
        &store,
        insert_session,
        &[
            Text("cookieSessionId0000000"),
            Text("cookie"),
            Text(&uid),
            Bytes(&cookie),
            Int(T),
            Int(T),
            Int(FAR),
            Int(FAR),
            Flag(false),
            // Read as no address before; dropped by the migration.
            OptText(Some("not an address")),
            OptText(None),
        ],
    )
    .await;
    let insert_token = "INSERT INTO refresh_tokens (hash, session_id, created_at, replaced_at) VALUES ($1, $2, $3, $4)";
    old_row(
        &store,
        insert_token,
        &[
            Bytes(&replaced),
            Text("tokenSessionId00000000"),
            Int(T),
            OptInt(Some(T + 2)),
        ],
    )
    .await;
    old_row(
        &store,
        insert_token,
        &[
            Bytes(&current),
            Text("tokenSessionId00000000"),
            Int(T + 2),
            OptInt(None),
        ],
    )
    .await;
    old_row(
        &store,
        "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retired_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            Text("kid-1"),
            Text("EdDSA"),
            Bytes(b"sealed"),
            Int(T),
            OptInt(Some(T + 3)),
            OptInt(Some(FAR)),
        ],
    )
    .await;
    old_row(
        &store,
        "INSERT INTO revocations (kind, value, expires_at) VALUES ($1, $2, $3)",
        &[Text("sid"), Text("revokedSid"), Int(FAR)],
    )
    .await;
    old_row(
        &store,
        "INSERT INTO audit_log (kind, user_id, ip, user_agent, at, detail) \
         VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        &[
            Text("sign_in"),
            OptText(Some(&uid)),
            OptText(Some("192.0.2.7")),
            OptText(None),
            Int(T + 7),
            Text(r#"{"sid":"x"}"#),
        ],
    )
    .await;
    // An account blocked far ahead; an address whose window has ended.
    let insert_counter =
        "INSERT INTO counters (key, count, expires_at, blocked_until) VALUES ($1, $2, $3, $4)";
    old_row(
        &store,
        insert_counter,
        &[Text("acct:x"), Int(3), Int(FAR), Int(FAR)],
    )
    .await;
    old_row(
        &store,
        insert_counter,
        &[Text("ip:y"), Int(1), Int(T), Int(0)],
    )
    .await;

    store.migrate().await.unwrap();

    let user = store.user_by_id(user_id).await.unwrap().unwrap();
    assert_eq!(user.user.username.normalized(), "alice");
    assert_eq!(user.user.roles, vec!["admin".to_owned()]);
    assert!(!user.user.disabled);
    assert_eq!(user.user.created_at, ms(T));
    assert_eq!(user.user.updated_at, ms(T + 1));
    assert_eq!(user.password_hash, "$argon2id$hash");
    assert_eq!(store.list_users(None, 10).await.unwrap().len(), 1);

    let hash = SecretHash::from_slice(&current).unwrap();
    let (session, is_current) = store.session_by_refresh(&hash).await.unwrap().unwrap();
    assert!(is_current);
    assert_eq!(
        session,
        store.session_by_secret(&hash).await.unwrap().unwrap()
    );
    assert_eq!(session.id.as_str(), "tokenSessionId00000000");
    assert_eq!(session.kind, SessionKind::Token);
    assert_eq!(session.user_id, user_id);
    assert_eq!(session.created_at, ms(T));
    assert_eq!(session.last_seen_at, ms(T + 5));
    assert_eq!(session.idle_expires_at, ms(FAR - 1));
    assert_eq!(session.absolute_expires_at, ms(FAR));
    assert!(session.remember_me);
    assert_eq!(session.ip, Some("2001:db8::1".parse::<IpAddr>().unwrap()));
    assert_eq!(session.user_agent.as_deref(), Some("agent/1"));
    let old = SecretHash::from_slice(&replaced).unwrap();
    let (_, is_current) = store.session_by_refresh(&old).await.unwrap().unwrap();
    assert!(!is_current);
    let cookie = store
        .session_by_secret(&SecretHash::from_slice(&cookie).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cookie.ip, None);
    assert_eq!(cookie.user_agent, None);
    assert_eq!(
        store
            .list_user_sessions(user_id, ms(T))
            .await
            .unwrap()
            .len(),
        2
    );

    let keys = store.keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].algorithm, Algorithm::EdDSA);
    assert_eq!(keys[0].sealed, b"sealed");
    assert_eq!(keys[0].created_at, ms(T));
    assert_eq!(keys[0].retired_at, Some(ms(T + 3)));
    assert_eq!(keys[0].expires_at, Some(ms(FAR)));

    let revocations = store.revocations_since(0, ms(T), 10).await.unwrap();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].kind, RevocationKind::Sid);
    assert_eq!(revocations[0].value, "revokedSid");
    assert_eq!(revocations[0].expires_at, ms(FAR));

    let audit = store.list_audit(None, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event.user_id, Some(user_id));
    assert_eq!(audit[0].event.ip, Some("192.0.2.7".parse().unwrap()));
    assert_eq!(audit[0].event.at, ms(T + 7));
    assert_eq!(audit[0].event.detail, serde_json::json!({"sid": "x"}));

    // The counters' functions read the converted rows: the block holds, and
    // the address's ended window starts again.
    let attempt = |ip| Attempt {
        ip: Some(ip),
        account: "acct:x",
        limit: 3,
        window: Duration::seconds(30),
        first_wait: Duration::milliseconds(300),
        max_wait: Duration::milliseconds(600),
    };
    let now = ms(T + 10);
    assert_eq!(
        store.reserve(&attempt("ip:y"), now).await.unwrap(),
        Admission::Refused { retry_at: ms(FAR) }
    );
    store.release(&attempt("ip:y"), true, now).await.unwrap();
    assert_eq!(
        store.reserve(&attempt("ip:y"), now).await.unwrap(),
        Admission::Granted { ip: 1, account: 1 }
    );

    // Written after the migration, against rows from before it.
    assert!(store.set_disabled(user_id, true, ms(T + 20)).await.unwrap());
    assert_eq!(
        store
            .delete_user_sessions(user_id, None)
            .await
            .unwrap()
            .len(),
        2
    );
    store.close().await;
}
