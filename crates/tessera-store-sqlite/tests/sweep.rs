//! SQLite has one writer: a sweep of a large backlog must not hold it all
//! the way through, or every sign-in, refresh and touch waits behind it.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tessera_core::store::Sessions;
use tessera_core::user::UserRecord;
use tessera_store_sql::BulkLoad;
use tessera_store_sqlite::SqliteStore;
use tessera_store_tests::{now, session, user};

/// Expired sessions: many sweep batches, seconds in one statement.
const BACKLOG: usize = 40_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_not_held_up_by_the_whole_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("tessera.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let alice = user("alice");
    store
        .load_users(&[UserRecord {
            user: alice.clone(),
            password_hash: "h".into(),
        }])
        .await
        .unwrap();
    let (live, _) = session(alice.id);
    let mut sessions: Vec<_> = (0..BACKLOG)
        .map(|_| {
            let (mut s, _) = session(alice.id);
            s.idle_expires_at = now() - time::Duration::seconds(1);
            s
        })
        .collect();
    sessions.push(live.clone());
    store.load_sessions(&sessions).await.unwrap();

    let sweep = {
        let store = store.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let swept = store.delete_expired_sessions(now()).await.unwrap();
            (swept, started.elapsed())
        })
    };
    // While it runs, the session is used over and over: each touch is a
    // write. Touches that finish while the sweep still runs show that it
    // let go of the writer between batches; one sweep statement would hold
    // every touch until it ends.
    let mut during = 0;
    let mut used = live.clone();
    while !sweep.is_finished() {
        let t = now();
        used.last_seen_at = t;
        used.idle_expires_at = t + time::Duration::minutes(30);
        store.touch_session(&used).await.unwrap();
        if !sweep.is_finished() {
            during += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (swept, took) = sweep.await.unwrap();
    assert_eq!(swept, u64::try_from(BACKLOG).unwrap());
    assert!(
        during >= 2,
        "only {during} touches finished during a sweep of {took:?}"
    );
}
