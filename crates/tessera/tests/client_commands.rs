//! `tessera client add|list|remove` against the embedded store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::run_with_stdin;

#[test]
fn client_commands_register_list_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run_with_stdin(
        dir.path(),
        &[
            "client",
            "add",
            "Photos",
            "--redirect-uri",
            "https://photos.example/cb",
            "--post-logout-redirect-uri",
            "https://photos.example/bye",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(err.contains("shown this once"), "{err}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("client_id\t"))
        .unwrap()
        .to_owned();
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret\t"))
        .unwrap();
    assert!(secret.starts_with("cs_"), "{out}");

    let (ok, out, err) = run_with_stdin(
        dir.path(),
        &[
            "client",
            "add",
            "SPA",
            "--public",
            "--redirect-uri",
            "https://spa.example/cb",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(!out.contains("client_secret"), "{out}");

    let (ok, _, err) = run_with_stdin(
        dir.path(),
        &[
            "client",
            "add",
            "Bad",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        "",
    );
    assert!(!ok && err.contains("loopback"), "{err}");

    let (ok, out, _) = run_with_stdin(dir.path(), &["client", "list"], "");
    assert!(ok);
    assert!(
        out.contains(&format!(
            "{id}\tPhotos\tconfidential\thttps://photos.example/cb"
        )),
        "{out}"
    );
    assert!(out.contains("\tSPA\tpublic\t"), "{out}");
    assert!(!out.contains("cs_"), "{out}");

    let (ok, out, err) = run_with_stdin(dir.path(), &["client", "remove", &id], "");
    assert!(ok && out.contains("removed"), "{err}");
    let (ok, _, err) = run_with_stdin(dir.path(), &["client", "remove", &id], "");
    assert!(!ok && err.contains("no client"), "{err}");
    let (ok, out, _) = run_with_stdin(dir.path(), &["client", "list"], "");
    assert!(ok && !out.contains("Photos"), "{out}");
}
