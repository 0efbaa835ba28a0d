//! `tessera bench --populate` fills a store with sessions the server takes
//! (the populated ones answer 200, an expired one 401, the sweep deletes
//! exactly the expired ones), measures, and leaves nothing behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use serde_json::Value;
use tessera_core::key_wrap::KeyEncryptionKey;

const SESSIONS: u64 = 2_000;

/// Runs `tessera bench --populate 2000` with `extra` arguments and `env`;
/// its JSON report.
fn populate(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let sessions = SESSIONS.to_string();
    let mut command = common::tessera(dir);
    command
        .args([
            "bench",
            "--populate",
            &sessions,
            "--duration",
            "1",
            "--connections",
            "2",
            "--json",
        ])
        .args(extra)
        // Cheap hashing keeps the run short; the figures are not judged here.
        .env("TESSERA_PASSWORD__MEMORY_KIB", "256")
        .env("TESSERA_PASSWORD__ITERATIONS", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What every populated run must show, whatever the store.
fn assert_populated(report: &Value) {
    let populated = &report["populated"];
    assert_eq!(populated["sessions"], SESSIONS, "{populated}");
    assert_eq!(populated["users"], SESSIONS / 10, "{populated}");
    assert_eq!(populated["expired_sessions"], SESSIONS / 10, "{populated}");
    assert_eq!(populated["token_sessions"], SESSIONS / 4, "{populated}");
    assert_eq!(populated["revocations"], SESSIONS, "{populated}");
    assert!(populated["rows_per_second"].as_f64().unwrap() > 0.0);
    // The populated sessions are real ones; the expired one is refused.
    let checks = &report["checks"];
    assert_eq!(checks["populated_cookie"], 200, "{checks}");
    assert_eq!(checks["expired_cookie"], 401, "{checks}");
    assert_eq!(checks["populated_refresh"], 200, "{checks}");
    for compared in ["cold_me", "refresh"] {
        for store in ["populated", "reference"] {
            let row = &report[compared][store];
            assert!(row["requests"].as_u64().unwrap() > 0, "{compared}: {row}");
            // Every cold cookie answered 200, every refresh rotated.
            assert_eq!(row["errors"], 0, "{compared}: {row}");
            assert!(row["p99_us"].as_u64().unwrap() >= row["p50_us"].as_u64().unwrap());
        }
        assert!(report[compared]["per_second_ratio"].as_f64().unwrap() > 0.0);
    }
    let sweep = &report["sweep"];
    assert_eq!(sweep["expired_sessions"], SESSIONS / 10, "{sweep}");
    assert_eq!(
        sweep["deleted_sessions"],
        SESSIONS / 10,
        "the sweep deletes the expired sessions and only them: {sweep}"
    );
    for stretch in ["me_before", "refresh_before"] {
        assert!(sweep[stretch]["requests"].as_u64().unwrap() > 0, "{sweep}");
        assert_eq!(sweep[stretch]["errors"], 0, "{sweep}");
    }
    let revocations = &report["revocation_set"];
    assert_eq!(revocations["entries"], SESSIONS, "{revocations}");
    assert!(revocations["load_ms"].as_f64().unwrap() > 0.0);
    assert!(revocations["node_start_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn populate_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let report = populate(dir.path(), &[], &[]);
    assert!(
        report["store"].as_str().unwrap().contains("SQLite"),
        "{}",
        report["store"]
    );
    assert_populated(&report);
}

#[test]
fn populate_refuses_too_few_sessions_and_redis() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        &["--populate", "10"][..],
        &["--populate", "1000", "--redis-url", "redis://127.0.0.1:1"][..],
    ] {
        let out = common::tessera(dir.path())
            .arg("bench")
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--populate"), "{extra:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"]
async fn populate_on_postgres_leaves_no_schema_behind() {
    let url = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL must be set (scripts/test sets it)");
    let kek = KeyEncryptionKey::generate().unwrap().to_base64();
    let dir = tempfile::tempdir().unwrap();
    let report = {
        let url = url.clone();
        let dir = dir.path().to_owned();
        tokio::task::spawn_blocking(move || {
            populate(
                &dir,
                &["--database-url", &url],
                &[("TESSERA_KEY_ENCRYPTION_KEY", &kek)],
            )
        })
        .await
        .unwrap()
    };
    let store = report["store"].as_str().unwrap();
    assert!(store.contains("PostgreSQL"), "{store}");
    assert_populated(&report);
    // The run worked in a schema of its own, dropped at the end.
    let schema = store
        .split("search_path%3D")
        .nth(1)
        .expect("the schema in the store's description");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
    )
    .bind(schema)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "schema {schema} left behind");
}
