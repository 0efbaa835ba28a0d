//! Token signing and verification per algorithm, the verified-token cache,
//! revocation-set lookups and the CSRF check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::jwt::{self, TokenPolicy};
use tessera_core::keys::{Algorithm, Keyring, SigningKey};
use tessera_core::revocation::{Revocation, RevocationKind, RevocationSet};
use tessera_core::secret::{Secret, SecretKind, constant_time_str_eq};
use time::OffsetDateTime;

fn sign_and_verify(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let policy = TokenPolicy::new("https://auth.example");
    for algorithm in [
        Algorithm::EdDSA,
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::HS256,
    ] {
        let key = SigningKey::generate(algorithm, now).unwrap();
        let ring = Keyring::new(&[key], now).unwrap();
        let claims = jwt::new_claims(
            &policy,
            uuid::Uuid::new_v4(),
            "AAAAAAAAAAAAAAAAAAAAAA",
            vec!["admin".into()],
            now,
        )
        .unwrap();
        let token = jwt::mint(&ring, &claims).unwrap();
        c.bench_function(&format!("jwt sign {}", algorithm.as_str()), |b| {
            b.iter(|| jwt::mint(&ring, &claims).unwrap())
        });
        c.bench_function(&format!("jwt verify {}", algorithm.as_str()), |b| {
            b.iter(|| jwt::verify(&ring, &policy, &token, now).unwrap())
        });
    }
}

fn verified_cache(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let policy = TokenPolicy::new("https://auth.example");
    let ring = Keyring::new(&[SigningKey::generate(Algorithm::EdDSA, now).unwrap()], now).unwrap();
    let claims = jwt::new_claims(
        &policy,
        uuid::Uuid::new_v4(),
        "AAAAAAAAAAAAAAAAAAAAAA",
        vec![],
        now,
    )
    .unwrap();
    let token = jwt::mint(&ring, &claims).unwrap();
    let cache = tessera_verify::VerifiedCache::default();
    cache.put(
        tessera_verify::TokenKey::of(&token),
        std::sync::Arc::new(claims),
    );
    c.bench_function("verified-token cache hit", |b| {
        b.iter(|| {
            cache
                .get(&tessera_verify::TokenKey::of(&token), now.unix_timestamp())
                .unwrap()
        })
    });
}

fn revocation_lookup(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let set = RevocationSet::new();
    let entries: Vec<Revocation> = (0..100_000)
        .map(|i| Revocation {
            seq: i,
            kind: RevocationKind::Sid,
            value: format!("session-{i:016}"),
            expires_at: now + time::Duration::minutes(10),
        })
        .collect();
    set.apply(&entries);
    c.bench_function("revocation lookup, 100k entries, miss", |b| {
        b.iter(|| set.is_revoked("not-revoked-session", "not-revoked-jti"))
    });
    c.bench_function("revocation lookup, 100k entries, hit", |b| {
        b.iter(|| set.is_revoked("session-0000000000054321", "x"))
    });
}

fn csrf_check(c: &mut Criterion) {
    let secret = Secret::generate(SecretKind::Session).unwrap();
    let given = secret.derive(b"tessera csrf v1");
    c.bench_function("csrf check (derive + constant-time compare)", |b| {
        b.iter(|| constant_time_str_eq(&given, &secret.derive(b"tessera csrf v1")))
    });
}

criterion_group!(
    benches,
    sign_and_verify,
    verified_cache,
    revocation_lookup,
    csrf_check
);
criterion_main!(benches);
