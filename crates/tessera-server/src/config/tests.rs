//! Loading, overlaying and validating configuration.

use std::collections::BTreeMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_toml(text: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().map_err(|e| ConfigError::at("test", e.to_string()))?;
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, text).map_err(|e| ConfigError::at("test", e.to_string()))?;
    Settings::load(Some(&path), env(vars))
}

#[test]
fn logs_are_text_unless_json_is_asked_for() -> Result<(), ConfigError> {
    assert_eq!(Settings::load(None, env(&[]))?.log_format, LogFormat::Text);
    let s = load_toml("log_format = \"json\"", &[])?;
    assert_eq!(s.log_format, LogFormat::Json);
    Ok(())
}

#[test]
fn defaults_need_no_configuration() -> Result<(), ConfigError> {
    let s = Settings::load(None, env(&[("PATH", "/bin")]))?;
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.public_url, "http://127.0.0.1:8080");
    assert!(
        matches!(&s.database, Database::Sqlite(path) if path == Path::new("tessera-data/tessera.db")),
        "{:?}",
        s.database
    );
    assert_eq!(s.session, SessionPolicy::default());
    assert_eq!(s.cookie.name, "__Host-tessera");
    assert!(s.cookie.secure);
    assert_eq!(s.hash_cost, HashCost::default());
    assert_eq!(s.algorithm, Algorithm::EdDSA);
    assert_eq!(s.tokens.issuer, "http://127.0.0.1:8080");
    assert_eq!(s.tokens.audience, "http://127.0.0.1:8080");
    assert_eq!(s.tokens.access_ttl, time::Duration::minutes(10));
    assert_eq!(s.tokens.refresh_idle_ttl, time::Duration::days(14));
    assert_eq!(s.tokens.refresh_absolute_ttl, time::Duration::days(90));
    assert_eq!(s.tokens.refresh_reuse_grace, time::Duration::seconds(10));
    Ok(())
}

#[test]
fn file_then_environment_which_wins() -> Result<(), ConfigError> {
    let s = load_toml(
        "listen = \"127.0.0.1:9000\"\n[session]\nidle_timeout = \"10m\"\nabsolute_timeout = \"2h\"\n",
        &[
            ("TESSERA_SESSION__IDLE_TIMEOUT", "90s"),
            ("TESSERA_COOKIE__SECURE", "false"),
        ],
    )?;
    assert_eq!(s.listen.port(), 9000);
    assert_eq!(s.session.idle_timeout, time::Duration::seconds(90));
    assert_eq!(s.session.absolute_timeout, time::Duration::hours(2));
    assert!(!s.cookie.secure);
    assert_eq!(s.cookie.effective_name(), "tessera");
    Ok(())
}

#[test]
fn an_ephemeral_port_sets_the_public_url_once_bound() -> Result<(), ConfigError> {
    let mut s = Settings::load(None, env(&[("TESSERA_LISTEN", "127.0.0.1:0")]))?;
    s.bind_public_url(
        "127.0.0.1:41234"
            .parse()
            .map_err(|_| ConfigError::at("t", "addr"))?,
    );
    assert_eq!(s.public_url, "http://127.0.0.1:41234");
    assert_eq!(s.tokens.issuer, s.public_url);
    assert_eq!(s.tokens.audience, s.public_url);
    assert_eq!(
        s.origins.public_origin.as_deref(),
        Some("http://127.0.0.1:41234")
    );
    let mut s = Settings::load(
        None,
        env(&[
            ("TESSERA_LISTEN", "127.0.0.1:0"),
            ("TESSERA_PUBLIC_URL", "https://auth.example"),
        ]),
    )?;
    s.bind_public_url(
        "127.0.0.1:41234"
            .parse()
            .map_err(|_| ConfigError::at("t", "addr"))?,
    );
    assert_eq!(
        s.tokens.issuer, "https://auth.example",
        "a configured URL stays"
    );
    Ok(())
}

#[test]
fn durations_parse_units() {
    assert_eq!(
        ConfigDuration::parse("90s"),
        Ok(ConfigDuration(time::Duration::seconds(90)))
    );
    assert_eq!(
        ConfigDuration::parse("30m"),
        Ok(ConfigDuration(time::Duration::minutes(30)))
    );
    assert_eq!(
        ConfigDuration::parse("12h"),
        Ok(ConfigDuration(time::Duration::hours(12)))
    );
    assert_eq!(
        ConfigDuration::parse("14d"),
        Ok(ConfigDuration(time::Duration::days(14)))
    );
    assert_eq!(
        ConfigDuration::parse("1h30m"),
        Ok(ConfigDuration(time::Duration::minutes(90)))
    );
    assert_eq!(
        ConfigDuration::parse("500ms"),
        Ok(ConfigDuration(time::Duration::milliseconds(500)))
    );
    assert_eq!(
        ConfigDuration::parse("1d12h"),
        Ok(ConfigDuration(time::Duration::hours(36)))
    );
    for bad in [
        "",
        "30",
        "m",
        "30 minutes",
        "1h 30m",
        "1h30",
        "3650d1s",
        "5M",
        "-5m",
        "1.5h",
        "99999999999999999999d",
        "5y",
    ] {
        assert!(ConfigDuration::parse(bad).is_err(), "{bad} parsed");
    }
}

