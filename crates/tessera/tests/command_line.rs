//! The command line itself: `tessera config check`, shell completions, and
//! help that names the environment variables.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::tessera;
use tessera_server::config::{env_var, keys};

/// (exit code, stdout, stderr).
fn run(command: &mut Command) -> (Option<i32>, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ADMIN: &str = "admin-token-that-must-never-be-printed-0123456789";
const INTROSPECTION: &str = "introspection-secret-never-printed-0123456789";
const DB_PASSWORD: &str = "database-password-never-printed";
const REDIS_PASSWORD: &str = "redis-password-never-printed";
/// base64 of 32 bytes.
const KEK: &str = "c2VjcmV0LWtleS1lbmNyeXB0aW9uLWtleS0zMi1ieXQ=";

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("tessera.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn config_check_prints_the_effective_settings_without_any_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "public_url = \"https://auth.example.test\"\n\
             admin_token = \"{ADMIN}\"\n\
             database_url = \"postgres://tessera:{DB_PASSWORD}@db.internal:5432/tessera?sslmode=require\"\n\
             [token]\naccess_ttl = \"5m\"\n"
        ),
    );
    let redis = format!("redis://default:{REDIS_PASSWORD}@cache.internal:6379");
    let (code, out, err) = run(tessera(dir.path())
        .args(["config", "check", "--config"])
        .arg(&config)
        .env("TESSERA_INTROSPECTION_SECRET", INTROSPECTION)
        .env("TESSERA_REDIS_URL", &redis)
        .env("TESSERA_KEY_ENCRYPTION_KEY", KEK)
        .env("TESSERA_SESSION__IDLE_TIMEOUT", "15m"));
    assert_eq!(code, Some(0), "{err}");
    for secret in [
        ADMIN,
        INTROSPECTION,
        DB_PASSWORD,
        REDIS_PASSWORD,
        KEK,
        &KEK[..20],
    ] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
        assert!(!err.contains(secret), "{secret} printed:\n{err}");
    }
    for expected in [
        "admin_token = \"<redacted>\"",
        "introspection_secret = \"<redacted>\"",
        "key_encryption_key = \"<redacted>\"",
        "database_url = \"postgres://tessera:***@db.internal:5432/tessera?sslmode=require\"",
        "redis_url = \"redis://default:***@cache.internal:6379\"",
        "# TESSERA_SESSION__IDLE_TIMEOUT",
        "# TESSERA_REDIS_URL",
    ] {
        assert!(out.contains(expected), "{expected} missing:\n{out}");
    }
    let idle = out
        .lines()
        .find(|l| l.starts_with("idle_timeout = "))
        .unwrap();
    assert!(idle.contains("\"15m\"") && idle.ends_with("# TESSERA_SESSION__IDLE_TIMEOUT"));
    let ttl = out
        .lines()
        .find(|l| l.starts_with("access_ttl = "))
        .unwrap();
    assert!(ttl.contains("\"5m\"") && ttl.ends_with("# file"), "{ttl}");
    // It checks; it does not start anything.
    assert!(!dir.path().join("tessera-data").exists());

    // A variable that is not UTF-8 (someone else's) is no reason to fail.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let (code, _, err) = run(tessera(dir.path()).args(["config", "check"]).env(
            "LANG_OF_SOMEONE_ELSE",
            std::ffi::OsStr::from_bytes(b"caf\xe9"),
        ));
        assert_eq!(code, Some(0), "{err}");
    }

    // TESSERA_CONFIG names the file as --config does.
    let (code, out, err) = run(tessera(dir.path())
        .args(["config", "check"])
        .env("TESSERA_CONFIG", &config));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"https://auth.example.test\""), "{out}");
    assert!(!out.contains(ADMIN));
}

