//! `tessera backup` and `tessera restore` of the embedded store, against
//! real `tessera serve` processes: a backup taken while a server is taking
//! writes restores into a fresh data directory with its users, sessions
//! and signing keys; files that are not a Tessera database of a schema this
//! version runs are refused before anything is replaced.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{PASSWORD, Server, access_token, me_status, register, run_with_stdin};
use serde_json::{Value, json};
use sqlx::{ConnectOptions as _, Connection as _, SqliteConnection};

/// Cheap hashing and no registration limit: the writers below register as
/// fast as the server lets them. One issuer for every server, whatever port
/// it gets, so tokens of one are tokens of the next.
const ENV: &[(&str, &str)] = &[
    ("TESSERA_PUBLIC_URL", "http://127.0.0.1:9"),
    ("TESSERA_PASSWORD__MEMORY_KIB", "1024"),
    ("TESSERA_PASSWORD__ITERATIONS", "1"),
    ("TESSERA_RATE_LIMIT__REGISTRATIONS", "1000000"),
];

fn database(dir: &Path) -> PathBuf {
    dir.join("tessera-data/tessera.db")
}

/// `tessera ARGS` in `dir`: (success, stdout, stderr).
fn tessera(dir: &Path, args: &[&str]) -> (bool, String, String) {
    run_with_stdin(dir, args, "")
}

async fn open(path: &Path) -> SqliteConnection {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap()
}

async fn count_users(path: &Path) -> i64 {
    let mut conn = open(path).await;
    let n = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n
}