fn error_key(result: Result<Settings, ConfigError>) -> (String, Option<String>, String) {
    match result {
        Ok(_) => ("<no error>".into(), None, String::new()),
        Err(e) => (e.key.clone(), e.env_var.clone(), e.to_string()),
    }
}

#[test]
fn unknown_keys_are_named() {
    let (key, _, message) = error_key(load_toml("[session]\nidle_timout = \"5m\"\n", &[]));
    assert_eq!(key, "session.idle_timout");
    assert!(message.contains("session.idle_timout"), "{message}");
    let (key, var, _) = error_key(Settings::load(None, env(&[("TESSERA_FROBNICATE", "1")])));
    assert_eq!(key, "frobnicate");
    assert_eq!(var.as_deref(), Some("TESSERA_FROBNICATE"));
    let (key, _, _) = error_key(load_toml("colour = \"blue\"\n", &[]));
    assert_eq!(key, "colour");
}

#[test]
fn bad_values_are_named() {
    // (file, environment, key the error must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "",
            &[("TESSERA_SESSION__IDLE_TIMEOUT", "soon")],
            "session.idle_timeout",
        ),
        ("", &[("TESSERA_LISTEN", "nowhere")], "listen"),
        ("", &[("TESSERA_COOKIE__SECURE", "maybe")], "cookie.secure"),
        (
            "",
            &[("TESSERA_COOKIE__SAME_SITE", "sometimes")],
            "cookie.same_site",
        ),
        ("", &[("TESSERA_COOKIE__NAME", "bad name;")], "cookie.name"),
        ("", &[("TESSERA_ADMIN_TOKEN", "short")], "admin_token"),
        ("", &[("TESSERA_PUBLIC_URL", "ftp://x")], "public_url"),
        ("", &[("TESSERA_LISTEN", "0.0.0.0:8080")], "public_url"),
        ("", &[("TESSERA_HOSTS", "auth.example.com, a/b")], "hosts"),
        (
            "",
            &[("TESSERA_ALLOWED_ORIGINS", "https://ok.example, nope")],
            "allowed_origins",
        ),
        (
            "",
            &[("TESSERA_PASSWORD__MEMORY_KIB", "1")],
            "password.memory_kib",
        ),
        ("", &[("TESSERA_DATABASE_URL", "mysql://x")], "database_url"),
        ("", &[("TESSERA_REDIS_URL", "http://x")], "redis_url"),
        (
            "",
            &[("TESSERA_RATE_LIMIT__LOGIN_ATTEMPTS", "0")],
            "rate_limit.login_attempts",
        ),
        (
            "",
            &[("TESSERA_RATE_LIMIT__LOGIN_ATTEMPTS", "many")],
            "rate_limit.login_attempts",
        ),
        (
            "",
            &[("TESSERA_RATE_LIMIT__WINDOW", "2d")],
            "rate_limit.window",
        ),
        (
            "",
            &[("TESSERA_RATE_LIMIT__REGISTRATIONS", "0")],
            "rate_limit.registrations",
        ),
        (
            "",
            &[("TESSERA_TOKEN__ALGORITHM", "none")],
            "token.algorithm",
        ),
        (
            "",
            &[("TESSERA_TOKEN__ALGORITHM", "hs256")],
            "token.algorithm",
        ),
        (
            "",
            &[("TESSERA_TOKEN__ACCESS_TTL", "2d")],
            "token.access_ttl",
        ),
        (
            "",
            &[("TESSERA_TOKEN__REFRESH_IDLE_TTL", "100d")],
            "token.refresh_absolute_ttl",
        ),
        (
            "",
            &[("TESSERA_INTROSPECTION_SECRET", "short")],
            "introspection_secret",
        ),
        ("", &[("TESSERA_METRICS_TOKEN", "short")], "metrics_token"),
        ("", &[("TESSERA_LOG_FORMAT", "xml")], "log_format"),
        (
            "",
            &[("TESSERA_KEY_ENCRYPTION_KEY", "not base64!")],
            "key_encryption_key",
        ),
        (
            "",
            &[("TESSERA_KEY_ENCRYPTION_KEY", "c2hvcnQ=")],
            "key_encryption_key",
        ),
        (
            "",
            &[(
                "TESSERA_KEY_ENCRYPTION_KEY_FILE",
                "/nonexistent/tessera.kek",
            )],
            "key_encryption_key_file",
        ),
        (
            "[session]\nidle_timeout = \"2h\"\nabsolute_timeout = \"1h\"\n",
            &[],
            "session.absolute_timeout",
        ),
        (
            "[session]\nidle_timeout = \"0s\"\n",
            &[],
            "session.idle_timeout",
        ),
        ("[session]\nidle_timeout = 5\n", &[], "session.idle_timeout"),
        ("session = 5\n", &[], "session"),
        (
            "listen = \"127.0.0.1:1\"\n",
            &[("TESSERA_LISTEN__PORT", "1")],
            "listen.port",
        ),
    ];
    for (file, vars, expected) in cases {
        let (key, _, message) = error_key(load_toml(file, vars));
        assert_eq!(&key, expected, "{file:?} {vars:?}: {message}");
    }
}

