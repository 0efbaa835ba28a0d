//! What `deploy/` ships: the example configuration names every key the
//! loader knows, each described, and loads with the real loader; the
//! systemd unit passes `systemd-analyze verify` against the built binary
//! and scores as confined.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use tessera_server::config::{Settings, keys};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

/// A key set in the example: where, and whether commented out.
struct Entry {
    key: String,
    line: usize,
    commented: bool,
}

fn is_key(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// Every `key = value` and `# key = value` line, with its dotted key.
fn entries(text: &str) -> Vec<Entry> {
    let mut section = String::new();
    let mut found = Vec::new();
    for (line, raw) in text.lines().enumerate() {
        if let Some(header) = raw.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_owned();
            continue;
        }
        let (body, commented) = match raw.strip_prefix("# ") {
            Some(body) => (body, true),
            None => (raw, false),
        };
        let Some((name, _)) = body.split_once(" = ") else {
            continue;
        };
        if !is_key(name) {
            continue;
        }
        let key = if section.is_empty() {
            name.to_owned()
        } else {
            format!("{section}.{name}")
        };
        found.push(Entry {
            key,
            line,
            commented,
        });
    }
    found
}

/// Keys whose sample value cannot load on a machine that is not the
/// deployment: files that do not exist here, a placeholder for a secret
/// that has to be generated.
const NEED_THE_DEPLOYMENT: &[&str] = &[
    "key_encryption_key",
    "key_encryption_key_file",
    "tls.cert",
    "tls.key",
];

/// Keys that are set together or not at all.
const TOGETHER: &[&[&str]] = &[&["tls.cert", "tls.key"]];

#[test]
fn the_example_configuration_describes_every_key_and_loads() {
    let path = deploy("tessera.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let found = entries(&text);

    let named: BTreeSet<String> = found.iter().map(|e| e.key.clone()).collect();
    let known: BTreeSet<String> = keys().into_iter().collect();
    let missing: Vec<_> = known.difference(&named).collect();
    let unknown: Vec<_> = named.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "keys missing from the example: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "keys the loader does not know: {unknown:?}"
    );
    assert_eq!(named.len(), found.len(), "a key appears twice");
    for entry in &found {
        let above = entry.line.checked_sub(1).map(|l| lines[l]).unwrap_or("");
        let described = above
            .strip_prefix("# ")
            .is_some_and(|c| !c.split_once(" = ").is_some_and(|(name, _)| is_key(name)));
        assert!(
            described,
            "{} has no comment of its own above it",
            entry.key
        );
    }

    // As shipped, it loads; so does `config check` on it.
    let settings = Settings::load(Some(&path), Vec::new()).unwrap();
    assert_eq!(settings.public_url, "https://auth.example.com");
    assert_eq!(settings.data_dir, Path::new("/var/lib/tessera"));
    let dir = tempfile::tempdir().unwrap();
    let out = common::tessera(dir.path())
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Each optional key's sample, uncommented (alone, or with the key it
    // needs), loads too, or (for a key that needs the deployment's files or
    // secrets) is refused at that key for its value, not as unknown.
    for entry in found.iter().filter(|e| e.commented) {
        let group: Vec<&Entry> = match TOGETHER.iter().find(|g| g.contains(&entry.key.as_str())) {
            Some(group) => found
                .iter()
                .filter(|e| group.contains(&e.key.as_str()))
                .collect(),
            None => vec![entry],
        };
        let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        for member in &group {
            edited[member.line] = edited[member.line].trim_start_matches("# ").to_owned();
        }
        let file = dir.path().join("edited.toml");
        std::fs::write(&file, edited.join("\n")).unwrap();
        match Settings::load(Some(&file), Vec::new()) {
            Ok(_) => {}
            Err(e) => {
                assert!(
                    NEED_THE_DEPLOYMENT.contains(&entry.key.as_str()),
                    "{} uncommented does not load: {e}",
                    entry.key
                );
                assert!(group.iter().any(|m| m.key == e.key), "{}: {e}", entry.key);
                assert!(!e.message.contains("unknown"), "{e}");
            }
        }
    }
}

fn systemd_analyze() -> PathBuf {
    std::env::var_os("SYSTEMD_ANALYZE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("systemd-analyze"))
}

/// `systemd-analyze ARGS`: (success, stdout, stderr).
fn analyze(args: &[&str], unit: &Path) -> (bool, String, String) {
    let out = Command::new(systemd_analyze())
        .args(args)
        .arg(unit)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}): install Debian's systemd package")
        });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `systemd-analyze verify` says about the unit itself (it may also
/// speak of units of this machine).
fn complaints(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("tessera.service"))
        .collect()
}

#[test]
#[ignore = "needs systemd-analyze (scripts/test installs Debian's systemd package)"]
fn the_systemd_unit_verifies_and_is_confined() {
    const INSTALLED: &str = "/usr/local/bin/tessera";
    let unit = std::fs::read_to_string(deploy("tessera.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    assert!(exec.starts_with(INSTALLED), "{exec}");
    for directive in [
        "User=tessera",
        "StateDirectory=tessera",
        "StateDirectoryMode=0700",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
    ] {
        assert!(
            unit.lines().any(|l| l == directive),
            "{directive} missing from the unit"
        );
    }

    // systemd-analyze checks that ExecStart's binary exists: the built one
    // stands in for the installed one, in a copy of the unit.
    let binary = env!("CARGO_BIN_EXE_tessera");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tessera.service");
    std::fs::write(&copy, unit.replace(INSTALLED, binary)).unwrap();
    let (ok, _, stderr) = analyze(&["verify", "--man=no"], &copy);
    assert!(ok, "systemd-analyze verify failed:\n{stderr}");
    assert!(
        complaints(&stderr).is_empty(),
        "systemd-analyze verify complains:\n{stderr}"
    );

    // The same check catches a mistake (so its silence above means something).
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    let broken = broken.join("tessera.service");
    std::fs::write(
        &broken,
        unit.replace(INSTALLED, binary)
            .replace("ProtectSystem=strict", "ProtectSytem=strict"),
    )
    .unwrap();
    let (ok, _, stderr) = analyze(&["verify", "--man=no"], &broken);
    assert!(
        !ok || !complaints(&stderr).is_empty(),
        "a misspelt directive went unnoticed"
    );

    // systemd's own exposure score: 0 is fully confined, 10 not at all.
    let (_, stdout, stderr) = analyze(&["security", "--offline=yes"], &copy);
    let score: f64 = stdout
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for tessera.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level:\n{stdout}\n{stderr}"));
    assert!(score <= 2.0, "exposure {score}:\n{stdout}");

    // ExecStart's arguments are ones the binary accepts.
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    let out = Command::new(binary)
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} refused");
}