/// Cookie sign-in: the `Cookie` header value.
async fn cookie_sign_in(client: &reqwest::Client, server: &Server, name: &str) -> String {
    let r = client
        .post(server.url("/v1/session"))
        .json(&json!({ "username": name, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn session_status(client: &reqwest::Client, server: &Server, cookie: &str) -> u16 {
    client
        .get(server.url("/v1/session"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn password_grant(client: &reqwest::Client, server: &Server, name: &str) -> Value {
    let r = client
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", name),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_backup_taken_while_serving_writes_restores_users_sessions_and_keys() {
    let a = tempfile::tempdir().unwrap();
    let server = Server::start(a.path(), ENV);
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    assert_eq!(register(&client, &server, "bob").await, 201);
    let cookie = cookie_sign_in(&client, &server, "alice").await;
    let tokens = password_grant(&client, &server, "bob").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Writers register users, and sign them in, all through the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let writers_count = 4;
    let writers: Vec<_> = (0..writers_count)
        .map(|w| {
            let (client, url, stop, acknowledged) = (
                client.clone(),
                server.url(""),
                stop.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let name = format!("w{w}n{i}");
                    let r = client
                        .post(format!("{url}/v1/users"))
                        .json(&json!({ "username": name, "password": PASSWORD }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                    let r = client
                        .post(format!("{url}/v1/session"))
                        .json(&json!({ "username": name, "password": PASSWORD }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    i += 1;
                }
            })
        })
        .collect();
    while acknowledged.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = acknowledged.load(Ordering::SeqCst);
    let backup = a.path().join("backups/tessera-backup.db");
    std::fs::create_dir(a.path().join("backups")).unwrap();
    let dir = a.path().to_owned();
    let backup_arg = backup.to_str().unwrap().to_owned();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || tessera(&dir, &["backup", &backup_arg]))
            .await
            .unwrap();
    let after = acknowledged.load(Ordering::SeqCst);
    assert!(ok, "{err}");
    assert!(out.contains("backed up"), "{out}");
    assert!(
        err.contains("key-encryption.key"),
        "the key is named: {err}"
    );
    // Writes go on after the backup, then stop.
    while acknowledged.load(Ordering::SeqCst) < after + 10 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    let (status, _) = server.terminate();
    assert!(status.success());

    // The copy is one sound moment of the database: every registration
    // acknowledged before the backup started, none after it ended.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup holds password hashes");
    }
    let mut conn = open(&backup).await;
    let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(verdict, ["ok"]);
    let orphans: Vec<String> = sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(orphans.is_empty(), "{orphans:?}");
    conn.close().await.unwrap();
    // A registration is committed before its answer arrives: each writer
    // may have one committed and not yet acknowledged.
    let users = count_users(&backup).await as usize;
    assert!(
        (2 + before..=2 + after + writers_count).contains(&users),
        "{users} users in the backup; {before} registered before it began, {after} when it ended"
    );
    let remaining: Vec<_> = std::fs::read_dir(a.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(remaining.len(), 1, "no partial file is left: {remaining:?}");

    // A fresh data directory: without the key-encryption key the backup's
    // signing keys could not be opened, so it is refused.
    let b = tempfile::tempdir().unwrap();
    let (ok, _, err) = tessera(b.path(), &["restore", backup.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("key-encryption.key"), "{err}");
    assert!(!database(b.path()).exists(), "nothing was restored");
    std::fs::copy(
        a.path().join("tessera-data/key-encryption.key"),
        b.path().join("tessera-data/key-encryption.key"),
    )
    .unwrap();
    let (ok, out, err) = tessera(b.path(), &["restore", backup.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("restored"), "{out}");
    assert!(!out.contains("kept as"), "there was nothing to keep: {out}");
    let mut files: Vec<String> = std::fs::read_dir(b.path().join("tessera-data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["key-encryption.key", "tessera.db", "tessera.db.lock"],
        "the database alone, in rollback-journal mode, nothing of the copy left"
    );

    let server = Server::start(b.path(), ENV);
    assert_eq!(
        session_status(&client, &server, &cookie).await,
        200,
        "the cookie session came along"
    );
    assert_eq!(
        me_status(&client, &server, &access).await,
        200,
        "the signing keys came along"
    );
    let r = client
        .post(server.url("/v1/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the token session came along");
    let token = access_token(&client, &server, "alice").await;
    assert_eq!(
        me_status(&client, &server, &token).await,
        200,
        "alice signs in"
    );
    drop(server);
    let (ok, out, _) = tessera(b.path(), &["user", "list"]);
    assert!(ok);
    assert_eq!(
        out.lines().count(),
        users,
        "every user in the backup: {out}"
    );
}

#[tokio::test]
async fn restore_waits_for_the_server_to_stop_and_keeps_the_database_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ENV);
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    let backup = dir.path().join("backup.db");
    let (ok, _, err) = tessera(dir.path(), &["backup", backup.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, _, err) = tessera(dir.path(), &["backup", backup.to_str().unwrap()]);
    assert!(!ok && err.contains("never overwrites"), "{err}");
    assert_eq!(register(&client, &server, "carol").await, 201);

    let (ok, _, err) = tessera(dir.path(), &["restore", backup.to_str().unwrap()]);
    assert!(!ok, "restored under a running server");
    assert!(
        err.contains("in use") && err.contains("stop it first"),
        "{err}"
    );
    assert_eq!(register(&client, &server, "carol").await, 409, "untouched");
    let (status, _) = server.terminate();
    assert!(status.success());

    let (ok, out, err) = tessera(dir.path(), &["restore", backup.to_str().unwrap()]);
    assert!(ok, "{err}");
    let aside = out
        .lines()
        .find_map(|l| l.strip_prefix("the database it replaced is kept as "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(aside.contains("tessera.db.before-restore-"), "{aside}");
    let server = Server::start(dir.path(), ENV);
    assert_eq!(register(&client, &server, "alice").await, 409);
    assert_eq!(
        register(&client, &server, "carol").await,
        201,
        "carol came after the backup"
    );
    drop(server);

    // The database set aside is whole: restored in turn, carol is back.
    let (ok, _, err) = tessera(dir.path(), &["restore", &aside]);
    assert!(ok, "{err}");
    let server = Server::start(dir.path(), ENV);
    assert_eq!(register(&client, &server, "carol").await, 409);
    cookie_sign_in(&client, &server, "carol").await;
}

#[tokio::test]
async fn restore_refuses_what_is_not_a_tessera_database_of_a_schema_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run_with_stdin(
        dir.path(),
        &["user", "add", "alice"],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "{err}");
    let backup = dir.path().join("backup.db");
    let (ok, _, err) = tessera(dir.path(), &["backup", backup.to_str().unwrap()]);
    assert!(ok, "{err}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a database, but it is long enough").unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();

    let foreign = dir.path().join("foreign.db");
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&foreign)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (body TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let newer = dir.path().join("newer.db");
    std::fs::copy(&backup, &newer).unwrap();
    let mut conn = open(&newer).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let altered = dir.path().join("altered.db");
    std::fs::copy(&backup, &altered).unwrap();
    let mut conn = open(&altered).await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = x'0102' WHERE version = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    for (file, reason) in [
        (&garbage, "not an SQLite database"),
        (&empty, "not an SQLite database"),
        (&foreign, "not a Tessera database"),
        (&newer, "newer than this tessera's"),
        (&altered, "differs from Tessera's"),
        (&dir.path().join("missing.db"), "not a file"),
    ] {
        let (ok, _, err) = tessera(dir.path(), &["restore", file.to_str().unwrap()]);
        assert!(!ok, "{} was restored", file.display());
        assert!(err.contains(reason), "{}: {err}", file.display());
    }
    let left: Vec<String> = std::fs::read_dir(dir.path().join("tessera-data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("restor"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let (ok, out, _) = tessera(dir.path(), &["user", "list"]);
    assert!(
        ok && out.contains("alice"),
        "the database is untouched: {out}"
    );

    let (ok, _, err) = common::run_command(
        common::tessera(dir.path())
            .args(["backup", "pg.db"])
            .env(
                "TESSERA_DATABASE_URL",
                "postgres://tessera@127.0.0.1:1/tessera",
            )
            .env(
                "TESSERA_KEY_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        "",
    );
    assert!(!ok && err.contains("pg_dump"), "{err}");
    let (ok, _, err) = common::run_command(
        common::tessera(dir.path())
            .args(["restore", backup.to_str().unwrap()])
            .env(
                "TESSERA_DATABASE_URL",
                "postgres://tessera@127.0.0.1:1/tessera",
            ),
        "",
    );
    assert!(!ok && err.contains("pg_restore"), "{err}");
}

#[tokio::test]
async fn nothing_opens_the_store_while_a_restore_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = tessera(dir.path(), &["migrate"]);
    assert!(ok, "{err}");
    // What `tessera restore` holds while it swaps the file.
    let lock = std::fs::File::open(dir.path().join("tessera-data/tessera.db.lock")).unwrap();
    lock.try_lock().unwrap();

    let err = common::refuses_to_start(&mut common::tessera(dir.path()), ENV);
    assert!(err.contains("being restored"), "{err}");
    let (ok, _, err) = tessera(dir.path(), &["user", "list"]);
    assert!(!ok && err.contains("being restored"), "{err}");
    let backup = dir.path().join("backup.db");
    let (ok, _, err) = tessera(dir.path(), &["backup", backup.to_str().unwrap()]);
    assert!(!ok && err.contains("being restored"), "{err}");

    drop(lock);
    let server = Server::start(dir.path(), ENV);
    let r = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
}