#[test]
fn env_origin_is_reported() {
    let (_, var, message) = error_key(Settings::load(
        None,
        env(&[("TESSERA_SESSION__IDLE_TIMEOUT", "x")]),
    ));
    assert_eq!(var.as_deref(), Some("TESSERA_SESSION__IDLE_TIMEOUT"));
    assert!(
        message.contains("TESSERA_SESSION__IDLE_TIMEOUT"),
        "{message}"
    );
}

#[test]
fn lists_come_from_arrays_or_commas() -> Result<(), ConfigError> {
    let s = load_toml("allowed_origins = [\"https://a.example\"]\n", &[])?;
    assert_eq!(s.origins.allowed, ["https://a.example"]);
    let s = Settings::load(
        None,
        env(&[(
            "TESSERA_ALLOWED_ORIGINS",
            "https://a.example, https://b.example:8443",
        )]),
    )?;
    assert_eq!(
        s.origins.allowed,
        ["https://a.example", "https://b.example:8443"]
    );
    Ok(())
}

#[test]
fn the_key_encryption_key_comes_inline_or_from_a_file_not_both() -> Result<(), ConfigError> {
    let kek = KeyEncryptionKey::generate().map_err(|e| ConfigError::at("test", e.to_string()))?;
    let text = kek.to_base64();
    let s = Settings::load(None, env(&[("TESSERA_KEY_ENCRYPTION_KEY", text.as_str())]))?;
    assert_eq!(s.key_encryption_key.map(|k| k.id()), Some(kek.id()));

    let dir = tempfile::tempdir().map_err(|e| ConfigError::at("test", e.to_string()))?;
    let file = dir.path().join("kek");
    std::fs::write(&file, format!("{}\n", text.as_str()))
        .map_err(|e| ConfigError::at("test", e.to_string()))?;
    let file = file.to_string_lossy().into_owned();
    let s = load_toml(&format!("key_encryption_key_file = {file:?}\n"), &[])?;
    assert_eq!(s.key_encryption_key.map(|k| k.id()), Some(kek.id()));
    assert!(Settings::load(None, env(&[]))?.key_encryption_key.is_none());

    let (key, var, message) = error_key(load_toml(
        &format!("key_encryption_key_file = {file:?}\n"),
        &[("TESSERA_KEY_ENCRYPTION_KEY", text.as_str())],
    ));
    assert_eq!(key, "key_encryption_key");
    assert_eq!(var.as_deref(), Some("TESSERA_KEY_ENCRYPTION_KEY"));
    assert!(
        message.contains("key_encryption_key and key_encryption_key_file are both set"),
        "{message}"
    );

    std::fs::write(dir.path().join("kek"), "c2hvcnQ=\n")
        .map_err(|e| ConfigError::at("test", e.to_string()))?;
    let (key, _, message) = error_key(load_toml(
        &format!("key_encryption_key_file = {file:?}\n"),
        &[],
    ));
    assert_eq!(key, "key_encryption_key_file");
    assert!(message.contains("decodes to 5 bytes"), "{message}");
    assert!(
        !message.contains("c2hvcnQ"),
        "the key is not echoed: {message}"
    );
    Ok(())
}

