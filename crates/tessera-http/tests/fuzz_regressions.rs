#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Replays the fuzzing seeds (`fuzz/seeds/<target>/*`) through the very
//! harness code the cargo-fuzz targets run (`fuzz/src/lib.rs`, included
//! below), so every seed and every crash input turned into a seed is
//! exercised by the ordinary test suite. See fuzz/README.md.

use std::path::{Path, PathBuf};

use tessera_core::jwt::{self, TokenError};
use time::Duration;

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, bytes) in seeds(target) {
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{target} panics on {}", path.display());
    }
}

#[test]
fn jwt_verify_seeds_replay_without_panicking() {
    replay("jwt_verify", harness::jwt_verify);
}

#[test]
fn headers_seeds_replay_without_panicking() {
    replay("headers", harness::headers);
}

#[test]
fn bodies_seeds_replay_without_panicking() {
    replay("bodies", harness::bodies);
}

fn seed_text(target: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

#[test]
fn the_valid_seed_token_verifies_at_the_fixture_time_only() {
    let fx = harness::jwt_fixture();
    let token = seed_text("jwt_verify", "valid-token");
    let claims = jwt::verify(&fx.ring, &fx.policy, &token, fx.now).expect("seed token verifies");
    assert_eq!(claims.iss, harness::ISSUER);
    assert_eq!(claims.aud, harness::ISSUER);
    assert_eq!(claims.sid, "sid");
    assert_eq!(claims.iat, harness::NOW_UNIX);
    assert_eq!(
        jwt::verify_ignoring_expiry(&fx.ring, &fx.policy, &token),
        Ok(claims)
    );
    assert!(jwt::verify(&fx.ring, &fx.policy, &token, fx.now + Duration::minutes(11)).is_err());
}

#[test]
fn the_harness_reaches_the_checks_behind_the_signature() {
    let fx = harness::jwt_fixture();
    // Freshly minted by tessera-core: the harness's ring is sound.
    let minted = fx.mint();
    assert!(jwt::verify(&fx.ring, &fx.policy, &minted, fx.now).is_ok());
    // The signed-payload half of `jwt_verify` makes tokens tessera accepts,
    // so fuzzed claims sets really get past the signature.
    let claims = seed_text("jwt_verify", "claims-valid.json");
    let token = fx.sign_payload(claims.as_bytes());
    assert!(jwt::verify(&fx.ring, &fx.policy, &token, fx.now).is_ok());
    // ... and the checks after it do run.
    let expired = fx.sign_payload(
        claims
            .replace("1767226200", "1767225000")
            .replace("1767225600", "1767224900")
            .as_bytes(),
    );
    assert!(matches!(
        jwt::verify(&fx.ring, &fx.policy, &expired, fx.now),
        Err(TokenError::Invalid(_))
    ));
    // So does the binary time-claims half.
    let timed = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/jwt_verify/time-claims-valid.bin"),
    )
    .unwrap();
    let timed = harness::time_claims(&timed).expect("27 bytes or more");
    let claims = jwt::verify(
        &fx.ring,
        &fx.policy,
        &fx.sign_payload(timed.as_bytes()),
        fx.now,
    )
    .expect("time-claims seed verifies");
    assert_eq!(
        (claims.iat, claims.exp),
        (harness::NOW_UNIX, harness::NOW_UNIX + 600)
    );
    // Every other key of the ring is reachable by its kid.
    for kid in harness::OTHER_KIDS {
        assert!(fx.ring.get(kid).is_some(), "{kid}");
    }
}

// ---------------------------------------------------------------------------
// Crash regressions. Each test holds one input on which a fuzz target
// panicked, and asserts the correct behaviour: it fails until the bug is
// fixed. Once fixed, also copy the input into fuzz/seeds/<target>/.
// ---------------------------------------------------------------------------

/// The claims of the seed token with some fields replaced.
fn claims_with(fields: &[(&str, serde_json::Value)]) -> String {
    let mut claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&seed_text("jwt_verify", "claims-valid.json")).unwrap();
    for (name, value) in fields {
        claims.insert((*name).to_owned(), value.clone());
    }
    serde_json::to_string(&claims).unwrap()
}

