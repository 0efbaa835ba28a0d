//! Conformance cases for passkeys and WebAuthn ceremony state.

use std::sync::Arc;

use tessera_core::passkey::{Ceremony, CeremonyKind, PasskeyRecord};
use tessera_core::store::{Store, StoreError};
use time::Duration;
use uuid::Uuid;

use crate::{now, user};

/// A new passkey of `user_id` named `name` with credential id `cred`.
pub fn passkey(user_id: Uuid, name: &str, cred: &[u8]) -> PasskeyRecord {
    PasskeyRecord {
        id: Uuid::new_v4(),
        user_id,
        credential_id: cred.to_vec(),
        name: name.into(),
        credential: format!("{{\"cred\":\"{name}\"}}"),
        created_at: now(),
        last_used_at: None,
    }
}

/// A ceremony of `kind` for `user_id`, expiring in five minutes.
pub fn ceremony(kind: CeremonyKind, user_id: Option<Uuid>) -> Ceremony {
    Ceremony {
        id: Uuid::new_v4(),
        kind,
        user_id,
        state: format!("{{\"challenge\":\"{}\"}}", Uuid::new_v4()),
        expires_at: now() + Duration::minutes(5),
    }
}

/// Passkeys read back as written, per user and oldest first, found by
/// credential id whoever owns them; renamed, used and removed only by
/// their own user.
pub async fn passkeys_round_trip(store: Arc<dyn Store>) {
    let alice = user("alice");
    let bob = user("bob");
    store.insert_user(&alice, "h").await.unwrap();
    store.insert_user(&bob, "h").await.unwrap();
    let laptop = passkey(alice.id, "Laptop", b"cred-laptop");
    let phone = PasskeyRecord {
        created_at: laptop.created_at + Duration::seconds(1),
        ..passkey(alice.id, "Phone", b"cred-phone")
    };
    let bobs = passkey(bob.id, "Key", b"cred-bob");
    store.insert_passkey(&phone).await.unwrap();
    store.insert_passkey(&laptop).await.unwrap();
    store.insert_passkey(&bobs).await.unwrap();

    assert_eq!(
        store.user_passkeys(alice.id).await.unwrap(),
        vec![laptop.clone(), phone.clone()]
    );
    assert_eq!(
        store.user_passkeys(bob.id).await.unwrap(),
        vec![bobs.clone()]
    );
    // A passkey is a second factor: the users' status counts them.
    let status = store.mfa_status(alice.id).await.unwrap();
    assert_eq!(status.passkeys, 2);
    assert!(status.required());
    let statuses = store.mfa_statuses(&[alice.id, bob.id]).await.unwrap();
    let of = |id| statuses.iter().find(|(u, _)| *u == id).unwrap().1;
    assert_eq!(of(alice.id).passkeys, 2);
    assert_eq!(of(bob.id).passkeys, 1);
    assert_eq!(
        store.passkey_by_credential_id(b"cred-bob").await.unwrap(),
        Some(bobs.clone())
    );
    assert_eq!(
        store.passkey_by_credential_id(b"cred-").await.unwrap(),
        None
    );

    // Another user's passkey is out of reach.
    assert!(
        !store
            .rename_passkey(bob.id, laptop.id, "Mine")
            .await
            .unwrap()
    );
    assert!(!store.delete_passkey(bob.id, laptop.id).await.unwrap());
    assert!(
        store
            .rename_passkey(alice.id, laptop.id, "Work laptop")
            .await
            .unwrap()
    );

    let used_at = now() + Duration::minutes(1);
    assert!(
        store
            .record_passkey_use(phone.id, "{\"counter\":7}", used_at)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_passkey_use(Uuid::new_v4(), "{}", used_at)
            .await
            .unwrap()
    );
    let mine = store.user_passkeys(alice.id).await.unwrap();
    assert_eq!(mine[0].name, "Work laptop");
    assert_eq!(mine[1].credential, "{\"counter\":7}");
    assert_eq!(mine[1].last_used_at, Some(used_at));

    assert!(store.delete_passkey(alice.id, laptop.id).await.unwrap());
    assert!(!store.delete_passkey(alice.id, laptop.id).await.unwrap());
    assert_eq!(store.user_passkeys(alice.id).await.unwrap().len(), 1);
    assert_eq!(store.user_passkeys(bob.id).await.unwrap(), vec![bobs]);
}

