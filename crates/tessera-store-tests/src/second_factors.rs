//! Conformance of [`tessera_core::store::SecondFactors`]: TOTP factors,
//! recovery codes and sign-in challenges, and that whatever may be used
//! once is, under concurrency too.

use std::sync::Arc;

use tessera_core::audit::{AuditEvent, AuditKind};
use tessera_core::auth_methods::AuthMethods;
use tessera_core::client::ClientInfo;
use tessera_core::mfa::{MfaChallenge, MfaNext, MfaStatus};
use tessera_core::secret::{Secret, SecretHash, SecretKind, sha256};
use tessera_core::store::Store;
use time::Duration;
use uuid::Uuid;

use crate::{now, user};

fn hashes(n: u8) -> Vec<SecretHash> {
    (0..n)
        .map(|i| SecretHash::from_bytes(sha256(&[i, 7])))
        .collect()
}

fn enabled_event(user_id: Uuid) -> AuditEvent {
    AuditEvent::new(
        AuditKind::TotpEnabled,
        Some(user_id),
        &ClientInfo::new(None, None),
        now(),
        serde_json::json!({}),
    )
}

/// A pending factor is replaced by a new enrolment, enabled only with its
/// own secret, never replaced once enabled; disabling removes it and its
/// recovery codes.
pub async fn totp_enrolment_is_pending_until_enabled(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    assert_eq!(
        store.mfa_status(alice.id).await.unwrap(),
        MfaStatus::default()
    );
    assert!(store.totp_factor(alice.id).await.unwrap().is_none());
    let t = now();
    assert!(store.put_pending_totp(alice.id, b"first", t).await.unwrap());
    assert!(
        store
            .put_pending_totp(alice.id, b"second", t)
            .await
            .unwrap()
    );
    let pending = store.totp_factor(alice.id).await.unwrap().unwrap();
    assert_eq!(pending.sealed_secret, b"second");
    assert_eq!(pending.enabled_at, None);
    assert_eq!(pending.last_step, 0);
    assert!(!store.mfa_status(alice.id).await.unwrap().required());
    // Only a pending factor with the confirmed secret is enabled.
    let event = enabled_event(alice.id);
    assert!(
        !store
            .enable_totp(alice.id, b"first", 10, &hashes(10), &event, t)
            .await
            .unwrap()
    );
    assert!(
        store
            .enable_totp(alice.id, b"second", 10, &hashes(10), &event, t)
            .await
            .unwrap()
    );
    assert!(
        !store
            .enable_totp(alice.id, b"second", 11, &hashes(10), &event, t)
            .await
            .unwrap()
    );
    let audit = store.list_audit(None, 10).await.unwrap();
    assert_eq!(audit[0].event.kind, AuditKind::TotpEnabled.as_str());
    let enabled = store.totp_factor(alice.id).await.unwrap().unwrap();
    assert_eq!(enabled.enabled_at, Some(t));
    assert_eq!(enabled.last_step, 10);
    assert_eq!(
        store.mfa_status(alice.id).await.unwrap(),
        MfaStatus {
            totp: true,
            recovery_codes: 10,
            passkeys: 0,
        }
    );
    // Many users at once: only those who exist, each with their own.
    let bob = user("bob");
    store.insert_user(&bob, "h").await.unwrap();
    let mut statuses = store
        .mfa_statuses(&[bob.id, alice.id, Uuid::new_v4()])
        .await
        .unwrap();
    statuses.sort_by_key(|(id, _)| *id != alice.id);
    assert_eq!(
        statuses,
        vec![
            (
                alice.id,
                MfaStatus {
                    totp: true,
                    recovery_codes: 10,
                    passkeys: 0,
                }
            ),
            (bob.id, MfaStatus::default()),
        ]
    );
    assert!(store.mfa_statuses(&[]).await.unwrap().is_empty());
    // Enrolling again while enabled changes nothing.
    assert!(!store.put_pending_totp(alice.id, b"third", t).await.unwrap());
    assert_eq!(
        store
            .totp_factor(alice.id)
            .await
            .unwrap()
            .unwrap()
            .sealed_secret,
        b"second"
    );
    // Re-wrapping swaps the sealed secret only while it is the one read.
    assert_eq!(
        store.sealed_totp_secrets().await.unwrap(),
        vec![(alice.id, b"second".to_vec())]
    );
    assert!(
        !store
            .replace_totp_secret(alice.id, b"first", b"rewrapped")
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_totp_secret(alice.id, b"second", b"rewrapped")
            .await
            .unwrap()
    );
    let factor = store.totp_factor(alice.id).await.unwrap().unwrap();
    assert_eq!(factor.sealed_secret, b"rewrapped");
    assert_eq!(factor.last_step, 10, "nothing else changes");
    // Another user sees none of it.
    assert_eq!(
        store.mfa_status(bob.id).await.unwrap(),
        MfaStatus::default()
    );
    assert!(!store.delete_totp(bob.id).await.unwrap());
    assert!(store.delete_totp(alice.id).await.unwrap());
    assert_eq!(
        store.mfa_status(alice.id).await.unwrap(),
        MfaStatus::default()
    );
    assert!(
        !store
            .use_recovery_code(alice.id, &hashes(1)[0])
            .await
            .unwrap()
    );
}

