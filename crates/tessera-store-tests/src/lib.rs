//! The store conformance suite: the same tests, written once, for every
//! backend. A backend's test file calls [`conformance_suite!`] with an async
//! function that returns a fresh, isolated, migrated store.
//!
//! This crate is test code: failed expectations panic, as tests do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

pub mod bulk;
mod passkeys;

pub use passkeys::*;
mod second_factors;

pub use second_factors::{
    mfa_challenges_round_trip_and_are_spent_once, recovery_codes_are_spent_once,
    totp_enrolment_is_pending_until_enabled, totp_steps_are_spent_once_in_order,
};

use tessera_core::attempt::{Admission, Attempt};
use tessera_core::audit::{AuditEvent, AuditKind};
use tessera_core::auth_methods::{AuthMethod, AuthMethods};
use tessera_core::authorization_code::{AuthorizationCode, CodeRedemption};
use tessera_core::client::ClientInfo;
use tessera_core::consent::Consent;
use tessera_core::key_wrap::{self, KeyEncryptionKey};
use tessera_core::keys::{Algorithm, KeyPurpose, SigningKey, StoredKey};
use tessera_core::oauth_client::OAuthClient;
use tessera_core::revocation::RevocationKind;
use tessera_core::secret::{Secret, SecretKind};
use tessera_core::session::{Session, SessionId, SessionKind};
use tessera_core::store::{Holder, Presented, Rotation, Store, StoreError, WrongClient};
use tessera_core::user::User;
use tessera_core::username::Username;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Expands to one `#[tokio::test]` per conformance case, each with a fresh
/// store from `$factory` (an async fn returning `Arc<dyn Store>`). With
/// `ignore = "reason"` every case is marked ignored with that reason, for
/// backends that need a running service (the test script runs them).
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases {} $factory);
    };
    ($factory:path, ignore = $reason:literal) => {
        $crate::conformance_suite!(@cases { #[ignore = $reason] } $factory);
    };
    (@cases $attrs:tt $factory:path) => {
        $crate::conformance_suite!(@each $attrs $factory;
            users_round_trip,
            duplicate_normalised_username_is_refused,
            users_list_in_pages,
            user_updates,
            sessions_round_trip,
            a_session_is_stored_with_its_audit_event_or_not_at_all,
            a_session_needs_the_password_hash_it_was_proven_with,
            session_storage_counts_sessions_not_the_log,
            touch_moves_idle_expiry,
            delete_user_sessions_keeps_the_exception,
            listing_and_sweeping_skip_expired,
            deleting_a_user_deletes_nothing_else,
            audit_pages_newest_first,
            refresh_rotation_and_reuse,
            concurrent_refresh_rotations_stay_one_branch,
            refresh_of_expired_session_is_refused,
            refresh_is_bound_to_its_client,
            concurrent_exchanges_of_every_kind_each_get_their_own_answer,
            keys_are_created_once_and_rotated,
            key_purposes_have_a_current_key_each,
            sealed_key_material_is_replaced_once,
            revocations_are_read_in_order_after_a_cursor,
            counters_count_in_windows_and_block,
            reservations_count_attempts_in_flight,
            concurrent_reservations_grant_exactly_the_limit,
            clients_round_trip,
            deleting_a_client_hands_back_its_sessions,
            consents_are_per_user_and_client,
            codes_are_redeemed_once_and_reuse_is_marked,
            concurrent_code_redemptions_have_one_winner,
            expired_codes_are_swept,
            passkeys_round_trip,
            a_credential_id_is_registered_once,
            deleting_a_users_passkeys_keeps_the_others,
            ceremonies_are_taken_once,
            concurrent_ceremony_takes_have_one_winner,
            expired_ceremonies_are_swept,
            totp_enrolment_is_pending_until_enabled,
            totp_steps_are_spent_once_in_order,
            recovery_codes_are_spent_once,
            mfa_challenges_round_trip_and_are_spent_once,
        );
    };
    (@each $attrs:tt $factory:path; $($case:ident),* $(,)?) => {
        $( $crate::conformance_suite!(@one $attrs $factory; $case); )*
    };
    (@one { $($attr:tt)* } $factory:path; $case:ident) => {
        $($attr)*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let store = $factory().await;
            $crate::$case(store).await;
        }
    };
}

/// A time with millisecond precision, which every backend keeps exactly.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap()
}

/// A new user value named `name`.
pub fn user(name: &str) -> User {
    let t = now();
    User {
        id: Uuid::new_v4(),
        username: Username::parse(name).unwrap(),
        roles: vec![],
        disabled: false,
        created_at: t,
        updated_at: t,
        rendered: Default::default(),
    }
}

/// A new live cookie session of `user_id` and its secret.
pub fn session(user_id: Uuid) -> (Session, Secret) {
    let secret = Secret::generate(SecretKind::Session).unwrap();
    let t = now();
    let session = Session {
        id: SessionId::generate().unwrap(),
        kind: SessionKind::Cookie,
        user_id,
        secret_hash: secret.hash(),
        created_at: t,
        last_seen_at: t,
        idle_expires_at: t + Duration::minutes(30),
        absolute_expires_at: t + Duration::hours(12),
        remember_me: false,
        amr: AuthMethods::PASSWORD,
        ip: Some("127.0.0.1".parse().unwrap()),
        user_agent: Some("conformance".into()),
    };
    (session, secret)
}

/// The audit event a sign-in stores with its session.
pub fn sign_in_event(session: &Session) -> AuditEvent {
    AuditEvent::new(
        AuditKind::SignInSucceeded,
        Some(session.user_id),
        &ClientInfo::new(session.ip, session.user_agent.as_deref()),
        session.created_at,
        serde_json::json!({ "session_id": session.id.as_str() }),
    )
}

/// Inserted users read back identically, by id and by normalised name.
pub async fn users_round_trip(store: Arc<dyn Store>) {
    let mut alice = user("Alice");
    alice.roles = vec!["admin".into(), "ops".into()];
    store.insert_user(&alice, "$argon2id$stub").await.unwrap();
    let by_id = store.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(by_id.user, alice);
    assert_eq!(by_id.password_hash, "$argon2id$stub");
    let by_name = store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(by_name.user, alice);
    assert!(store.user_by_username("bob").await.unwrap().is_none());
    assert!(store.user_by_id(Uuid::new_v4()).await.unwrap().is_none());
}

/// Two names equal after normalisation cannot both exist.
pub async fn duplicate_normalised_username_is_refused(store: Arc<dyn Store>) {
    store.insert_user(&user("Alice"), "h").await.unwrap();
    let err = store
        .insert_user(&user("ＡＬＩＣＥ"), "h")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate), "{err:?}");
}

/// Listing pages by normalised name.
pub async fn users_list_in_pages(store: Arc<dyn Store>) {
    for name in ["carol", "alice", "bob", "dave"] {
        store.insert_user(&user(name), "h").await.unwrap();
    }
    let first = store.list_users(None, 3).await.unwrap();
    let names: Vec<_> = first
        .iter()
        .map(|u| u.username.normalized().to_owned())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let rest = store.list_users(Some("carol"), 3).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].username.normalized(), "dave");
}

