//! Sign-in beyond what the hashing pool can take: refused early, as
//! problem+json, with a `Retry-After` that covers the work queued ahead.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::json;
use tessera_core::TesseraConfig;
use tessera_core::password::HashCost;

#[tokio::test]
async fn an_overloaded_sign_in_answers_503_with_a_retry_after_covering_the_queue() {
    // One hashing thread and thirty hashes allowed to wait, each of them
    // tens of milliseconds (Argon2id with eight passes): the queue holds
    // about two seconds of work.
    const QUEUE: usize = 30;
    const ATTEMPTS: usize = 44;
    let server = TestServer::with(Options {
        core: TesseraConfig {
            hash_cost: HashCost {
                memory_kib: 19_456,
                iterations: 8,
                parallelism: 1,
            },
            hash_workers: 1,
            hash_queue: QUEUE,
            ..cheap_hashing()
        },
        // Admission is judged at the pool's measured speed; a machine that
        // slows down mid-test stretches the admitted line past the usual
        // 30 s, which would turn the end of the line into 408s that have
        // nothing to do with what is tested here.
        request_timeout: Some(std::time::Duration::from_secs(300)),
        ..Options::default()
    })
    .await;
    server.register("alice").await;
    let client = server.anon();
    let attempts: Vec<_> = (0..ATTEMPTS)
        .map(|_| {
            let request = client
                .post(server.url("/v1/session"))
                .json(&json!({ "username": "alice", "password": PASSWORD }));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for attempt in attempts {
        let r = attempt.await.unwrap();
        match r.status().as_u16() {
            200 => served += 1,
            503 => {
                let retry_after: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                // Thirty hashes of tens of milliseconds each were ahead: the
                // hint says more than a second, so clients do not hammer.
                assert!(retry_after >= 2, "Retry-After: {retry_after}");
                let body = problem(r, 503).await;
                assert_eq!(body["type"], "urn:tessera:problem:busy");
                refused += 1;
            }
            status => panic!("sign-in under overload answered {status}"),
        }
    }
    assert!(
        refused > 0,
        "the queue never filled: the test proves nothing"
    );
    // Whoever got in line was served: nothing admitted is shed (every
    // answer above is a 200 or an early 503). How many got in depends on
    // the hash time the pool measures, which a busy machine stretches: up
    // to the queue plus the one hashing, fewer when the line's wait would
    // pass the deadline.
    assert!(
        served > 0 && served <= QUEUE + 1,
        "{served} served, {refused} refused"
    );
}