/// `verify` at the fixture time, turning a panic into a test failure that
/// names the input.
fn verify_signed(claims: &str) -> Result<jwt::AccessClaims, TokenError> {
    let fx = harness::jwt_fixture();
    let token = fx.sign_payload(claims.as_bytes());
    // The fixture is dropped with the test if this panics: never seen broken.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jwt::verify(&fx.ring, &fx.policy, &token, fx.now)
    }))
    .unwrap_or_else(|_| panic!("jwt::verify panics on a token with claims {claims}"))
}

/// Overflows in `tessera_core::jwt::verify`'s time checks, which did their
/// arithmetic on the token's `i64` claims unchecked (the checks after
/// `jsonwebtoken::decode` in crates/tessera-core/src/jwt.rs):
///   `claims.exp + leeway`  overflowed for exp > i64::MAX - leeway,
///   `claims.iat - leeway`  overflowed for iat < i64::MIN + leeway,
///   `claims.exp - claims.iat` overflowed for a huge exp and a hugely negative iat,
///   `nbf - leeway` (in the `nbf_of` check) overflowed for nbf < i64::MIN + leeway.
/// With overflow checks (debug builds, tests, the fuzz build) each was a
/// panic. Without them (release) the sums wrapped: three cases then failed
/// closed by luck, but the lifetime one *accepted* a token expiring in the
/// year 292 billion. Only a holder of a signing key can make such a token,
/// so this was defence in depth, not a remote hole. Found by review of the
/// paths the `jwt_verify` target reaches, then by the target itself on its
/// binary time-claims input (`fuzz/seeds/jwt_verify/crash-lifetime-overflow`,
/// the `exp - iat` case, within a second). Fixed with saturating arithmetic.
#[test]
fn huge_exp_is_refused_without_overflow() {
    // jwt.rs: `claims.exp + leeway <= now` overflows.
    let claims = claims_with(&[("exp", i64::MAX.into())]);
    assert!(matches!(
        verify_signed(&claims),
        Err(TokenError::Invalid(_))
    ));
    harness::jwt_verify(claims.as_bytes());
}

#[test]
fn hugely_negative_iat_is_refused_without_overflow() {
    // jwt.rs: `claims.iat - leeway > now` overflows.
    let claims = claims_with(&[("iat", i64::MIN.into())]);
    assert!(matches!(
        verify_signed(&claims),
        Err(TokenError::Invalid(_))
    ));
    harness::jwt_verify(claims.as_bytes());
}

#[test]
fn lifetime_beyond_i64_is_refused_not_wrapped() {
    // jwt.rs: `claims.exp - claims.iat` overflows; wrapped (release) it is
    // -61 seconds, under the policy's lifetime, and the token is accepted.
    let claims = claims_with(&[
        ("exp", (i64::MAX - 30).into()),
        ("iat", (i64::MIN + 30).into()),
    ]);
    assert!(matches!(
        verify_signed(&claims),
        Err(TokenError::Invalid(_))
    ));
    harness::jwt_verify(claims.as_bytes());
}

#[test]
fn hugely_negative_nbf_does_not_overflow() {
    // jwt.rs: `nbf - leeway > now` (after `nbf_of`) overflows. A not-before
    // time in the distant past is no reason to refuse an otherwise valid
    // token, but refusing it would be safe too: only the panic is wrong.
    let claims = claims_with(&[("nbf", i64::MIN.into())]);
    if let Ok(accepted) = verify_signed(&claims) {
        assert_eq!(accepted.iat, harness::NOW_UNIX);
    }
    harness::jwt_verify(claims.as_bytes());
}

#[test]
#[ignore = "prints the seed token; run by hand after changing the fixture"]
fn print_seed_token() {
    let fx = harness::jwt_fixture();
    let claims = jwt::new_claims(
        &fx.policy,
        uuid::Uuid::from_u128(0x0123_4567_89ab_4def_8123_4567_89ab_cdef),
        "sid",
        vec![],
        fx.now,
    )
    .unwrap();
    println!("TOKEN {}", jwt::mint(&fx.ring, &claims).unwrap());
    println!("CLAIMS {}", serde_json::to_string(&claims).unwrap());
}