/// Password, disabled flag and roles can be changed; unknown ids report false.
pub async fn user_updates(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "old").await.unwrap();
    let later = now() + Duration::seconds(5);
    assert!(
        store
            .set_password_hash(alice.id, "new", later)
            .await
            .unwrap()
    );
    assert!(store.set_disabled(alice.id, true, later).await.unwrap());
    assert!(
        store
            .set_roles(alice.id, &["admin".into()], later)
            .await
            .unwrap()
    );
    let record = store.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(record.password_hash, "new");
    assert!(record.user.disabled);
    assert_eq!(record.user.roles, ["admin"]);
    assert_eq!(record.user.updated_at, later);
    let nobody = Uuid::new_v4();
    assert!(!store.set_password_hash(nobody, "x", later).await.unwrap());
    assert!(!store.set_disabled(nobody, true, later).await.unwrap());
    assert!(!store.set_roles(nobody, &[], later).await.unwrap());
}

/// Sessions read back identically by secret hash and by id, flags included.
pub async fn sessions_round_trip(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (session, secret) = session(alice.id);
    let session = Session {
        remember_me: true,
        amr: AuthMethods::PASSWORD.with(AuthMethod::OneTimeCode),
        ..session
    };
    store
        .insert_session(&session, &sign_in_event(&session), "h")
        .await
        .unwrap();
    let by_secret = store
        .session_by_secret(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_secret, session);
    let by_id = store.session_by_id(&session.id).await.unwrap().unwrap();
    assert_eq!(by_id, session);
    // With address and user agent, also once a lookup may have cached the
    // session (a cache keeps neither).
    let (token, _) = token_session(alice.id);
    store
        .insert_token_session(&token, &sign_in_event(&token), "h")
        .await
        .unwrap();
    for _ in 0..2 {
        store.session_by_id(&token.id).await.unwrap().unwrap();
        store
            .session_by_secret(&secret.hash())
            .await
            .unwrap()
            .unwrap();
        let stored = store.stored_session(&token.id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(&token));
        let stored = store.stored_session(&session.id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(&session));
    }
    let unknown = SessionId::generate().unwrap();
    assert_eq!(store.stored_session(&unknown).await.unwrap(), None);
    let other = Secret::generate(SecretKind::Session).unwrap();
    assert!(
        store
            .session_by_secret(&other.hash())
            .await
            .unwrap()
            .is_none()
    );
}

/// A new session and its audit event are one transaction: both are
/// stored, or (a duplicate session) neither.
pub async fn a_session_is_stored_with_its_audit_event_or_not_at_all(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (session, _) = session(alice.id);
    store
        .insert_session(&session, &sign_in_event(&session), "h")
        .await
        .unwrap();
    let (token_session, _) = token_session(alice.id);
    store
        .insert_token_session(&token_session, &sign_in_event(&token_session), "h")
        .await
        .unwrap();
    let logged = |records: &[tessera_core::audit::AuditRecord], id: &SessionId| {
        records
            .iter()
            .filter(|r| r.event.detail["session_id"] == id.as_str())
            .count()
    };
    let records = store.list_audit(None, 100).await.unwrap();
    assert_eq!(logged(&records, &session.id), 1);
    assert_eq!(logged(&records, &token_session.id), 1);
    assert_eq!(records[0].event.kind, "sign_in.succeeded");
    assert_eq!(records[0].event.user_id, Some(alice.id));

    // The same session again: refused, and its event is not written either.
    let again = store
        .insert_session(&session, &sign_in_event(&session), "h")
        .await;
    assert!(again.is_err(), "a duplicate session was stored");
    let again = store
        .insert_token_session(&token_session, &sign_in_event(&token_session), "h")
        .await;
    assert!(again.is_err(), "a duplicate token session was stored");
    let records = store.list_audit(None, 100).await.unwrap();
    assert_eq!(logged(&records, &session.id), 1);
    assert_eq!(logged(&records, &token_session.id), 1);
}

