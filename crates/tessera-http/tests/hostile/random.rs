//! Random requests from [`crate::strategies`], through the HTTP client and
//! written raw, on fixed seeds so every run sends the same ones; and the
//! raw requests no client would send.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Debug;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tokio::runtime::Handle;
use tokio::sync::Mutex;

use crate::raw::{Raw, raw_cred, raw_exchange, raw_request};
use crate::strategies::{http_request, raw_request_strategy};
use crate::world::*;

/// Random requests per test.
const CASES: u32 = 300;

/// Runs [`CASES`] inputs from `strategy` through `check` on the RNG seeded
/// with `seed`. A failing input is shrunk to a smaller one that still fails
/// and reported; each try is a request, so shrinking stops after 5000 tries
/// or a minute. Nothing is written to disk. The runner is synchronous: it
/// blocks this thread, which must be the test's on a multi-threaded
/// runtime, whose worker serves meanwhile.
fn run_cases<S, F>(seed: u64, strategy: S, check: impl Fn(S::Value) -> F)
where
    S: Strategy,
    S::Value: Debug,
    F: Future<Output = ()>,
{
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 5000,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    // XorShift: in debug builds ChaCha made drawing a request cost more
    // than sending it.
    let seed = [seed.to_le_bytes(), [0; 8]].concat();
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::XorShift, &seed));
    let handle = Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |value| {
            handle.block_on(check(value));
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn seeded_fuzz_over_http_never_gets_a_server_error() {
    let world = World::new().await;
    let strategy = http_request(&world);
    let shared = (Mutex::new(world), Cell::new(0));
    let (world, sent) = (&shared.0, &shared.1);
    run_cases(0x7e55_e4a0_5eed_0001, strategy, move |fuzzed| async move {
        let mut world = world.lock().await;
        if sent.replace(sent.get() + 1) % 50 == 0 {
            world.refresh().await;
        }
        let req = fuzzed.to_req(&world);
        world.probe(&req).await;
    });
    let mut world = world.lock().await;
    world.assert_still_serving("seeded fuzz over HTTP").await;
}

/// Tallies raw exchanges by outcome, to show what the requests reached.
#[derive(Default)]
struct Outcomes(BTreeMap<String, usize>);

impl Outcomes {
    fn add(&mut self, outcome: Raw) {
        let key = match outcome {
            Raw::Closed => "closed".to_owned(),
            Raw::Answered { status, ours: true } => format!("{status} by the router"),
            Raw::Answered { status, .. } => format!("{status} by the HTTP layer"),
        };
        *self.0.entry(key).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn raw_bytes_in_paths_headers_and_bodies_never_get_a_server_error() {
    let world = World::new().await;
    let addr = world.server.addr;
    let mut outcomes = Outcomes::default();

    // Path traversal and encoding tricks the HTTP client would normalise.
    let fixed: &[(&str, &[u8], Cred)] = &[
        ("GET", b"/v1/me/sessions/../../../etc/passwd", Cred::Bearer),
        (
            "DELETE",
            b"/v1/me/sessions/../../../etc/passwd",
            Cred::Bearer,
        ),
        (
            "DELETE",
            b"/v1/me/sessions/..%2F..%2Fetc%2Fpasswd",
            Cred::Cookie,
        ),
        (
            "POST",
            b"/v1/admin/users/../../../etc/passwd/disable",
            Cred::Admin,
        ),
        (
            "POST",
            b"/v1/admin/users/..%2F..%2F..%2Fetc%2Fpasswd/disable",
            Cred::Admin,
        ),
        ("POST", b"/v1/admin/users/%C0%AE%C0%AE/disable", Cred::Admin),
        ("DELETE", b"/v1/admin/users/%FF/sessions", Cred::Admin),
        ("DELETE", b"/v1/admin/users/\xff\xfe/sessions", Cred::Admin),
        ("GET", b"/..", Cred::Anon),
        ("GET", b"/../../../../etc/passwd", Cred::Anon),
        ("GET", b"/%2e%2e/%2e%2e/etc/passwd", Cred::Anon),
        ("GET", b"//v1//me", Cred::Bearer),
        ("GET", b"/v1/me/", Cred::Bearer),
        ("GET", b"/v1/me;x=1", Cred::Bearer),
        ("GET", b"/v1/me%00", Cred::Bearer),
        ("GET", b"/v1/me\x00", Cred::Bearer),
        ("GET", b"/v1/me\x7f", Cred::Bearer),
        ("GET", b"/v1/me#fragment", Cred::Bearer),
        ("GET", b"/\\..\\..\\windows\\win.ini", Cred::Anon),
        ("GET", b"/v1/admin/users?after=\xff\xfe", Cred::Admin),
        ("GET", b"/v1/admin/users?after=%", Cred::Admin),
        ("GET", b"/v1/revocations?since=%ZZ", Cred::Verifier),
        ("GET", b"*", Cred::Anon),
        ("GET", b"v1/me", Cred::Bearer),
        ("GET", b"http://evil.example/v1/me", Cred::Bearer),
        ("POST", b"/v1/token?grant_type=password", Cred::Anon),
        ("GET", b"/\xe2\x80\xaeuser", Cred::Anon),
    ];
    for (method, path, cred) in fixed {
        world.count("raw fixed requests");
        let request = raw_request(
            &world,
            method.as_bytes(),
            path,
            &raw_cred(&world, *cred),
            b"",
        );
        outcomes.add(raw_exchange(addr, &request, method.as_bytes(), path).await);
    }

    let strategy = raw_request_strategy(&world);
    let shared = (Mutex::new(world), Mutex::new(outcomes), Cell::new(0));
    let (world, outcomes, sent) = (&shared.0, &shared.1, &shared.2);
    run_cases(0xbad_c0de_f00d, strategy, move |fuzzed| async move {
        let mut world = world.lock().await;
        if sent.replace(sent.get() + 1) % 60 == 0 {
            world.refresh().await;
        }
        world.count("seeded fuzz (raw bytes)");
        let request = fuzzed.to_bytes(&world);
        let outcome = raw_exchange(addr, &request, &fuzzed.method, &fuzzed.target).await;
        outcomes.lock().await.add(outcome);
    });
    eprintln!("[hostile] raw outcomes: {:?}", outcomes.lock().await.0);
    world.lock().await.assert_still_serving("raw bytes").await;
}
