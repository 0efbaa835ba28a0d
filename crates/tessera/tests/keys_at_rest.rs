//! Signing keys at rest, as an attacker holding a copy of the data sees
//! them: the database and its WAL hold no private key material, a copied
//! database cannot sign, keys stored in clear by earlier versions are sealed
//! at the next start, `keys rewrap` moves keys to a new key-encryption key,
//! and the embedded store's files are born private whatever the umask.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{
    PASSWORD, Server, access_token, database_url_in, fresh_database, me_status, refuses_to_start,
    register, run_command, tessera, tessera_with_umask,
};
use serde_json::Value;
use tessera_core::key_wrap::{self, KeyEncryptionKey};
use tessera_core::keys::{Algorithm, SigningKey, StoredKey};
use tessera_core::store::Keys;
use tessera_core::totp::{TotpSecret, step_at};
use tessera_store_sqlite::SqliteStore;

const ADMIN_TOKEN: &str = "keys-at-rest-admin-token-0123456789abcdef";
/// Fixed, so tokens (their issuer) outlive a restart on another port.
const PUBLIC_URL: (&str, &str) = ("TESSERA_PUBLIC_URL", "http://auth.tessera.test");
/// The test talks to the server by address, not by its public name.
const BY_ADDRESS: (&str, &str) = ("TESSERA_HOSTS", "127.0.0.1");