/// A credential id is registered once, to anyone.
pub async fn a_credential_id_is_registered_once(store: Arc<dyn Store>) {
    let alice = user("alice");
    let bob = user("bob");
    store.insert_user(&alice, "h").await.unwrap();
    store.insert_user(&bob, "h").await.unwrap();
    store
        .insert_passkey(&passkey(alice.id, "Laptop", b"same"))
        .await
        .unwrap();
    for owner in [alice.id, bob.id] {
        assert!(matches!(
            store
                .insert_passkey(&passkey(owner, "Again", b"same"))
                .await,
            Err(StoreError::Duplicate)
        ));
    }
    assert_eq!(store.user_passkeys(bob.id).await.unwrap(), vec![]);
}

/// Removing a user's passkeys (a second-factor reset) removes theirs only.
pub async fn deleting_a_users_passkeys_keeps_the_others(store: Arc<dyn Store>) {
    let alice = user("alice");
    let bob = user("bob");
    store.insert_user(&alice, "h").await.unwrap();
    store.insert_user(&bob, "h").await.unwrap();
    for (i, owner) in [alice.id, alice.id, bob.id].into_iter().enumerate() {
        store
            .insert_passkey(&passkey(owner, "Key", format!("c{i}").as_bytes()))
            .await
            .unwrap();
    }
    assert_eq!(store.delete_user_passkeys(alice.id).await.unwrap(), 2);
    assert_eq!(store.delete_user_passkeys(alice.id).await.unwrap(), 0);
    assert!(store.user_passkeys(alice.id).await.unwrap().is_empty());
    assert_eq!(store.user_passkeys(bob.id).await.unwrap().len(), 1);
}

/// A ceremony reads back as written, once.
pub async fn ceremonies_are_taken_once(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.insert_user(&alice, "h").await.unwrap();
    let registration = ceremony(CeremonyKind::Registration, Some(alice.id));
    let sign_in = ceremony(CeremonyKind::SignIn, None);
    store.insert_ceremony(&registration).await.unwrap();
    store.insert_ceremony(&sign_in).await.unwrap();
    assert_eq!(
        store.take_ceremony(registration.id).await.unwrap(),
        Some(registration.clone())
    );
    assert_eq!(store.take_ceremony(registration.id).await.unwrap(), None);
    assert_eq!(
        store.take_ceremony(sign_in.id).await.unwrap(),
        Some(sign_in)
    );
    assert_eq!(store.take_ceremony(Uuid::new_v4()).await.unwrap(), None);
}

/// Of concurrent finishes of one ceremony, exactly one gets its state.
pub async fn concurrent_ceremony_takes_have_one_winner(store: Arc<dyn Store>) {
    let c = ceremony(CeremonyKind::SignIn, None);
    store.insert_ceremony(&c).await.unwrap();
    let takes = (0..16).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.take_ceremony(c.id).await.unwrap() })
    });
    let winners = futures::future::join_all(takes)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_some())
        .count();
    assert_eq!(winners, 1);
}

/// Expired ceremonies are swept; live ones stay.
pub async fn expired_ceremonies_are_swept(store: Arc<dyn Store>) {
    let old = ceremony(CeremonyKind::SignIn, None);
    let fresh = Ceremony {
        expires_at: old.expires_at + Duration::minutes(10),
        ..ceremony(CeremonyKind::SignIn, None)
    };
    store.insert_ceremony(&old).await.unwrap();
    store.insert_ceremony(&fresh).await.unwrap();
    let swept = store
        .delete_expired_ceremonies(old.expires_at + Duration::milliseconds(1))
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert_eq!(store.take_ceremony(old.id).await.unwrap(), None);
    assert_eq!(store.take_ceremony(fresh.id).await.unwrap(), Some(fresh));
}