/// A session is stored only while its user is enabled and still has the
/// password hash the sign-in checked: after a password change or a disable,
/// nothing of it (session, event, refresh token) is written.
pub async fn a_session_needs_the_password_hash_it_was_proven_with(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "old").await.unwrap();
    let stored = |id: SessionId| {
        let store = store.clone();
        async move { store.session_by_id(&id).await.unwrap().is_some() }
    };
    let (cookie, _) = session(alice.id);
    let (token, refresh) = token_session(alice.id);
    assert!(
        store
            .set_password_hash(alice.id, "new", now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_session(&cookie, &sign_in_event(&cookie), "old")
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_token_session(&token, &sign_in_event(&token), "old")
            .await
            .unwrap()
    );
    assert!(!stored(cookie.id.clone()).await);
    assert!(!stored(token.id.clone()).await);
    assert!(
        store
            .session_by_refresh(&refresh.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.list_audit(None, 10).await.unwrap().is_empty());

    assert!(store.set_disabled(alice.id, true, now()).await.unwrap());
    assert!(
        !store
            .insert_session(&cookie, &sign_in_event(&cookie), "new")
            .await
            .unwrap()
    );
    assert!(!stored(cookie.id.clone()).await);
    // Another user's hash proves nothing for alice.
    let bob = user("bob");
    store.insert_user(&bob, "new").await.unwrap();
    assert!(store.set_disabled(alice.id, false, now()).await.unwrap());
    let (stranger, _) = session(Uuid::new_v4());
    assert!(
        !store
            .insert_session(&stranger, &sign_in_event(&stranger), "new")
            .await
            .unwrap()
    );
    assert!(
        store
            .insert_session(&cookie, &sign_in_event(&cookie), "new")
            .await
            .unwrap()
    );
    assert!(
        store
            .insert_token_session(&token, &sign_in_event(&token), "new")
            .await
            .unwrap()
    );
    assert!(stored(cookie.id.clone()).await);
    assert!(
        store
            .session_by_refresh(&refresh.hash())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.list_audit(None, 10).await.unwrap().len(), 2);
}

/// The storage figure grows with sessions, and not with audit events.
pub async fn session_storage_counts_sessions_not_the_log(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let client = ClientInfo::new(None, Some("agent"));
    let start = store.session_storage_bytes().await.unwrap().unwrap();
    for i in 0..300 {
        let event = AuditEvent::new(
            AuditKind::SignInFailed,
            Some(alice.id),
            &client,
            now(),
            serde_json::json!({ "n": i, "padding": "x".repeat(200) }),
        );
        store.append_audit(&event).await.unwrap();
    }
    let after_log = store.session_storage_bytes().await.unwrap().unwrap();
    assert_eq!(after_log, start, "audit events counted as session storage");
    for _ in 0..300 {
        let (session, _) = session(alice.id);
        store
            .insert_session(&session, &sign_in_event(&session), "h")
            .await
            .unwrap();
    }
    let after_sessions = store.session_storage_bytes().await.unwrap().unwrap();
    assert!(
        after_sessions >= start + 300 * 100,
        "300 sessions grew the figure from {start} to {after_sessions} bytes"
    );
}

/// Touching moves last-seen and idle expiry, nothing else.
pub async fn touch_moves_idle_expiry(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (session, _) = session(alice.id);
    store
        .insert_session(&session, &sign_in_event(&session), "h")
        .await
        .unwrap();
    let seen = session.created_at + Duration::minutes(5);
    let idle = seen + Duration::minutes(30);
    // Only the two times are written, whatever else the value says.
    let touched = Session {
        last_seen_at: seen,
        idle_expires_at: idle,
        absolute_expires_at: seen,
        remember_me: true,
        amr: AuthMethods::PASSWORD,
        ..session.clone()
    };
    store.touch_session(&touched).await.unwrap();
    let stored = store.stored_session(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.last_seen_at, seen);
    assert_eq!(stored.idle_expires_at, idle);
    assert_eq!(stored.absolute_expires_at, session.absolute_expires_at);
    assert!(!stored.remember_me);
}

/// Bulk deletion spares the named session and returns what it removed.
pub async fn delete_user_sessions_keeps_the_exception(store: Arc<dyn Store>) {
    let alice = user("alice");
    let bob = user("bob");
    store.insert_user(&alice, "h").await.unwrap();
    store.insert_user(&bob, "h").await.unwrap();
    let (keep, _) = session(alice.id);
    let (drop1, _) = session(alice.id);
    let (drop2, _) = session(alice.id);
    let (bobs, _) = session(bob.id);
    for s in [&keep, &drop1, &drop2, &bobs] {
        store
            .insert_session(s, &sign_in_event(s), "h")
            .await
            .unwrap();
    }
    let mut removed: Vec<_> = store
        .delete_user_sessions(alice.id, Some(&keep.id))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    removed.sort();
    let mut expected = vec![drop1.id.clone(), drop2.id.clone()];
    expected.sort();
    assert_eq!(removed, expected);
    assert!(store.session_by_id(&keep.id).await.unwrap().is_some());
    assert!(store.session_by_id(&bobs.id).await.unwrap().is_some());
    let all = store.delete_user_sessions(alice.id, None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(store.delete_session(&keep.id).await.unwrap().is_none());
}

/// Expired sessions are neither listed nor kept by the sweep.
pub async fn listing_and_sweeping_skip_expired(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (live, _) = session(alice.id);
    let (mut idle, _) = session(alice.id);
    idle.idle_expires_at = now() - Duration::seconds(1);
    let (mut old, _) = session(alice.id);
    old.absolute_expires_at = now() - Duration::seconds(1);
    for s in [&live, &idle, &old] {
        store
            .insert_session(s, &sign_in_event(s), "h")
            .await
            .unwrap();
    }
    let listed = store.list_user_sessions(alice.id, now()).await.unwrap();
    assert_eq!(listed.iter().map(|s| &s.id).collect::<Vec<_>>(), [&live.id]);
    assert_eq!(store.delete_expired_sessions(now()).await.unwrap(), 2);
    assert!(store.session_by_id(&idle.id).await.unwrap().is_none());
    assert!(store.session_by_id(&live.id).await.unwrap().is_some());
}

/// Deleting one session leaves the others alone.
pub async fn deleting_a_user_deletes_nothing_else(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (a, _) = session(alice.id);
    let (b, _) = session(alice.id);
    store
        .insert_session(&a, &sign_in_event(&a), "h")
        .await
        .unwrap();
    store
        .insert_session(&b, &sign_in_event(&b), "h")
        .await
        .unwrap();
    let removed = store.delete_session(&a.id).await.unwrap().unwrap();
    assert_eq!(removed.id, a.id);
    assert!(store.session_by_id(&b.id).await.unwrap().is_some());
}

/// The audit log pages newest first by id.
pub async fn audit_pages_newest_first(store: Arc<dyn Store>) {
    let client = ClientInfo::new(Some("192.0.2.1".parse().unwrap()), Some("agent"));
    let user_id = Uuid::new_v4();
    for i in 0..5 {
        let event = AuditEvent::new(
            AuditKind::SignInFailed,
            Some(user_id),
            &client,
            now(),
            serde_json::json!({ "n": i }),
        );
        store.append_audit(&event).await.unwrap();
    }
    let first = store.list_audit(None, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(first[0].event.detail["n"], 4);
    assert_eq!(first[0].event.kind, "sign_in.failed");
    assert_eq!(first[0].event.ip, client.ip);
    assert_eq!(first[0].event.user_id, Some(user_id));
    let rest = store.list_audit(Some(first[2].id), 10).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[1].event.detail["n"], 0);
}

/// A new live token session of `user_id` and its first refresh token.
pub fn token_session(user_id: Uuid) -> (Session, Secret) {
    let (mut session, _) = session(user_id);
    let refresh = Secret::generate(SecretKind::Refresh).unwrap();
    session.kind = SessionKind::Token;
    session.secret_hash = refresh.hash();
    (session, refresh)
}

/// Current tokens rotate; replaced ones rotate within the grace window and
/// revoke the session after it.
pub async fn refresh_rotation_and_reuse(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (session, first) = token_session(alice.id);
    store
        .insert_token_session(&session, &sign_in_event(&session), "h")
        .await
        .unwrap();
    let grace = Duration::seconds(10);
    let idle = Duration::days(14);
    let t0 = now();
    let second = Secret::generate(SecretKind::Refresh).unwrap();
    match store
        .rotate_refresh(&first.hash(), &second.hash(), None, t0, grace, idle)
        .await
        .unwrap()
    {
        Rotation::Rotated(s, presented, holder) => {
            assert_eq!(presented, Presented::Current);
            assert_eq!(holder, None);
            assert_eq!(s.id, session.id);
            assert_eq!(s.secret_hash, second.hash());
        }
        other => panic!("{other:?}"),
    }
    let (current, is_current) = store
        .session_by_refresh(&second.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(is_current);
    assert_eq!(current.secret_hash, second.hash());
    assert!(
        !store
            .session_by_refresh(&first.hash())
            .await
            .unwrap()
            .unwrap()
            .1
    );
    // Within grace, the replaced token still rotates (and replaces the
    // current one), and the store says it was a replaced one.
    let third = Secret::generate(SecretKind::Refresh).unwrap();
    let t1 = t0 + Duration::seconds(5);
    assert!(matches!(
        store
            .rotate_refresh(&first.hash(), &third.hash(), None, t1, grace, idle)
            .await
            .unwrap(),
        Rotation::Rotated(_, Presented::WithinGrace, None)
    ));
    assert!(
        !store
            .session_by_refresh(&second.hash())
            .await
            .unwrap()
            .unwrap()
            .1
    );
    // After grace: reuse, and the session is gone.
    let fourth = Secret::generate(SecretKind::Refresh).unwrap();
    let t2 = t0 + Duration::seconds(11);
    match store
        .rotate_refresh(&first.hash(), &fourth.hash(), None, t2, grace, idle)
        .await
        .unwrap()
    {
        Rotation::Reused(s) => assert_eq!(s.id, session.id),
        other => panic!("{other:?}"),
    }
    assert!(store.session_by_id(&session.id).await.unwrap().is_none());
    assert!(
        store
            .session_by_refresh(&third.hash())
            .await
            .unwrap()
            .is_none()
    );
    let fifth = Secret::generate(SecretKind::Refresh).unwrap();
    assert_eq!(
        store
            .rotate_refresh(&third.hash(), &fifth.hash(), None, t2, grace, idle)
            .await
            .unwrap(),
        Rotation::Unknown
    );

    // Pruning takes only tokens replaced before the cut-off, never a current one.
    let (session, old) = token_session(alice.id);
    store
        .insert_token_session(&session, &sign_in_event(&session), "h")
        .await
        .unwrap();
    let current = Secret::generate(SecretKind::Refresh).unwrap();
    store
        .rotate_refresh(&old.hash(), &current.hash(), None, t0, grace, idle)
        .await
        .unwrap();
    assert_eq!(store.prune_refresh_tokens(t0).await.unwrap(), 0);
    assert_eq!(
        store
            .prune_refresh_tokens(t0 + Duration::milliseconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .session_by_refresh(&old.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .session_by_refresh(&current.hash())
            .await
            .unwrap()
            .unwrap()
            .1
    );
}

/// Many concurrent exchanges of one token leave exactly one current token.
pub async fn concurrent_refresh_rotations_stay_one_branch(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (session, first) = token_session(alice.id);
    store
        .insert_token_session(&session, &sign_in_event(&session), "h")
        .await
        .unwrap();
    let attempts = (0..12).map(|_| {
        let store = store.clone();
        let presented = first.hash();
        tokio::spawn(async move {
            let new = Secret::generate(SecretKind::Refresh).unwrap();
            let outcome = store
                .rotate_refresh(
                    &presented,
                    &new.hash(),
                    None,
                    now(),
                    Duration::seconds(10),
                    Duration::days(14),
                )
                .await
                .unwrap();
            (outcome, new)
        })
    });
    let results = futures::future::join_all(attempts).await;
    let mut current = 0;
    for result in results {
        let (outcome, new) = result.unwrap();
        assert!(matches!(outcome, Rotation::Rotated(..)), "{outcome:?}");
        if store
            .session_by_refresh(&new.hash())
            .await
            .unwrap()
            .unwrap()
            .1
        {
            current += 1;
        }
    }
    assert_eq!(current, 1);
}

/// A token of an expired session does not rotate.
pub async fn refresh_of_expired_session_is_refused(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (mut session, first) = token_session(alice.id);
    session.idle_expires_at = now() - Duration::seconds(1);
    store
        .insert_token_session(&session, &sign_in_event(&session), "h")
        .await
        .unwrap();
    let new = Secret::generate(SecretKind::Refresh).unwrap();
    assert_eq!(
        store
            .rotate_refresh(
                &first.hash(),
                &new.hash(),
                None,
                now(),
                Duration::seconds(10),
                Duration::days(14)
            )
            .await
            .unwrap(),
        Rotation::Expired
    );
    let unknown = Secret::generate(SecretKind::Refresh).unwrap();
    assert_eq!(
        store
            .rotate_refresh(
                &unknown.hash(),
                &new.hash(),
                None,
                now(),
                Duration::seconds(10),
                Duration::days(14)
            )
            .await
            .unwrap(),
        Rotation::Unknown
    );
}

/// A token session of `user_id` held by `holder` (if any), stored; its
/// first refresh token.
async fn held_session(
    store: &Arc<dyn Store>,
    user_id: Uuid,
    holder: Option<&OAuthClient>,
) -> (Session, Secret) {
    let (session, refresh) = token_session(user_id);
    store
        .insert_token_session(&session, &sign_in_event(&session), "h")
        .await
        .unwrap();
    if let Some(c) = holder {
        store
            .link_client_session(&session.id, c.id, "openid profile")
            .await
            .unwrap();
    }
    (session, refresh)
}

/// A refresh token is exchanged only by the client holding its session (a
/// public one may go unnamed), a password-grant token only by no client.
/// Any other presenter is refused before anything else is looked at: the
/// token is not spent, a replaced one revokes nothing, an expired one is
/// not reported as expired.
pub async fn refresh_is_bound_to_its_client(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let photos = client("Photos");
    let spa = OAuthClient {
        public: true,
        secret_hash: None,
        ..client("Spa")
    };
    store.insert_client(&photos).await.unwrap();
    store.insert_client(&spa).await.unwrap();
    let (grace, idle, t0) = (Duration::seconds(10), Duration::days(14), now());
    let rotate = |presented: Secret, by: Option<Uuid>, at: OffsetDateTime| {
        let store = store.clone();
        async move {
            let new = Secret::generate(SecretKind::Refresh).unwrap();
            let outcome = store
                .rotate_refresh(&presented.hash(), &new.hash(), by, at, grace, idle)
                .await
                .unwrap();
            (outcome, new)
        }
    };
    let unspent = |session: Session, refresh: Secret| {
        let store = store.clone();
        async move {
            let (stored, current) = store
                .session_by_refresh(&refresh.hash())
                .await
                .unwrap()
                .unwrap();
            assert!(current, "the refused exchange spent the token");
            assert_eq!(stored, session, "the refused exchange changed the session");
        }
    };
    let holder = |c: &OAuthClient| {
        Some(Holder {
            client_id: c.id,
            scope: "openid profile".into(),
            public: c.public,
        })
    };

    // A confidential client's token.
    let (session, first) = held_session(&store, alice.id, Some(&photos)).await;
    for (by, wrong) in [
        (None, WrongClient::Unauthenticated),
        (Some(spa.id), WrongClient::Other),
        (Some(Uuid::new_v4()), WrongClient::Other),
    ] {
        let (outcome, _) = rotate(first.clone(), by, t0).await;
        assert_eq!(outcome, Rotation::WrongClient(wrong));
        unspent(session.clone(), first.clone()).await;
    }
    let (outcome, second) = rotate(first.clone(), Some(photos.id), t0).await;
    match outcome {
        Rotation::Rotated(s, Presented::Current, h) => {
            assert_eq!(s.id, session.id);
            assert_eq!(h, holder(&photos));
        }
        other => panic!("{other:?}"),
    }
    // The replaced token past the grace window, presented by a stranger:
    // refused as a stranger's, and the session lives on.
    let late = t0 + Duration::seconds(11);
    let (outcome, _) = rotate(first.clone(), Some(spa.id), late).await;
    assert_eq!(outcome, Rotation::WrongClient(WrongClient::Other));
    let (outcome, _) = rotate(first.clone(), None, late).await;
    assert_eq!(outcome, Rotation::WrongClient(WrongClient::Unauthenticated));
    let (stored, current) = store
        .session_by_refresh(&second.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(current);
    assert_eq!(stored.id, session.id);
    // By its own client it is reuse, as ever.
    match rotate(first, Some(photos.id), late).await.0 {
        Rotation::Reused(s) => assert_eq!(s.id, session.id),
        other => panic!("{other:?}"),
    }
    assert!(store.session_by_id(&session.id).await.unwrap().is_none());

    // A public client's token: by that client, named or not.
    let (session, first) = held_session(&store, alice.id, Some(&spa)).await;
    let (outcome, _) = rotate(first.clone(), Some(photos.id), t0).await;
    assert_eq!(outcome, Rotation::WrongClient(WrongClient::Other));
    unspent(session.clone(), first.clone()).await;
    let (outcome, second) = rotate(first, None, t0).await;
    assert!(
        matches!(&outcome, Rotation::Rotated(_, Presented::Current, h) if *h == holder(&spa)),
        "{outcome:?}"
    );
    let (outcome, _) = rotate(second, Some(spa.id), t0).await;
    assert!(
        matches!(&outcome, Rotation::Rotated(_, Presented::Current, h) if *h == holder(&spa)),
        "{outcome:?}"
    );

    // A password-grant token: by no client.
    let (session, first) = held_session(&store, alice.id, None).await;
    for by in [spa.id, photos.id] {
        let (outcome, _) = rotate(first.clone(), Some(by), t0).await;
        assert_eq!(outcome, Rotation::WrongClient(WrongClient::Other));
        unspent(session.clone(), first.clone()).await;
    }
    let (outcome, _) = rotate(first, None, t0).await;
    assert!(
        matches!(outcome, Rotation::Rotated(_, Presented::Current, None)),
        "{outcome:?}"
    );

    // The client is checked first: a stranger learns nothing of expiry.
    let (session, first) = held_session(&store, alice.id, Some(&photos)).await;
    let after_expiry = session.idle_expires_at + Duration::seconds(1);
    let (outcome, _) = rotate(first.clone(), Some(spa.id), after_expiry).await;
    assert_eq!(outcome, Rotation::WrongClient(WrongClient::Other));
    let (outcome, _) = rotate(first, Some(photos.id), after_expiry).await;
    assert_eq!(outcome, Rotation::Expired);
    // An unknown token is unknown to anyone.
    let unknown = Secret::generate(SecretKind::Refresh).unwrap();
    assert_eq!(rotate(unknown, Some(spa.id), t0).await.0, Rotation::Unknown);
}

/// Exchanges of every outcome at once, on different sessions (a store may
/// run concurrent exchanges in one transaction, each after the other):
/// each gets the answer it would get alone, and the store is left as they
/// would leave it one by one.
pub async fn concurrent_exchanges_of_every_kind_each_get_their_own_answer(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let photos = client("Photos");
    store.insert_client(&photos).await.unwrap();
    let (grace, idle, t0) = (Duration::seconds(10), Duration::days(14), now());
    let late = t0 + Duration::seconds(11);
    for round in 0..4 {
        // Sessions rotated a first time at t0, so each has a replaced token.
        let mut sessions = Vec::new();
        for holder in [None, Some(&photos), None, None] {
            let (session, first) = held_session(&store, alice.id, holder).await;
            let second = Secret::generate(SecretKind::Refresh).unwrap();
            let by = holder.map(|c| c.id);
            let outcome = store
                .rotate_refresh(&first.hash(), &second.hash(), by, t0, grace, idle)
                .await
                .unwrap();
            assert!(matches!(outcome, Rotation::Rotated(..)), "{outcome:?}");
            sessions.push((session, first, second));
        }
        let unknown = Secret::generate(SecretKind::Refresh).unwrap();
        // (presented, by, what it must answer); in a different order each round.
        let mut cases = vec![
            (sessions[0].2.clone(), None, "rotated"),
            (sessions[1].2.clone(), None, "wrong client"),
            (sessions[2].1.clone(), None, "reused"),
            (unknown, None, "unknown"),
            (sessions[3].2.clone(), None, "rotated"),
            (sessions[1].2.clone(), Some(photos.id), "rotated"),
        ];
        cases.rotate_left(round);
        let attempts = cases.into_iter().map(|(presented, by, expected)| {
            let store = store.clone();
            tokio::spawn(async move {
                let new = Secret::generate(SecretKind::Refresh).unwrap();
                let outcome = store
                    .rotate_refresh(&presented.hash(), &new.hash(), by, late, grace, idle)
                    .await
                    .unwrap();
                (outcome, new, expected)
            })
        });
        for result in futures::future::join_all(attempts).await {
            let (outcome, new, expected) = result.unwrap();
            let current = || async {
                store
                    .session_by_refresh(&new.hash())
                    .await
                    .unwrap()
                    .is_some_and(|(_, current)| current)
            };
            match expected {
                "rotated" => {
                    assert!(matches!(outcome, Rotation::Rotated(..)), "{outcome:?}");
                    assert!(current().await);
                }
                "wrong client" => {
                    assert_eq!(outcome, Rotation::WrongClient(WrongClient::Unauthenticated))
                }
                "reused" => assert!(matches!(outcome, Rotation::Reused(_)), "{outcome:?}"),
                _ => assert_eq!(outcome, Rotation::Unknown),
            }
            if expected != "rotated" {
                assert!(!current().await, "{expected}: the new token was stored");
            }
        }
        assert!(
            store
                .session_by_id(&sessions[2].0.id)
                .await
                .unwrap()
                .is_none(),
            "the reused session is gone"
        );
        for i in [0, 1, 3] {
            assert!(
                store
                    .session_by_id(&sessions[i].0.id)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    }
}

/// A new key of `algorithm`, sealed (under a throwaway key-encryption key) as
/// the store keeps it.
pub fn stored_key(algorithm: Algorithm, t: OffsetDateTime) -> StoredKey {
    let kek = KeyEncryptionKey::generate().unwrap();
    key_wrap::seal(&kek, &SigningKey::generate(algorithm, t).unwrap()).unwrap()
}

/// Concurrent first starts create one key; rotation retires the old one.
pub async fn keys_are_created_once_and_rotated(store: Arc<dyn Store>) {
    let t = now();
    let starts = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let candidate = stored_key(Algorithm::EdDSA, t);
            store.ensure_current_key(&candidate).await.unwrap();
        })
    });
    for start in futures::future::join_all(starts).await {
        start.unwrap();
    }
    let keys = store.keys().await.unwrap();
    assert_eq!(keys.len(), 1, "one key however many nodes start at once");
    let first = keys[0].clone();
    assert!(first.retired_at.is_none());
    let new = stored_key(Algorithm::ES256, t);
    let until = t + Duration::minutes(11);
    store.rotate_key(&new, t, until).await.unwrap();
    let keys = store.keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    let old = keys.iter().find(|k| k.kid == first.kid).unwrap();
    assert_eq!(old.retired_at, Some(t));
    assert_eq!(old.expires_at, Some(until));
    assert_eq!(old.sealed, first.sealed);
    let current = keys.iter().find(|k| k.kid == new.kid).unwrap();
    assert!(current.retired_at.is_none());
    assert_eq!(current.algorithm, Algorithm::ES256);
    assert_eq!(store.delete_expired_keys(until).await.unwrap(), 1);
    assert_eq!(store.keys().await.unwrap().len(), 1);
}

/// Access and ID-token keys are current side by side: making or rotating
/// one purpose's key leaves the other's alone.
pub async fn key_purposes_have_a_current_key_each(store: Arc<dyn Store>) {
    let t = now();
    let access = stored_key(Algorithm::EdDSA, t);
    store.ensure_current_key(&access).await.unwrap();
    let kek = KeyEncryptionKey::generate().unwrap();
    let id_key = |at| {
        key_wrap::seal(
            &kek,
            &SigningKey::generate(Algorithm::RS256, at)
                .unwrap()
                .for_id_tokens(),
        )
        .unwrap()
    };
    let first_id = id_key(t);
    store.ensure_current_key(&first_id).await.unwrap();
    // A second candidate of either purpose changes nothing.
    store.ensure_current_key(&id_key(t)).await.unwrap();
    store
        .ensure_current_key(&stored_key(Algorithm::EdDSA, t))
        .await
        .unwrap();
    let keys = store.keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    let read = keys.iter().find(|k| k.kid == first_id.kid).unwrap();
    assert_eq!(read.purpose, KeyPurpose::IdToken);
    assert_eq!(read.algorithm, Algorithm::RS256);
    assert!(read.retired_at.is_none());

    let until = t + Duration::minutes(11);
    let second_id = id_key(t);
    store.rotate_key(&second_id, t, until).await.unwrap();
    let keys = store.keys().await.unwrap();
    let current: Vec<(&str, KeyPurpose)> = keys
        .iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| (k.kid.as_str(), k.purpose))
        .collect();
    assert_eq!(current.len(), 2, "{current:?}");
    assert!(current.contains(&(access.kid.as_str(), KeyPurpose::Access)));
    assert!(current.contains(&(second_id.kid.as_str(), KeyPurpose::IdToken)));
    let old = keys.iter().find(|k| k.kid == first_id.kid).unwrap();
    assert_eq!(old.expires_at, Some(until));
}

/// Replacing a key's sealed material is a compare-and-swap: of racing
/// replacements exactly one wins, a stale one changes nothing, and no
/// other key is touched.
pub async fn sealed_key_material_is_replaced_once(store: Arc<dyn Store>) {
    let t = now();
    let first = stored_key(Algorithm::EdDSA, t);
    store.ensure_current_key(&first).await.unwrap();
    let second = stored_key(Algorithm::EdDSA, t);
    store
        .rotate_key(&second, t, t + Duration::minutes(11))
        .await
        .unwrap();
    let racers = (0..16u8).map(|i| {
        let store = store.clone();
        let old = first.sealed.clone();
        let kid = first.kid.clone();
        tokio::spawn(async move {
            let new = vec![i; 64];
            let won = store.replace_sealed_key(&kid, &old, &new).await.unwrap();
            (won, new)
        })
    });
    let outcomes: Vec<(bool, Vec<u8>)> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<&Vec<u8>> = outcomes
        .iter()
        .filter(|(won, _)| *won)
        .map(|(_, new)| new)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one replacement wins");
    let sealed_of =
        |keys: &[StoredKey], kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().sealed.clone();
    let keys = store.keys().await.unwrap();
    assert_eq!(&sealed_of(&keys, &first.kid), winners[0]);
    assert_eq!(
        sealed_of(&keys, &second.kid),
        second.sealed,
        "other keys untouched"
    );

    // The old bytes are gone: replacing from them again changes nothing.
    assert!(
        !store
            .replace_sealed_key(&first.kid, &first.sealed, &[9; 64])
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_sealed_key("no-such-kid", &first.sealed, &[9; 64])
            .await
            .unwrap()
    );
    let keys = store.keys().await.unwrap();
    assert_eq!(&sealed_of(&keys, &first.kid), winners[0]);
    let retired = keys.iter().find(|k| k.kid == first.kid).unwrap();
    assert_eq!(retired.retired_at, Some(t), "only the material changes");
}

/// Revocations come back after a cursor, in order, without expired ones.
pub async fn revocations_are_read_in_order_after_a_cursor(store: Arc<dyn Store>) {
    let t = now();
    let later = t + Duration::minutes(10);
    let stored = store
        .insert_revocations(&[
            (RevocationKind::Sid, "s1".into(), later),
            (RevocationKind::Jti, "j1".into(), t - Duration::seconds(1)),
            (RevocationKind::Sid, "s2".into(), later),
        ])
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    assert!(stored[0].seq < stored[1].seq && stored[1].seq < stored[2].seq);
    let all = store.revocations_since(0, t, 100).await.unwrap();
    let values: Vec<_> = all.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values, ["s1", "s2"], "expired entries are not served");
    let after = store
        .revocations_since(stored[0].seq, t, 100)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].kind, RevocationKind::Sid);
    assert_eq!(store.revocations_since(0, t, 1).await.unwrap().len(), 1);
    assert_eq!(store.delete_expired_revocations(t).await.unwrap(), 1);
}