#[test]
fn printing_the_settings_shows_no_secret() -> Result<(), ConfigError> {
    let kek = KeyEncryptionKey::generate().map_err(|e| ConfigError::at("test", e.to_string()))?;
    let kek_text = kek.to_base64();
    let secrets = [
        "admin-token-that-is-never-printed-0123456789",
        "introspection-secret-never-printed-0123456789",
        "metrics-token-that-is-never-printed-0123456789",
        "db-password-never-printed",
        "redis-password-never-printed",
        kek_text.trim_end_matches('='),
    ];
    let database = format!("postgres://tessera:{}@db:5432/tessera", secrets[3]);
    let redis = format!("redis://:{}@cache:6379", secrets[4]);
    let s = Settings::load(
        None,
        env(&[
            ("TESSERA_ADMIN_TOKEN", secrets[0]),
            ("TESSERA_INTROSPECTION_SECRET", secrets[1]),
            ("TESSERA_METRICS_TOKEN", secrets[2]),
            ("TESSERA_DATABASE_URL", &database),
            ("TESSERA_REDIS_URL", &redis),
            ("TESSERA_KEY_ENCRYPTION_KEY", &kek_text),
        ]),
    )?;
    assert!(s.admin_token.is_some() && s.key_encryption_key.is_some());
    assert!(s.metrics_token.is_some());
    let printed = format!("{s:?} {s:#?}");
    for secret in secrets {
        assert!(!printed.contains(secret), "{secret} printed: {printed}");
    }
    Ok(())
}

#[test]
fn invalid_toml_names_the_file() {
    let (key, _, message) = error_key(load_toml("this is = = not toml", &[]));
    assert_eq!(key, "--config");
    assert!(message.contains("not valid TOML"), "{message}");
}

#[test]
fn durations_print_as_they_parse() -> Result<(), String> {
    for text in [
        "0s", "45s", "30m", "12h", "14d", "1h30m", "500ms", "1d12h", "1m1s1ms",
    ] {
        let parsed = ConfigDuration::parse(text)?;
        assert_eq!(parsed.to_string(), text);
        assert_eq!(ConfigDuration::parse(&parsed.to_string())?, parsed);
    }
    assert_eq!(
        ConfigDuration(time::Duration::seconds(3600)).to_string(),
        "1h"
    );
    assert_eq!(ConfigDuration::parse("90s")?.to_string(), "1m30s");
    Ok(())
}

#[test]
fn errors_name_the_file_a_value_came_from() -> Result<(), ConfigError> {
    let dir = tempfile::tempdir().map_err(|e| ConfigError::at("test", e.to_string()))?;
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, "[session]\nidle_timeout = \"soon\"\n")
        .map_err(|e| ConfigError::at("test", e.to_string()))?;
    let e = Settings::load(Some(&path), env(&[])).err();
    let e = e.ok_or_else(|| ConfigError::at("test", "loaded"))?;
    assert_eq!(e.file.as_deref(), Some(path.as_path()));
    assert_eq!(e.env_var, None);
    let message = e.to_string();
    assert!(
        message.contains("`session.idle_timeout`")
            && message.contains(&format!("(in {})", path.display())),
        "{message}"
    );
    // The variable wins, and is named instead.
    let e = Settings::load(
        Some(&path),
        env(&[("TESSERA_SESSION__IDLE_TIMEOUT", "later")]),
    )
    .err()
    .ok_or_else(|| ConfigError::at("test", "loaded"))?;
    assert_eq!(e.file, None);
    assert_eq!(e.env_var.as_deref(), Some("TESSERA_SESSION__IDLE_TIMEOUT"));
    // A key nobody set is named without a source.
    let e = Settings::load(None, env(&[("TESSERA_LISTEN", "0.0.0.0:8080")]))
        .err()
        .ok_or_else(|| ConfigError::at("test", "loaded"))?;
    assert_eq!(
        (e.key.as_str(), e.file, e.env_var),
        ("public_url", None, None)
    );
    Ok(())
}

#[test]
fn a_misjoined_variable_gets_a_suggestion() {
    let (key, var, message) = error_key(Settings::load(
        None,
        env(&[("TESSERA_RATE_LIMIT_WINDOW", "5m")]),
    ));
    assert_eq!(key, "rate_limit_window");
    assert_eq!(var.as_deref(), Some("TESSERA_RATE_LIMIT_WINDOW"));
    assert!(
        message.contains("TESSERA_RATE_LIMIT__WINDOW") && message.contains("rate_limit.window"),
        "{message}"
    );
}

#[test]
fn the_configuration_file_variable_is_not_a_key() -> Result<(), ConfigError> {
    Settings::load(None, env(&[(CONFIG_FILE_VAR, "/etc/tessera/tessera.toml")]))?;
    Ok(())
}

