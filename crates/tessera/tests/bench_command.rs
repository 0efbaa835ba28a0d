//! `tessera bench` runs end to end and reports every figure it promises.
//! (What the figures are is docs/BENCHMARKS.md's business, not a test's.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use serde_json::Value;

/// A short `tessera bench --json` with `extra` options; its report.
fn bench(extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = common::tessera(dir.path())
        .args([
            "bench",
            "--duration",
            "1",
            "--connections",
            "2",
            "--sessions",
            "200",
            "--json",
        ])
        .args(extra)
        // Cheap hashing keeps the run short; the figures are not judged here.
        .env("TESSERA_PASSWORD__MEMORY_KIB", "256")
        .env("TESSERA_PASSWORD__ITERATIONS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs Redis: scripts/test sets TEST_REDIS_URL"]
fn bench_reports_the_redis_session_cache() {
    let url = std::env::var("TEST_REDIS_URL").expect("TEST_REDIS_URL must be set");
    let report = bench(&["--redis-url", &url]);
    // One key per session; the bytes are Redis's whole growth (shared with
    // whatever else uses it), so only their presence is checked here.
    assert_eq!(report["redis_keys_per_session"].as_f64(), Some(1.0));
    assert!(report["redis_bytes_per_session"].as_f64().unwrap() >= 0.0);
}

#[test]
fn bench_reports_every_scenario_and_measure() {
    let report = bench(&[]);
    let rows = report["rows"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    for expected in [
        "unauthenticated GET /healthz (ceiling)",
        "GET /v1/me by cookie",
        "GET /v1/auth/forward by cookie",
        "GET /v1/me by bearer (EdDSA)",
        "GET /v1/me by bearer (ES256) [own embedded server]",
        "GET /v1/me by bearer (RS256) [own embedded server]",
        "GET /v1/me by bearer (HS256) [own embedded server]",
        "POST /v1/token refresh_token",
        "authorization-code flow (code + exchange; ratio to refresh)",
        "POST /v1/session (sign-in)",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for row in rows {
        assert!(row["requests"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
        assert!(
            row["p99_us"].as_u64().unwrap() >= row["p50_us"].as_u64().unwrap(),
            "{row}"
        );
        if let Some(ratio) = row["ratio_to_ceiling"].as_f64() {
            assert!(ratio > 0.0 && ratio < 3.0, "{row}");
        }
    }
    assert!(report["store_bytes_per_session"].as_f64().unwrap() > 0.0);
    assert!(report["cache_bytes_per_session_estimate"].as_u64().unwrap() > 0);
    // No Redis configured, so no Redis figures.
    assert!(report["redis_bytes_per_session"].is_null());
    assert!(report["redis_keys_per_session"].is_null());
    assert!(report["argon2_capacity_per_second"].as_f64().unwrap() > 0.0);
    let sign_in_share = report["sign_in_to_argon2_capacity"].as_f64().unwrap();
    assert!(
        sign_in_share > 0.0 && sign_in_share < 3.0,
        "{sign_in_share}"
    );
    assert!(report["revocation_refused_after_us"].as_u64().unwrap() < 5_000_000);
    let overload = report["sign_in_overload"].as_array().unwrap();
    let clients: Vec<u64> = overload
        .iter()
        .map(|case| case["clients"].as_u64().unwrap())
        .collect();
    assert_eq!(clients, [64, 256], "{overload:?}");
    for case in overload {
        // The attack: clients retry a 503 at once.
        assert_eq!(case["retry"], "at once", "{case}");
        assert!(
            case["sign_ins_per_second"].as_f64().unwrap() > 0.0,
            "{case}"
        );
        let share = case["goodput_to_argon2_capacity"].as_f64().unwrap();
        assert!(share > 0.0 && share < 3.0, "{case}");
        assert!(case["argon2_capacity_per_second"].as_f64().unwrap() > 0.0);
        assert!(case["busy_per_second"].as_f64().unwrap() >= 0.0, "{case}");
        assert_eq!(case["busy_without_retry_after"], 0, "{case}");
        assert_eq!(case["errors"], 0, "{case}");
        assert!(case["me_p99_us"].as_u64().unwrap() > 0, "{case}");
        assert!(case["me_p99_idle_us"].as_u64().unwrap() > 0, "{case}");
        assert!(case["me_p99_to_idle"].as_f64().unwrap() > 0.0, "{case}");
    }
    for key in [
        "me_p99_at_half_load_us",
        "me_p99_idle_us",
        "me_p99_during_sign_in_saturation_us",
    ] {
        assert!(report[key].as_u64().unwrap() > 0, "{key}");
    }
}