/// An attempt for the counter cases: limit 3, the account slowed by 300 ms
/// then 600 ms at most.
fn attempt<'a>(ip: Option<&'a str>, account: &'a str) -> Attempt<'a> {
    Attempt {
        ip,
        account,
        limit: 3,
        window: Duration::seconds(30),
        first_wait: Duration::milliseconds(300),
        max_wait: Duration::milliseconds(600),
    }
}

fn granted(ip: u64, account: u64) -> Admission {
    Admission::Granted { ip, account }
}

/// When a refused admission may be retried; panics if it was granted.
fn retry_at(admission: Admission) -> OffsetDateTime {
    match admission {
        Admission::Refused { retry_at } => retry_at,
        Admission::Granted { .. } => panic!("admitted: {admission:?}"),
    }
}

/// Fixed-window counts (the plain counter of strikes and registrations).
/// Uses real time (a Redis-backed store keeps its own clock), hence one
/// short sleep, during which blocks and windows of reservations end too.
pub async fn counters_count_in_windows_and_block(store: Arc<dyn Store>) {
    let window = Duration::milliseconds(1200);
    let t = now();
    assert_eq!(store.hit("fail:a", window, t).await.unwrap().0, 1);
    assert_eq!(store.hit("fail:a", window, t).await.unwrap().0, 2);
    let (n, until) = store.hit("fail:a", window, t).await.unwrap();
    assert_eq!(n, 3);
    assert!(
        until > t && until <= t + window + Duration::seconds(1),
        "{until} vs {t}"
    );
    assert_eq!(
        store.hit("fail:b", window, t).await.unwrap().0,
        1,
        "keys are separate"
    );
    let concurrent = (0..10).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .hit("fail:c", Duration::seconds(30), now())
                .await
                .unwrap()
                .0
        })
    });
    let mut counts: Vec<u64> = futures::future::join_all(concurrent)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=10).collect::<Vec<u64>>(),
        "every concurrent hit counts once"
    );

    // A block refuses, outlives a shorter one, and forgets the count.
    let short = Attempt {
        window,
        ..attempt(Some("ip:blk"), "acct:blk")
    };
    assert_eq!(store.reserve(&short, now()).await.unwrap(), granted(1, 1));
    assert_eq!(store.reserve(&short, now()).await.unwrap(), granted(2, 2));
    store.block("ip:blk", now() + window, now()).await.unwrap();
    store
        .block("ip:blk", now() + Duration::milliseconds(100), now())
        .await
        .unwrap();
    let other = attempt(Some("ip:blk"), "acct:other");
    let until = retry_at(store.reserve(&other, now()).await.unwrap());
    assert!(
        until > now() + Duration::milliseconds(800),
        "a shorter block does not shorten a longer one: {until}"
    );
    // A block outlives its key's window: the sweep keeps it.
    let swept = Attempt {
        window: Duration::milliseconds(100),
        ..attempt(Some("ip:swept"), "acct:swept")
    };
    store.reserve(&swept, now()).await.unwrap();
    store
        .block("ip:swept", now() + Duration::seconds(60), now())
        .await
        .unwrap();

    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(
        store.hit("fail:a", window, now()).await.unwrap().0,
        1,
        "a new window starts at one"
    );
    store.delete_expired_counters(now()).await.unwrap();
    assert_eq!(
        store
            .hit("fail:c", Duration::seconds(30), now())
            .await
            .unwrap()
            .0,
        11,
        "live counters stay"
    );
    assert_eq!(
        store.reserve(&short, now()).await.unwrap(),
        granted(1, 1),
        "the block is over, the address's count was forgotten, the account's window is over"
    );
    assert!(
        retry_at(store.reserve(&swept, now()).await.unwrap()) > now() + Duration::seconds(50),
        "the sweep keeps a counter whose block runs"
    );
}

