//! `tessera-verify` against the JWT library it is measured by: a repeated
//! token through `Verifier::verify` (cache hit, revocation check, claims
//! copied out) beside `jsonwebtoken::decode` of the same token with the same
//! key, issuer and audience. The token, key set and revocation feed come
//! from a real Tessera server running in this process on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};
use tessera_server::config::Settings;
use tessera_verify::{Claims, Verifier};

const SECRET: &str = "bench-introspection-secret-0123456789abcdef";
const PASSWORD: &str = "correct horse battery staple";

struct Issuer {
    public: String,
    token: String,
    _dir: tempfile::TempDir,
}

async fn start_issuer() -> Issuer {
    let dir = tempfile::tempdir().unwrap();
    // The server refuses a data directory others can read.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://127.0.0.1:{port}");
    let env = [
        ("TESSERA_LISTEN", format!("127.0.0.1:{port}")),
        ("TESSERA_PUBLIC_URL", public.clone()),
        ("TESSERA_DATA_DIR", dir.path().display().to_string()),
        ("TESSERA_INTROSPECTION_SECRET", SECRET.to_owned()),
        ("TESSERA_COOKIE__SECURE", "false".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let settings = Settings::load(None, env).unwrap();
    tokio::spawn(async move { tessera_server::serve::run(settings).await.unwrap() });
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if http.get(format!("{public}/healthz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready, "the in-process server did not start");
    let r = http
        .post(format!("{public}/v1/users"))
        .json(&json!({ "username": "bench", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = http
        .post(format!("{public}/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "bench"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Issuer {
        public,
        token: body["access_token"].as_str().unwrap().to_owned(),
        _dir: dir,
    }
}

fn verify_against_jsonwebtoken(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let issuer = rt.block_on(start_issuer());
    let verifier = rt.block_on(
        Verifier::builder(&issuer.public)
            .introspection_secret(SECRET)
            .build(),
    );
    let verifier = verifier.unwrap();
    let token = issuer.token.clone();
    rt.block_on(verifier.verify(&token)).unwrap();

    // The baseline: jsonwebtoken with the published key and the same
    // issuer and audience checks.
    let jwks: JwkSet = rt
        .block_on(async {
            reqwest::get(format!("{}/.well-known/jwks.json", issuer.public))
                .await?
                .json()
                .await
        })
        .unwrap();
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[&issuer.public]);
    validation.set_audience(&[&issuer.public]);
    jsonwebtoken::decode::<Claims>(&token, &key, &validation).unwrap();

    let mut group = c.benchmark_group("verify a repeated EdDSA token");
    group.bench_function("jsonwebtoken::decode (baseline)", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(&token, &key, &validation).unwrap())
    });
    group.bench_function("tessera_verify::Verifier::verify (cache hit)", |b| {
        b.iter(|| {
            // The future never waits on a hit: poll it once, inline.
            futures::executor::block_on(verifier.verify(&token)).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, verify_against_jsonwebtoken);
criterion_main!(benches);