fn data(dir: &Path) -> PathBuf {
    dir.join("tessera-data")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The keys as stored in the SQLite file at `db`.
async fn stored_keys(db: &Path) -> Vec<StoredKey> {
    let store = SqliteStore::open(db).await.unwrap();
    let keys = store.keys().await.unwrap();
    store.close().await;
    keys
}

/// The database file and its WAL (when there is one), as a copy would take them.
fn database_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(more) = std::fs::read(PathBuf::from(wal)) {
        bytes.extend(more);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that neither the PKCS#8 DER of an Ed25519 key nor its 32-byte
/// seed (the DER's tail) is anywhere in the database or its WAL.
fn assert_no_key_material(db: &Path, key: &SigningKey) {
    assert_eq!(key.algorithm, Algorithm::EdDSA);
    let files = database_bytes(db);
    let der = key.private.as_slice();
    let seed = &der[der.len() - 32..];
    assert!(!contains(&files, der), "PKCS#8 DER found in the database");
    assert!(
        !contains(&files, seed),
        "Ed25519 seed found in the database"
    );
}

/// Writes `key` into the database at `db` the way earlier versions stored
/// keys: PKCS#8 DER in clear in the `private_key` column.
async fn insert_clear_key(db: &Path, key: &SigningKey) {
    use sqlx::ConnectOptions as _;
    let millis = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .connect()
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retired_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.kid)
    .bind(key.algorithm.as_str())
    .bind(key.private.as_slice())
    .bind(millis(key.created_at))
    .bind(key.retired_at.map(millis))
    .bind(key.expires_at.map(millis))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
}

fn kek_file(dir: &Path) -> KeyEncryptionKey {
    let path = data(dir).join("key-encryption.key");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no key-encryption key at {}: {e}", path.display()));
    KeyEncryptionKey::from_base64(&text).unwrap()
}

fn write_kek(path: &Path) -> KeyEncryptionKey {
    let kek = KeyEncryptionKey::generate().unwrap();
    std::fs::write(path, format!("{}\n", kek.to_base64().as_str())).unwrap();
    kek
}

fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The kinds of the audit log's events, newest first.
async fn audit_kinds(client: &reqwest::Client, server: &Server) -> Vec<String> {
    let page: Value = client
        .get(server.url("/v1/admin/audit?limit=100"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_fresh_store_holds_no_private_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    let token = access_token(&client, &server, "alice").await;
    let db = data(dir.path()).join("tessera.db");

    // Looked at while the server runs, so the WAL is there too.
    let kek = kek_file(dir.path());
    let stored = stored_keys(&db).await;
    assert_eq!(stored.len(), 1);
    let key = key_wrap::unseal(&kek, &stored[0]).expect("the key opens with the key file");
    assert_eq!(
        key.kid,
        kid_of(&token),
        "the key that signs is the stored one"
    );
    assert_ne!(stored[0].sealed, key.private.as_slice());
    assert!(
        contains(&database_bytes(&db), &stored[0].sealed),
        "the sealed form is in the files (the scan works)"
    );
    assert_no_key_material(&db, &key);
    assert!(
        key_wrap::unseal(&KeyEncryptionKey::generate().unwrap(), &stored[0]).is_err(),
        "any other key-encryption key is refused"
    );

    // A TOTP secret is sealed the same way: neither its bytes nor its
    // base32 form are in the files.
    let enrolment: Value = client
        .post(server.url("/v1/me/mfa/totp"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base32 = enrolment["secret"].as_str().unwrap();
    let totp = TotpSecret::from_base32(base32).unwrap();
    let files = database_bytes(&db);
    assert!(
        !contains(&files, totp.as_bytes()),
        "the TOTP secret is in clear"
    );
    assert!(
        !contains(&files, base32.as_bytes()),
        "the TOTP secret is in clear"
    );

    let (status, _) = server.terminate();
    assert!(status.success());
    assert_no_key_material(&db, &key);
    let files = database_bytes(&db);
    assert!(
        !contains(&files, totp.as_bytes()),
        "the TOTP secret is in clear"
    );
}

#[tokio::test]
async fn a_copied_database_alone_cannot_produce_keys() {
    let original = tempfile::tempdir().unwrap();
    let server = Server::start(original.path(), &[PUBLIC_URL, BY_ADDRESS]);
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    let token = access_token(&client, &server, "alice").await;
    let (status, _) = server.terminate();
    assert!(status.success());
    let kek = kek_file(original.path());
    let kid = stored_keys(&data(original.path()).join("tessera.db")).await[0]
        .kid
        .clone();

    // The thief's copy: the database, without the key file beside it.
    let copy = tempfile::tempdir().unwrap();
    std::fs::create_dir(data(copy.path())).unwrap();
    std::fs::set_permissions(data(copy.path()), std::fs::Permissions::from_mode(0o700)).unwrap();
    let db = data(copy.path()).join("tessera.db");
    std::fs::copy(data(original.path()).join("tessera.db"), &db).unwrap();

    let stderr = refuses_to_start(&mut tessera(copy.path()), &[]);
    assert!(
        stderr.contains(&format!(
            "signing keys in the store are wrapped under key-encryption key {}",
            kek.id()
        )) && stderr.contains("key-encryption.key does not exist"),
        "{stderr}"
    );
    assert!(
        !data(copy.path()).join("key-encryption.key").exists(),
        "no key-encryption key was made up"
    );

    // A key left in clear by an earlier version: a node with the wrong
    // key-encryption key must not seal it under that key.
    // Older than the sealed key, so it is met first.
    let now = time::OffsetDateTime::now_utc();
    let mut legacy = SigningKey::generate(Algorithm::EdDSA, now - time::Duration::days(1)).unwrap();
    legacy.retired_at = Some(now - time::Duration::hours(1));
    legacy.expires_at = Some(now + time::Duration::hours(1));
    insert_clear_key(&db, &legacy).await;

    let other = KeyEncryptionKey::generate().unwrap();
    let stderr = refuses_to_start(
        &mut tessera(copy.path()),
        &[("TESSERA_KEY_ENCRYPTION_KEY", other.to_base64().as_str())],
    );
    assert!(
        stderr.contains(&format!(
            "signing keys are wrapped under key-encryption key {}; the configured key is {}",
            kek.id(),
            other.id()
        )),
        "{stderr}"
    );
    let keys = stored_keys(&db).await;
    assert_eq!(keys.len(), 2, "no signing key was generated");
    assert!(keys.iter().any(|k| k.kid == kid));
    let left = keys.iter().find(|k| k.kid == legacy.kid).unwrap();
    assert_eq!(
        left.sealed,
        legacy.private.as_slice(),
        "nothing was sealed under the wrong key"
    );

    // With the key file, the same copy works: the key file is what matters.
    std::fs::copy(
        data(original.path()).join("key-encryption.key"),
        data(copy.path()).join("key-encryption.key"),
    )
    .unwrap();
    let server = Server::start(copy.path(), &[PUBLIC_URL, BY_ADDRESS]);
    assert_eq!(me_status(&client, &server, &token).await, 200);
}

#[tokio::test]
async fn keys_stored_in_clear_are_sealed_at_start_and_keep_verifying() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run_command(tessera(dir.path()).arg("migrate"), "");
    assert!(ok, "{err}");
    let db = data(dir.path()).join("tessera.db");

    // A key as earlier versions stored it: PKCS#8 DER in the private_key column.
    let legacy = SigningKey::generate(Algorithm::EdDSA, time::OffsetDateTime::now_utc()).unwrap();
    insert_clear_key(&db, &legacy).await;
    assert!(
        contains(&database_bytes(&db), legacy.private.as_slice()),
        "the clear key is in the file (the scan works)"
    );

    let env = [("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN), PUBLIC_URL, BY_ADDRESS];
    let server = Server::start(dir.path(), &env);
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    let token = access_token(&client, &server, "alice").await;
    assert_eq!(
        kid_of(&token),
        legacy.kid,
        "the key from before still signs"
    );
    assert_no_key_material(&db, &legacy);
    assert!(
        audit_kinds(&client, &server)
            .await
            .contains(&"keys.sealed".to_owned())
    );
    let (status, _) = server.terminate();
    assert!(status.success());
    assert_no_key_material(&db, &legacy);

    let stored = stored_keys(&db).await;
    assert_eq!(stored.len(), 1);
    let opened = key_wrap::unseal(&kek_file(dir.path()), &stored[0]).unwrap();
    assert_eq!(opened.private.as_slice(), legacy.private.as_slice());

    let server = Server::start(dir.path(), &env);
    assert_eq!(
        me_status(&client, &server, &token).await,
        200,
        "a token signed before the upgrade verifies after it"
    );
}

#[tokio::test]
async fn rewrap_moves_the_keys_to_the_new_key_encryption_key() {
    let dir = tempfile::tempdir().unwrap();
    let old_file = dir.path().join("old.key");
    let new_file = dir.path().join("new.key");
    let old = write_kek(&old_file);
    let new = write_kek(&new_file);
    let (old_path, new_path) = (old_file.to_str().unwrap(), new_file.to_str().unwrap());
    let old_env = [
        ("TESSERA_KEY_ENCRYPTION_KEY_FILE", old_path),
        ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN),
        PUBLIC_URL,
        BY_ADDRESS,
    ];
    let new_env = [
        ("TESSERA_KEY_ENCRYPTION_KEY_FILE", new_path),
        ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN),
        PUBLIC_URL,
        BY_ADDRESS,
    ];

    let server = Server::start(dir.path(), &old_env);
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    let token = access_token(&client, &server, "alice").await;
    // Alice turns on TOTP: its secret is sealed under the KEK too.
    let enrolment: serde_json::Value = client
        .post(server.url("/v1/me/mfa/totp"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let totp = TotpSecret::from_base32(enrolment["secret"].as_str().unwrap()).unwrap();
    let code_at = |t: time::OffsetDateTime| format!("{:06}", totp.code(step_at(t)));
    let r = client
        .post(server.url("/v1/me/mfa/totp/confirm"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "code": code_at(time::OffsetDateTime::now_utc()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = server.terminate();
    assert!(status.success());
    assert!(
        !data(dir.path()).join("key-encryption.key").exists(),
        "a configured key is used, none generated"
    );

    let mut rewrap = tessera(dir.path());
    rewrap
        .args(["keys", "rewrap", "--from-key-file"])
        .arg(&old_file);
    for (k, v) in new_env {
        rewrap.env(k, v);
    }
    let (ok, out, err) = run_command(&mut rewrap, "");
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "1 signing keys re-wrapped from key-encryption key {} to {}",
            old.id(),
            new.id()
        )),
        "{out}"
    );
    let stored = stored_keys(&data(dir.path()).join("tessera.db")).await;
    assert_eq!(key_wrap::sealed_under(&stored[0].sealed), Some(new.id()));
    assert!(out.contains("1 TOTP secrets re-wrapped"), "{out}");

    let stderr = refuses_to_start(&mut tessera(dir.path()), &old_env);
    assert!(
        stderr.contains(&format!(
            "signing keys are wrapped under key-encryption key {}; the configured key is {}",
            new.id(),
            old.id()
        )),
        "{stderr}"
    );

    let server = Server::start(dir.path(), &new_env);
    assert_eq!(me_status(&client, &server, &token).await, 200);
    // The TOTP secret opens under the new KEK: a code finishes a sign-in.
    let r = client
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "mfa_required", "{body}");
    let next = code_at(time::OffsetDateTime::now_utc() + time::Duration::seconds(30));
    let r = client
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "urn:tessera:grant-type:mfa"),
            ("mfa_token", body["mfa_token"].as_str().unwrap()),
            ("code", next.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert!(
        audit_kinds(&client, &server)
            .await
            .contains(&"keys.rewrapped".to_owned())
    );
    drop(server);

    // Run again (an interrupted rewrap is finished the same way): nothing to do.
    let (ok, out, err) = run_command(&mut rewrap, "");
    assert!(ok, "{err}");
    assert!(out.contains("1 already under it"), "{out}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"]
async fn postgres_without_a_key_encryption_key_refuses_to_start() {
    let url = database_url_in(&fresh_database().await);
    let dir = tempfile::tempdir().unwrap();
    let stderr = refuses_to_start(
        &mut tessera(dir.path()),
        &[("TESSERA_DATABASE_URL", url.as_str())],
    );
    assert!(
        stderr
            .contains("with PostgreSQL, key_encryption_key or key_encryption_key_file must be set")
            && stderr.contains("every node must be given the same key"),
        "{stderr}"
    );
    assert!(
        !data(dir.path()).exists(),
        "nothing generated in a data directory"
    );
    let kek = KeyEncryptionKey::generate().unwrap().to_base64();
    let server = Server::start(
        dir.path(),
        &[
            ("TESSERA_DATABASE_URL", url.as_str()),
            ("TESSERA_KEY_ENCRYPTION_KEY", kek.as_str()),
        ],
    );
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
}

#[tokio::test]
async fn store_files_are_private_under_a_permissive_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path());
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();

    let stderr = refuses_to_start(&mut tessera_with_umask(dir.path(), "022"), &[]);
    assert!(
        stderr.contains(&format!(
            "the data directory {} is accessible to other users (mode 0755)",
            Path::new("tessera-data").display()
        )) && stderr.contains("chmod 700 tessera-data"),
        "{stderr}"
    );
    assert!(!data.join("tessera.db").exists(), "nothing was created");

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let server = Server::start_command(tessera_with_umask(dir.path(), "022"), &[]);
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    // While the server runs, the WAL and its index exist.
    for file in [
        "tessera.db",
        "tessera.db-wal",
        "tessera.db-shm",
        "key-encryption.key",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&data), 0o700);
}