/// The rules of `tessera_core::attempt`: attempts count while in flight, a
/// full address is refused, an account at the limit waits, refusals count
/// nothing, releases give slots back.
pub async fn reservations_count_attempts_in_flight(store: Arc<dyn Store>) {
    let a = |ip| attempt(Some(ip), "acct:a");
    for n in 1..=3 {
        assert_eq!(
            store.reserve(&a("ip:1"), now()).await.unwrap(),
            granted(n, n)
        );
    }
    // The address's attempts are all in flight: come back shortly.
    let t = now();
    let until = retry_at(
        store
            .reserve(&attempt(Some("ip:1"), "acct:b"), t)
            .await
            .unwrap(),
    );
    assert!(
        until > t && until <= t + Duration::seconds(2),
        "{until} vs {t}"
    );
    // The account reached the limit: from any address, its next attempt waits.
    let t = now();
    let until = retry_at(store.reserve(&a("ip:2"), t).await.unwrap());
    assert!(
        until > t && until <= t + Duration::milliseconds(400),
        "{until} vs {t}"
    );
    // The refusals counted nothing.
    assert_eq!(
        store
            .reserve(&attempt(Some("ip:2"), "acct:b"), now())
            .await
            .unwrap(),
        granted(1, 1)
    );
    // A success gives the address one slot back and clears the account.
    store.release(&a("ip:1"), true, now()).await.unwrap();
    assert_eq!(
        store.reserve(&a("ip:1"), now()).await.unwrap(),
        granted(3, 1)
    );
    // An attempt never checked gives one slot back on each key.
    store.release(&a("ip:1"), false, now()).await.unwrap();
    assert_eq!(
        store.reserve(&a("ip:3"), now()).await.unwrap(),
        granted(1, 1)
    );
    assert_eq!(
        store.reserve(&a("ip:1"), now()).await.unwrap(),
        granted(3, 2)
    );
    // Without an address, the account alone counts.
    assert_eq!(
        store
            .reserve(&attempt(None, "acct:c"), now())
            .await
            .unwrap(),
        granted(0, 1)
    );
    store
        .release(&attempt(None, "acct:c"), true, now())
        .await
        .unwrap();

    // Past the limit an account is slowed, never refused for good: each
    // admitted attempt doubles the wait, up to its cap.
    let slow = |ip| attempt(Some(ip), "acct:slow");
    for (i, ip) in ["ip:s1", "ip:s2", "ip:s3"].into_iter().enumerate() {
        let n = u64::try_from(i).unwrap() + 1;
        assert_eq!(
            store.reserve(&slow(ip), now()).await.unwrap(),
            granted(1, n)
        );
    }
    let mut waits = Vec::new();
    for ip in ["ip:s4", "ip:s5", "ip:s6"] {
        let t = now();
        let until = retry_at(store.reserve(&slow(ip), t).await.unwrap());
        waits.push(until - t);
        tokio::time::sleep((until - now()).max(Duration::ZERO).unsigned_abs()).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let admitted = store.reserve(&slow(ip), now()).await.unwrap();
        assert!(
            matches!(admitted, Admission::Granted { ip: 1, .. }),
            "{admitted:?}"
        );
    }
    assert!(waits[0] <= Duration::milliseconds(300), "{waits:?}");
    assert!(waits[1] > Duration::milliseconds(300), "{waits:?}");
    assert!(
        waits.iter().all(|w| *w <= Duration::milliseconds(600)),
        "{waits:?}"
    );
}

