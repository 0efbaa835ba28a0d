//! Bulk loading (`tessera_store_sql::BulkLoad`), for the SQL stores: what
//! it stores reads back through the store traits exactly as the server's
//! own writes would, across several statements, and a batch is stored
//! whole or not at all.

use tessera_core::revocation::RevocationKind;
use tessera_core::store::{Rotation, Store, StoreError};
use tessera_core::user::UserRecord;
use tessera_store_sql::BulkLoad;
use time::Duration;

use crate::{now, session, token_session, user};

/// More sessions than one statement carries.
const MANY: usize = 1_234;

/// Users, sessions of both kinds and revocations, loaded, read back.
pub async fn bulk_loading_reads_back_as_written<S: Store + BulkLoad>(store: &S) {
    let mut alice = user("alice");
    alice.roles = vec!["admin".into()];
    let bob = user("Bob");
    let records: Vec<UserRecord> = [(&alice, "hash-a"), (&bob, "hash-b")]
        .into_iter()
        .map(|(user, hash)| UserRecord {
            user: user.clone(),
            password_hash: hash.into(),
        })
        .collect();
    store.load_users(&records).await.unwrap();
    let read = store.user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(read.user, bob);
    assert_eq!(read.password_hash, "hash-b");
    assert_eq!(
        store.user_by_id(alice.id).await.unwrap().unwrap().user,
        alice
    );

    let (cookie, cookie_secret) = session(alice.id);
    let (token, refresh) = token_session(bob.id);
    let (mut expired, _) = session(alice.id);
    expired.idle_expires_at = now() - Duration::seconds(1);
    let mut sessions = vec![cookie.clone(), token.clone(), expired.clone()];
    sessions.extend((0..MANY).map(|_| session(bob.id).0));
    store.load_sessions(&sessions).await.unwrap();
    assert_eq!(
        store
            .session_by_secret(&cookie_secret.hash())
            .await
            .unwrap(),
        Some(cookie.clone())
    );
    // A token session's secret is its current refresh token, which rotates.
    assert_eq!(
        store.session_by_refresh(&refresh.hash()).await.unwrap(),
        Some((token.clone(), true))
    );
    let next =
        tessera_core::secret::Secret::generate(tessera_core::secret::SecretKind::Refresh).unwrap();
    let rotation = store
        .rotate_refresh(
            &refresh.hash(),
            &next.hash(),
            None,
            now(),
            Duration::seconds(30),
            Duration::days(1),
        )
        .await
        .unwrap();
    assert!(matches!(rotation, Rotation::Rotated(..)), "{rotation:?}");
    assert_eq!(
        store.list_user_sessions(bob.id, now()).await.unwrap().len(),
        MANY + 1
    );
    assert_eq!(store.delete_expired_sessions(now()).await.unwrap(), 1);
    assert!(store.session_by_id(&expired.id).await.unwrap().is_none());

    let until = now() + Duration::hours(1);
    let entries: Vec<_> = (0..MANY)
        .map(|i| (RevocationKind::Sid, format!("sid-{i}"), until))
        .chain([(RevocationKind::Jti, "jti-0".to_owned(), until)])
        .collect();
    store.load_revocations(&entries).await.unwrap();
    let read = store
        .revocations_since(0, now(), u32::try_from(MANY + 10).unwrap())
        .await
        .unwrap();
    assert_eq!(read.len(), MANY + 1);
    for (r, (kind, value, expires_at)) in read.iter().zip(&entries) {
        assert_eq!(
            (&r.kind, &r.value, &r.expires_at),
            (kind, value, expires_at)
        );
    }
    assert!(read.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
    // Appends after a bulk load come after it.
    let later = store
        .insert_revocations(&[(RevocationKind::Sid, "later".into(), until)])
        .await
        .unwrap();
    assert!(later[0].seq > read[MANY].seq);
}

/// A batch with one row the store refuses stores none of its rows.
pub async fn a_bulk_batch_is_stored_whole_or_not_at_all<S: Store + BulkLoad>(store: &S) {
    let alice = user("alice");
    let record = |u: &tessera_core::user::User| UserRecord {
        user: u.clone(),
        password_hash: "h".into(),
    };
    store.load_users(&[record(&alice)]).await.unwrap();
    let carol = user("carol");
    let again = store
        .load_users(&[record(&carol), record(&user("ALICE"))])
        .await;
    assert!(matches!(again, Err(StoreError::Duplicate)), "{again:?}");
    assert!(store.user_by_id(carol.id).await.unwrap().is_none());

    let (first, secret) = session(alice.id);
    let mut sessions: Vec<_> = (0..MANY).map(|_| session(alice.id).0).collect();
    sessions.push(first.clone());
    // The same session twice, in the batch's third statement: the rows of
    // the first two are not kept either.
    sessions.push(first);
    assert!(store.load_sessions(&sessions).await.is_err());
    assert!(
        store
            .session_by_secret(&secret.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .list_user_sessions(alice.id, now())
            .await
            .unwrap()
            .is_empty()
    );
}

/// A backlog of several sweep batches is deleted whole, and only it.
pub async fn a_sweep_deletes_a_backlog_of_many_batches<S: Store + BulkLoad>(store: &S) {
    let alice = user("alice");
    store
        .load_users(&[UserRecord {
            user: alice.clone(),
            password_hash: "h".into(),
        }])
        .await
        .unwrap();
    let (live, _) = session(alice.id);
    let mut sessions: Vec<_> = (0..MANY * 2)
        .map(|_| {
            let (mut s, _) = session(alice.id);
            s.idle_expires_at = now() - Duration::seconds(1);
            s
        })
        .collect();
    sessions.push(live.clone());
    store.load_sessions(&sessions).await.unwrap();
    let past = now() - Duration::seconds(1);
    let until = now() + Duration::hours(1);
    let revocations: Vec<_> = (0..MANY * 2)
        .map(|i| (RevocationKind::Jti, format!("old-{i}"), past))
        .chain([(RevocationKind::Jti, "kept".to_owned(), until)])
        .collect();
    store.load_revocations(&revocations).await.unwrap();

    assert_eq!(
        store.delete_expired_sessions(now()).await.unwrap(),
        u64::try_from(MANY * 2).unwrap()
    );
    assert_eq!(
        store.list_user_sessions(alice.id, now()).await.unwrap(),
        [live]
    );
    assert_eq!(store.delete_expired_sessions(now()).await.unwrap(), 0);
    assert_eq!(
        store.delete_expired_revocations(now()).await.unwrap(),
        u64::try_from(MANY * 2).unwrap()
    );
    let left = store.revocations_since(0, past, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].value, "kept");
}