#[test]
fn config_check_names_the_bad_key_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[session]\nidle_timeout = \"soon\"\n");
    let shown = config.display().to_string();
    let check = |file: Option<&Path>, env: &[(&str, &str)]| {
        let mut command = tessera(dir.path());
        command.args(["config", "check"]);
        if let Some(file) = file {
            command.arg("--config").arg(file);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let (code, out, err) = run(&mut command);
        assert_eq!(code, Some(2), "{out}{err}");
        assert!(out.is_empty(), "nothing printed on failure: {out}");
        err
    };

    let err = check(Some(&config), &[]);
    assert!(
        err.contains("`session.idle_timeout`") && err.contains(&format!("(in {shown})")),
        "{err}"
    );
    let err = check(None, &[("TESSERA_TOKEN__ACCESS_TTL", "forever")]);
    assert!(
        err.contains("`token.access_ttl`") && err.contains("(from TESSERA_TOKEN__ACCESS_TTL)"),
        "{err}"
    );
    let err = check(None, &[("TESSERA_ADMIN_TOKEN", "short-secret")]);
    assert!(
        err.contains("`admin_token`") && err.contains("at least 32"),
        "{err}"
    );
    assert!(
        !err.contains("short-secret"),
        "the value is not echoed: {err}"
    );

    let unknown = write_config(
        dir.path(),
        "listen = \"127.0.0.1:8080\"\nflavour = \"oat\"\n",
    );
    let err = check(Some(&unknown), &[]);
    assert!(
        err.contains("`flavour`") && err.contains("unknown"),
        "{err}"
    );
    let err = check(None, &[("TESSERA_FROBNICATE", "1")]);
    assert!(
        err.contains("`frobnicate`") && err.contains("(from TESSERA_FROBNICATE)"),
        "{err}"
    );
    let err = check(None, &[("TESSERA_SESSION_IDLE_TIMEOUT", "5m")]);
    assert!(
        err.contains("(from TESSERA_SESSION_IDLE_TIMEOUT)")
            && err.contains(
                "did you mean `session.idle_timeout` (variable TESSERA_SESSION__IDLE_TIMEOUT)"
            ),
        "{err}"
    );
    let err = check(Some(&dir.path().join("missing.toml")), &[]);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn completions_cover_every_command_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    // How each shell's script names the --config option.
    for (shell, option) in [
        ("bash", "--config"),
        ("zsh", "--config"),
        ("fish", "-l config"),
    ] {
        let (code, out, err) = run(tessera(dir.path()).args(["completions", shell]));
        assert_eq!(code, Some(0), "{shell}: {err}");
        for command in [
            "serve",
            "migrate",
            "user",
            "keys",
            "client",
            "config",
            "backup",
            "restore",
            "completions",
            "bench",
        ] {
            assert!(out.contains(command), "{shell}: {command} missing");
        }
        assert!(out.contains(option), "{shell}: {option} missing");
    }
    let (_, out, _) = run(tessera(dir.path()).args(["completions", "bash"]));
    let script = dir.path().join("tessera.bash");
    std::fs::write(&script, &out).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Sourced, it registers the completion function for `tessera`.
    let sourced = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p tessera",
            script.display()
        ))
        .output()
        .unwrap();
    let registered = String::from_utf8_lossy(&sourced.stdout);
    assert!(registered.contains("tessera"), "{registered}");

    let (code, _, err) = run(tessera(dir.path()).args(["completions", "tcsh"]));
    assert_eq!(code, Some(2));
    assert!(err.contains("tcsh"), "{err}");
}

/// The subcommands `help` lists, by name.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_help_names_the_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    // Every command's help, walked from the top.
    let mut pending = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let (code, out, err) = run(tessera(dir.path()).args(&path).arg("--help"));
        assert_eq!(code, Some(0), "{path:?}: {err}");
        assert!(
            out.contains("--config <FILE>") && out.contains("[env: TESSERA_CONFIG="),
            "{path:?} --help does not name TESSERA_CONFIG:\n{out}"
        );
        for sub in subcommands(&out) {
            let mut deeper = path.clone();
            deeper.push(sub);
            pending.push(deeper);
        }
        seen += 1;
    }
    assert!(seen > 15, "only {seen} commands found");

    let (_, top, _) = run(tessera(dir.path()).arg("--help"));
    assert!(
        top.contains("TESSERA_SESSION__IDLE_TIMEOUT"),
        "the mapping is explained:\n{top}"
    );
    let (_, check, _) = run(tessera(dir.path()).args(["config", "check", "--help"]));
    for key in keys() {
        let line = format!("{key}  ");
        let listed = check
            .lines()
            .any(|l| l.trim_start().starts_with(&line) && l.trim_end().ends_with(&env_var(&key)));
        assert!(listed, "{key} and {} not listed:\n{check}", env_var(&key));
    }
    // The variables listed are the ones the loader reads.
    let (code, _, err) = run(tessera(dir.path())
        .args(["config", "check"])
        .env(env_var("rate_limit.window"), "2d"));
    assert_eq!(code, Some(2));
    assert!(err.contains("`rate_limit.window`"), "{err}");
}