/// Many attempts at once against a limit: exactly the limit is admitted,
/// whether they share the address or only the account.
pub async fn concurrent_reservations_grant_exactly_the_limit(store: Arc<dyn Store>) {
    async fn race(store: &Arc<dyn Store>, ips: impl Fn(usize) -> String) -> Vec<Admission> {
        let racing = (0..40).map(|i| {
            let store = store.clone();
            let ip = ips(i);
            tokio::spawn(async move {
                let attempt = Attempt {
                    limit: 10,
                    first_wait: Duration::minutes(1),
                    max_wait: Duration::minutes(1),
                    ..attempt(Some(&ip), "acct:raced")
                };
                store.reserve(&attempt, now()).await.unwrap()
            })
        });
        futures::future::join_all(racing)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect()
    }
    let answers = race(&store, |_| "ip:raced".to_owned()).await;
    let mut counts: Vec<u64> = answers
        .iter()
        .filter_map(|a| match a {
            Admission::Granted { ip, .. } => Some(*ip),
            Admission::Refused { .. } => None,
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=10).collect::<Vec<u64>>(), "one address");
    // The same account from forty addresses: its count admits ten, the
    // tenth makes the rest wait (the account was cleared first).
    store
        .release(&attempt(Some("ip:raced"), "acct:raced"), true, now())
        .await
        .unwrap();
    let answers = race(&store, |i| format!("ip:many{i}")).await;
    let mut counts: Vec<u64> = answers
        .iter()
        .filter_map(|a| match a {
            Admission::Granted { account, .. } => Some(*account),
            Admission::Refused { .. } => None,
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=10).collect::<Vec<u64>>(), "one account");
}