/// The value lines of `config check`'s text, as (dotted key, line), and
/// the keys it says are not set.
fn described(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut section = String::new();
    let mut values = BTreeMap::new();
    let mut unset = Vec::new();
    for line in text.lines() {
        let dotted = |name: &str| {
            if section.is_empty() {
                name.to_owned()
            } else {
                format!("{section}.{name}")
            }
        };
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_owned();
        } else if let Some(name) = line
            .strip_prefix("# ")
            .and_then(|l| l.split_once(" is not set"))
            .map(|(name, _)| name)
        {
            unset.push(dotted(name));
        } else if let Some((name, _)) = line.split_once(" = ") {
            values.insert(dotted(name), line.to_owned());
        }
    }
    (values, unset)
}

#[test]
fn check_describes_every_key_and_redacts_every_secret() -> Result<(), ConfigError> {
    let kek = KeyEncryptionKey::generate().map_err(|e| ConfigError::at("test", e.to_string()))?;
    let kek_text = kek.to_base64();
    let admin = "admin-token-that-is-never-printed-0123456789";
    let introspection = "introspection-secret-never-printed-0123456789";
    let db_password = "db-password-never-printed";
    let redis_password = "redis-password-never-printed";
    let file = format!(
        "public_url = \"https://auth.example.test\"\n\
         admin_token = \"{admin}\"\n\
         database_url = \"postgres://tessera:{db_password}@db:5432/tessera?sslmode=require\"\n\
         [session]\nidle_timeout = \"1h30m\"\n"
    );
    let redis = format!("redis://:{redis_password}@cache:6379/0");
    let dir = tempfile::tempdir().map_err(|e| ConfigError::at("test", e.to_string()))?;
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, file).map_err(|e| ConfigError::at("test", e.to_string()))?;
    let (settings, text) = Settings::check(
        Some(&path),
        env(&[
            ("TESSERA_INTROSPECTION_SECRET", introspection),
            ("TESSERA_REDIS_URL", &redis),
            ("TESSERA_KEY_ENCRYPTION_KEY", &kek_text),
            ("TESSERA_TOKEN__ACCESS_TTL", "5m"),
        ]),
    )?;
    assert!(settings.admin_token.is_some());
    for secret in [
        admin,
        introspection,
        db_password,
        redis_password,
        kek_text.trim_end_matches('='),
    ] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }

    let (values, unset) = described(&text);
    for key in keys() {
        assert!(
            values.contains_key(&key) || unset.contains(&key),
            "{key} is not described:\n{text}"
        );
    }
    let line = |key: &str| values.get(key).cloned().unwrap_or_default();
    assert!(line("admin_token").contains("\"<redacted>\"  "), "{text}");
    assert!(line("admin_token").ends_with("# file"), "{text}");
    assert!(
        line("introspection_secret").ends_with("# TESSERA_INTROSPECTION_SECRET"),
        "{text}"
    );
    assert!(line("key_encryption_key").contains("<redacted>"), "{text}");
    assert!(
        line("database_url").contains("\"postgres://tessera:***@db:5432/tessera?sslmode=require\""),
        "{text}"
    );
    assert!(
        line("redis_url").contains("\"redis://:***@cache:6379/0\""),
        "{text}"
    );
    assert!(line("session.idle_timeout").contains("\"1h30m\""), "{text}");
    assert!(line("session.idle_timeout").ends_with("# file"), "{text}");
    assert!(
        line("token.access_ttl").ends_with("# TESSERA_TOKEN__ACCESS_TTL"),
        "{text}"
    );
    assert!(line("listen").ends_with("# default"), "{text}");
    assert!(
        line("token.audience").contains("\"https://auth.example.test\""),
        "derived values are shown: {text}"
    );
    assert!(unset.contains(&"tls.cert".to_owned()), "{text}");

    // What is printed is TOML, and with the secrets left out it loads back
    // to the same settings.
    let printed: toml::Table = text
        .parse()
        .map_err(|e| ConfigError::at("test", format!("{e}")))?;
    assert_eq!(
        printed.get("session").and_then(|s| s.get("idle_timeout")),
        Some(&toml::Value::String("1h30m".into()))
    );
    Ok(())
}

#[test]
fn check_refuses_what_load_refuses() {
    let (key, var, message) = error_key(
        Settings::check(None, env(&[("TESSERA_COOKIE__SAME_SITE", "sometimes")])).map(|(s, _)| s),
    );
    assert_eq!(key, "cookie.same_site");
    assert_eq!(var.as_deref(), Some("TESSERA_COOKIE__SAME_SITE"));
    assert!(message.contains("sometimes"), "{message}");
}