/// A step is spent once, only after the last one spent, and only on an
/// enabled factor; of concurrent uses of one step exactly one succeeds.
pub async fn totp_steps_are_spent_once_in_order(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let t = now();
    store.put_pending_totp(alice.id, b"s", t).await.unwrap();
    assert!(
        !store.use_totp_step(alice.id, 100).await.unwrap(),
        "pending"
    );
    store
        .enable_totp(
            alice.id,
            b"s",
            100,
            &hashes(10),
            &enabled_event(alice.id),
            t,
        )
        .await
        .unwrap();
    assert!(!store.use_totp_step(alice.id, 100).await.unwrap(), "replay");
    assert!(!store.use_totp_step(alice.id, 99).await.unwrap(), "older");
    assert!(store.use_totp_step(alice.id, 101).await.unwrap());
    assert!(!store.use_totp_step(alice.id, 101).await.unwrap());
    let mut racers = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store.use_totp_step(alice.id, 102).await
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(
        store
            .totp_factor(alice.id)
            .await
            .unwrap()
            .unwrap()
            .last_step,
        102
    );
}

/// A recovery code is spent once (once under concurrency too), only by its
/// user; a new set replaces every unused one, and only while enabled.
pub async fn recovery_codes_are_spent_once(store: Arc<dyn Store>) {
    let alice = user("alice");
    let bob = user("bob");
    store.insert_user(&alice, "h").await.unwrap();
    store.insert_user(&bob, "h").await.unwrap();
    let codes = hashes(10);
    assert!(
        !store
            .replace_recovery_codes(alice.id, &codes)
            .await
            .unwrap()
    );
    let t = now();
    store.put_pending_totp(alice.id, b"s", t).await.unwrap();
    store
        .enable_totp(alice.id, b"s", 1, &codes, &enabled_event(alice.id), t)
        .await
        .unwrap();
    assert!(!store.use_recovery_code(bob.id, &codes[0]).await.unwrap());
    assert!(store.use_recovery_code(alice.id, &codes[0]).await.unwrap());
    assert!(!store.use_recovery_code(alice.id, &codes[0]).await.unwrap());
    assert_eq!(store.mfa_status(alice.id).await.unwrap().recovery_codes, 9);
    let mut racers = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        let code = codes[1];
        racers.push(tokio::spawn(async move {
            store.use_recovery_code(alice.id, &code).await
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
    let fresh: Vec<SecretHash> = (0..10u8)
        .map(|i| SecretHash::from_bytes(sha256(&[i, 9])))
        .collect();
    assert!(
        store
            .replace_recovery_codes(alice.id, &fresh)
            .await
            .unwrap()
    );
    assert_eq!(store.mfa_status(alice.id).await.unwrap().recovery_codes, 10);
    assert!(!store.use_recovery_code(alice.id, &codes[2]).await.unwrap());
    assert!(store.use_recovery_code(alice.id, &fresh[2]).await.unwrap());
}

/// Challenges read back as stored, are spent once, and are swept after
/// they expire.
pub async fn mfa_challenges_round_trip_and_are_spent_once(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let t = now();
    let make = |next: MfaNext, expires: Duration, ip: Option<&str>| MfaChallenge {
        token_hash: Secret::generate(SecretKind::MfaToken).unwrap().hash(),
        user_id: alice.id,
        ip: ip.map(|ip| ip.parse().unwrap()),
        amr: AuthMethods::PASSWORD,
        next,
        password_fingerprint: SecretHash::from_bytes(sha256(b"h")),
        created_at: t,
        expires_at: t + expires,
    };
    let cookie = make(
        MfaNext::Cookie { remember_me: true },
        Duration::minutes(5),
        Some("2001:db8::1"),
    );
    let token = make(MfaNext::Token, Duration::seconds(1), Some("192.0.2.7"));
    let nowhere = make(
        MfaNext::Cookie { remember_me: false },
        Duration::minutes(5),
        None,
    );
    for c in [&cookie, &token, &nowhere] {
        store.insert_mfa_challenge(c).await.unwrap();
        assert_eq!(
            store.mfa_challenge(&c.token_hash).await.unwrap().as_ref(),
            Some(c)
        );
    }
    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let hash = cookie.token_hash;
        racers.push(tokio::spawn(async move {
            store.delete_mfa_challenge(&hash).await
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
    assert!(
        store
            .mfa_challenge(&cookie.token_hash)
            .await
            .unwrap()
            .is_none()
    );
    let swept = store
        .delete_expired_mfa_challenges(t + Duration::seconds(2))
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert!(
        store
            .mfa_challenge(&token.token_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .mfa_challenge(&nowhere.token_hash)
            .await
            .unwrap()
            .is_some()
    );
}