/// A new confidential client with two redirect URIs.
pub fn client(name: &str) -> OAuthClient {
    OAuthClient {
        id: Uuid::new_v4(),
        name: name.into(),
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "com.example.app:/cb".into(),
        ],
        post_logout_redirect_uris: vec!["https://app.example/bye".into()],
        public: false,
        secret_hash: Some(Secret::generate(SecretKind::ClientSecret).unwrap().hash()),
        skip_consent: false,
        id_token_alg: Some(Algorithm::ES256),
        created_at: now(),
    }
}

/// A code for `client_id` and `user_id`, and its secret.
pub fn code(client_id: Uuid, user_id: Uuid) -> (AuthorizationCode, Secret) {
    let secret = Secret::generate(SecretKind::AuthorizationCode).unwrap();
    let t = now();
    let code = AuthorizationCode {
        code_hash: secret.hash(),
        client_id,
        user_id,
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: "openid profile".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: t - Duration::minutes(3),
        amr: AuthMethods::PASSWORD.with(AuthMethod::OneTimeCode),
        created_at: t,
        expires_at: t + Duration::seconds(60),
    };
    (code, secret)
}

/// Clients read back as registered; public clients have no secret.
pub async fn clients_round_trip(store: Arc<dyn Store>) {
    let confidential = client("Photos");
    let public = OAuthClient {
        public: true,
        secret_hash: None,
        skip_consent: true,
        id_token_alg: None,
        created_at: confidential.created_at + Duration::seconds(1),
        ..client("SPA")
    };
    store.insert_client(&confidential).await.unwrap();
    store.insert_client(&public).await.unwrap();
    assert_eq!(
        store.client_by_id(confidential.id).await.unwrap(),
        Some(confidential.clone())
    );
    assert_eq!(
        store.client_by_id(public.id).await.unwrap(),
        Some(public.clone())
    );
    assert_eq!(store.client_by_id(Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(
        store.list_clients().await.unwrap(),
        vec![confidential.clone(), public]
    );
    assert!(matches!(
        store.insert_client(&confidential).await,
        Err(StoreError::Duplicate)
    ));
}

/// Deleting a client removes it, its consents and codes, and hands back
/// the sessions it held; the sessions of other clients are untouched.
pub async fn deleting_a_client_hands_back_its_sessions(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let (photos, other) = (client("Photos"), client("Other"));
    store.insert_client(&photos).await.unwrap();
    store.insert_client(&other).await.unwrap();
    let (held, _) = token_session(alice.id);
    let (kept, _) = token_session(alice.id);
    for (s, c) in [(&held, &photos), (&kept, &other)] {
        store
            .insert_token_session(s, &sign_in_event(s), "h")
            .await
            .unwrap();
        store
            .link_client_session(&s.id, c.id, "openid")
            .await
            .unwrap();
    }
    let sessions = store.client_sessions_of_user(alice.id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions.iter().any(|c| c.session_id == held.id
            && c.client_name == "Photos"
            && c.client_id == photos.id)
    );
    assert_eq!(
        store.session_client(&held.id).await.unwrap(),
        Some((photos.id, "openid".to_owned()))
    );
    let (plain, _) = token_session(alice.id);
    assert_eq!(store.session_client(&plain.id).await.unwrap(), None);
    let (code, secret) = code(photos.id, alice.id);
    store.insert_code(&code).await.unwrap();

    assert_eq!(
        store.delete_client(photos.id).await.unwrap(),
        Some(vec![held.id.clone()])
    );
    assert_eq!(store.delete_client(photos.id).await.unwrap(), None);
    assert_eq!(store.client_by_id(photos.id).await.unwrap(), None);
    assert_eq!(
        store.redeem_code(&secret.hash(), now()).await.unwrap(),
        CodeRedemption::Unknown
    );
    // The session itself is the caller's to end (so it is revoked everywhere).
    assert!(store.session_by_id(&held.id).await.unwrap().is_some());
    // A link goes with its session.
    store.delete_session(&kept.id).await.unwrap();
    assert!(
        store
            .client_sessions_of_user(alice.id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A consent is remembered per user and client, replaced by a new one,
/// and its withdrawal hands back that user's sessions of that client and
/// takes that user's unspent codes for it along.
pub async fn consents_are_per_user_and_client(store: Arc<dyn Store>) {
    let (alice, bob) = (user("alice"), user("bob"));
    store.insert_user(&alice, "h").await.unwrap();
    store.insert_user(&bob, "h").await.unwrap();
    let photos = client("Photos");
    store.insert_client(&photos).await.unwrap();
    let first = Consent {
        user_id: alice.id,
        client_id: photos.id,
        scope: "openid".into(),
        granted_at: now(),
    };
    store.put_consent(&first).await.unwrap();
    let wider = Consent {
        scope: "openid profile".into(),
        granted_at: first.granted_at + Duration::seconds(5),
        ..first.clone()
    };
    store.put_consent(&wider).await.unwrap();
    assert_eq!(
        store.consent(alice.id, photos.id).await.unwrap(),
        Some(wider.clone())
    );
    assert_eq!(store.consent(bob.id, photos.id).await.unwrap(), None);
    assert_eq!(store.list_consents(alice.id).await.unwrap(), vec![wider]);
    assert!(store.list_consents(bob.id).await.unwrap().is_empty());

    let (alices, _) = token_session(alice.id);
    let (bobs, _) = token_session(bob.id);
    for s in [&alices, &bobs] {
        store
            .insert_token_session(s, &sign_in_event(s), "h")
            .await
            .unwrap();
        store
            .link_client_session(&s.id, photos.id, "openid profile")
            .await
            .unwrap();
    }
    // Codes: alice's unspent one goes with her consent; her spent one stays
    // (a second use must still be recognised); bob's is untouched.
    let (unspent, unspent_secret) = code(photos.id, alice.id);
    let (spent, spent_secret) = code(photos.id, alice.id);
    let (bobs_code, bobs_secret) = code(photos.id, bob.id);
    for c in [&unspent, &spent, &bobs_code] {
        store.insert_code(c).await.unwrap();
    }
    assert!(matches!(
        store
            .redeem_code(&spent_secret.hash(), now())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store.delete_consent(alice.id, photos.id).await.unwrap(),
        Some(vec![alices.id.clone()])
    );
    assert_eq!(
        store.delete_consent(alice.id, photos.id).await.unwrap(),
        None
    );
    assert_eq!(store.consent(alice.id, photos.id).await.unwrap(), None);
    assert_eq!(
        store
            .redeem_code(&unspent_secret.hash(), now())
            .await
            .unwrap(),
        CodeRedemption::Unknown
    );
    assert!(matches!(
        store
            .redeem_code(&spent_secret.hash(), now())
            .await
            .unwrap(),
        CodeRedemption::Reused { .. }
    ));
    assert_eq!(
        store.redeem_code(&bobs_secret.hash(), now()).await.unwrap(),
        CodeRedemption::Redeemed(bobs_code)
    );
    // The sessions are the caller's to end (so each is revoked everywhere).
    assert!(store.session_by_id(&alices.id).await.unwrap().is_some());
}

/// A code is redeemed once; a second presentation is marked, and carries
/// the session the first created; a code never stored is unknown.
pub async fn codes_are_redeemed_once_and_reuse_is_marked(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let photos = client("Photos");
    store.insert_client(&photos).await.unwrap();
    let (code, secret) = code(photos.id, alice.id);
    store.insert_code(&code).await.unwrap();
    assert_eq!(
        store.redeem_code(&secret.hash(), now()).await.unwrap(),
        CodeRedemption::Redeemed(code.clone())
    );
    let (session, _) = token_session(alice.id);
    assert!(
        !store
            .set_code_session(&secret.hash(), &session.id)
            .await
            .unwrap()
    );
    assert_eq!(
        store.redeem_code(&secret.hash(), now()).await.unwrap(),
        CodeRedemption::Reused {
            code: code.clone(),
            session: Some(session.id.clone()),
        }
    );
    let unknown = Secret::generate(SecretKind::AuthorizationCode).unwrap();
    assert_eq!(
        store.redeem_code(&unknown.hash(), now()).await.unwrap(),
        CodeRedemption::Unknown
    );

    // A reuse that lands before the first exchange recorded its session is
    // told to the first exchange.
    let (code, secret) = self::code(photos.id, alice.id);
    store.insert_code(&code).await.unwrap();
    assert!(matches!(
        store.redeem_code(&secret.hash(), now()).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert!(matches!(
        store.redeem_code(&secret.hash(), now()).await.unwrap(),
        CodeRedemption::Reused { session: None, .. }
    ));
    assert!(
        store
            .set_code_session(&secret.hash(), &session.id)
            .await
            .unwrap()
    );
}

/// Of 16 concurrent redemptions of one code, exactly one wins.
pub async fn concurrent_code_redemptions_have_one_winner(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let photos = client("Photos");
    store.insert_client(&photos).await.unwrap();
    let (code, secret) = code(photos.id, alice.id);
    store.insert_code(&code).await.unwrap();
    let attempts = (0..16).map(|_| {
        let store = store.clone();
        let hash = secret.hash();
        tokio::spawn(async move { store.redeem_code(&hash, now()).await.unwrap() })
    });
    let results = futures::future::join_all(attempts).await;
    let winners = results
        .into_iter()
        .filter(|r| matches!(r.as_ref().unwrap(), CodeRedemption::Redeemed(_)))
        .count();
    assert_eq!(winners, 1);
}

/// Codes expired before the cut-off are swept; later ones stay.
pub async fn expired_codes_are_swept(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let photos = client("Photos");
    store.insert_client(&photos).await.unwrap();
    let (old, old_secret) = code(photos.id, alice.id);
    let (fresh, fresh_secret) = code(photos.id, alice.id);
    let fresh = AuthorizationCode {
        expires_at: old.expires_at + Duration::hours(1),
        ..fresh
    };
    store.insert_code(&old).await.unwrap();
    store.insert_code(&fresh).await.unwrap();
    let swept = store
        .delete_expired_codes(old.expires_at + Duration::milliseconds(1))
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert_eq!(
        store.redeem_code(&old_secret.hash(), now()).await.unwrap(),
        CodeRedemption::Unknown
    );
    assert!(matches!(
        store
            .redeem_code(&fresh_secret.hash(), now())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
}
